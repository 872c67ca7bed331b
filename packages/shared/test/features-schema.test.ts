import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { ErrorCode, isFedmetaError } from '../src/errors.js';
import {
  builtinSchema,
  builtinSchemaNames,
  cicFlowMeterSchema,
  featureDim,
  featureNames,
  loadSchemaFile,
  netflowV2Schema,
  parseFeatureSchema,
  resolveSchema,
  schemaFingerprint,
  standardizeMask,
  unswNb15Schema,
} from '../src/features/index.js';
import { toySchema, toySchemaFile } from './features-fixtures.js';

/** The same object with its keys in reverse order, at every depth. */
function reverseKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reverseKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reverseKeys(x)]));
}

const badSchema = (patch: Record<string, unknown>): (() => unknown) => () => parseFeatureSchema({ ...toySchemaFile, ...patch }, 'test.yaml');
const refusedWith = (pattern: RegExp) => (e: unknown) => {
  assert.ok(isFedmetaError(e, ErrorCode.BAD_SCHEMA_FILE), String(e));
  assert.match(e.message, pattern);
  return true;
};

test('the fingerprint is a sha256 that ignores key order, names, drop and id lists, and set order', () => {
  const fp = schemaFingerprint(toySchema);
  assert.match(fp, /^[0-9a-f]{64}$/);
  assert.equal(schemaFingerprint(parseFeatureSchema(reverseKeys(toySchemaFile))), fp);
  assert.equal(schemaFingerprint(reverseKeys(toySchema) as typeof toySchema), fp);
  assert.equal(schemaFingerprint(parseFeatureSchema({ ...toySchemaFile, name: 'renamed', description: 'x', drop: [], ids: [] })), fp);
  assert.equal(schemaFingerprint(parseFeatureSchema({ ...toySchemaFile, knownLabels: ['scan', 'dos'] })), fp);
  // The short and the long form of a numeric column are the same schema.
  const longForm = { ...toySchemaFile, numeric: [{ column: 'bytes', transform: 'log1p-signed', standardize: true }, toySchemaFile.numeric![1]!] };
  assert.equal(schemaFingerprint(parseFeatureSchema(longForm)), fp);
});

test('the fingerprint changes with anything that changes the features or the labels', () => {
  const fp = schemaFingerprint(toySchema);
  const variants: Record<string, unknown>[] = [
    { numeric: [{ column: 'bytes', transform: 'none' }, toySchemaFile.numeric![1]!] },
    { numeric: [{ column: 'bytes', standardize: false }, toySchemaFile.numeric![1]!] },
    { numeric: [toySchemaFile.numeric![1]!, 'bytes'] },
    { categorical: [{ column: 'proto', encoding: 'onehot', vocabulary: ['udp', 'tcp'] }, toySchemaFile.categorical![1]!] },
    { categorical: [toySchemaFile.categorical![0]!, { column: 'app', encoding: 'hash', buckets: 8 }] },
    { benignLabels: ['normal', 'background'] },
    { labelColumn: 'verdict' },
    { familyColumn: 'family' },
    { knownLabels: undefined },
  ];
  const seen = new Set([fp]);
  for (const v of variants) {
    const other = schemaFingerprint(parseFeatureSchema({ ...toySchemaFile, ...v }));
    assert.ok(!seen.has(other), `variant ${JSON.stringify(v)} should change the fingerprint`);
    seen.add(other);
  }
});

test('schema validation rejects unknown keys, bad values and contradictory roles with a coded error', () => {
  assert.throws(badSchema({ labelColum: 'x' }), refusedWith(/labelColum/));
  assert.throws(badSchema({ numeric: [{ column: 'bytes', transfrom: 'none' }] }), refusedWith(/numeric\.0.*transfrom/));
  assert.throws(badSchema({ numeric: [{ column: 'bytes', transform: 'log2' }] }), refusedWith(/numeric\.0\.transform/));
  assert.throws(badSchema({ categorical: [{ column: 'app', encoding: 'hash', buckets: 0 }] }), refusedWith(/buckets/));
  assert.throws(badSchema({ categorical: [{ column: 'app', encoding: 'embed' }] }), refusedWith(/encoding/));
  assert.throws(badSchema({ benignLabels: [] }), refusedWith(/benignLabels/));
  assert.throws(badSchema({ labelColumn: '  ' }), refusedWith(/labelColumn/));
  assert.throws(badSchema({ numeric: [], categorical: [] }), refusedWith(/no numeric or categorical/));
  assert.throws(badSchema({ numeric: ['bytes', 'bytes'] }), refusedWith(/"bytes" is listed as a feature more than once/));
  assert.throws(badSchema({ drop: ['bytes'] }), refusedWith(/"bytes" is both a feature and a dropped column/));
  assert.throws(badSchema({ ids: ['proto'] }), refusedWith(/"proto" is both a feature and an identifier/));
  assert.throws(badSchema({ labelColumn: 'bytes' }), refusedWith(/"bytes" is both a feature and the label column/));
  assert.throws(
    badSchema({ categorical: [{ column: 'proto', encoding: 'onehot', vocabulary: ['tcp', 'tcp'] }] }),
    refusedWith(/vocabulary of "proto" lists a value twice/),
  );
  assert.throws(badSchema({ knownLabels: ['normal'] }), refusedWith(/knownLabels/));
  assert.throws(() => parseFeatureSchema('not an object', 'x.json'), refusedWith(/x\.json/));
});

test('schema files are read as JSON or YAML; malformed or unreadable files are refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fedmeta-schema-'));
  try {
    const json = join(dir, 'toy.json');
    const yaml = join(dir, 'toy.yaml');
    await writeFile(json, JSON.stringify(toySchemaFile));
    await writeFile(yaml, toYaml(reverseKeys(toySchemaFile)));
    assert.equal(schemaFingerprint(await loadSchemaFile(json)), schemaFingerprint(toySchema));
    assert.equal(schemaFingerprint(await loadSchemaFile(yaml)), schemaFingerprint(toySchema));
    assert.equal(schemaFingerprint(await resolveSchema(yaml)), schemaFingerprint(toySchema));

    const broken = join(dir, 'broken.json');
    await writeFile(broken, '{"name": "x",');
    await assert.rejects(loadSchemaFile(broken), refusedWith(/broken\.json is not well-formed JSON/));
    const dupKeys = join(dir, 'dup.yaml');
    await writeFile(dupKeys, 'name: a\nname: b\n');
    await assert.rejects(loadSchemaFile(dupKeys), refusedWith(/not well-formed YAML/));
    const extra = join(dir, 'extra.yaml');
    await writeFile(extra, toYaml({ ...toySchemaFile, weights: 3 }));
    await assert.rejects(loadSchemaFile(extra), refusedWith(/extra\.yaml.*weights/));
    await assert.rejects(loadSchemaFile(join(dir, 'missing.yaml')), refusedWith(/ENOENT/));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('built-in schemas: widths, no identifier among the features, and copies that cannot alter the originals', async () => {
  assert.equal(featureDim(cicFlowMeterSchema), 85);
  assert.equal(featureDim(unswNb15Schema), 67);
  assert.equal(featureDim(netflowV2Schema), 56);
  for (const name of builtinSchemaNames) {
    const s = builtinSchema(name);
    const names = new Set(featureNames(s).map((n) => n.replace(/[=#].*$/, '')));
    for (const c of [...s.drop, ...s.ids, s.labelColumn]) assert.ok(!names.has(c), `${name}: ${c} must not be a feature`);
    assert.equal(featureNames(s).length, featureDim(s));
    assert.equal(standardizeMask(s).reduce((a, b) => a + b, 0), s.numeric.length);
    assert.equal(schemaFingerprint(await resolveSchema(name)), schemaFingerprint(s));
    s.numeric.pop();
    assert.notEqual(featureDim(builtinSchema(name)), featureDim(s));
  }
  for (const c of ['Src IP', 'Dst IP', 'Src Port', 'Dst Port', 'Flow ID', 'Timestamp', 'id']) assert.ok(cicFlowMeterSchema.drop.includes(c));
  assert.throws(() => (cicFlowMeterSchema.numeric as unknown[]).push('x'), TypeError);
  assert.throws(() => builtinSchema('cicids'), (e: unknown) => isFedmetaError(e, ErrorCode.CONFIG));
  assert.equal(new Set(builtinSchemaNames.map((n) => schemaFingerprint(builtinSchema(n)))).size, 3);
});
