import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { builtinSchema, featureDim, loadFlowTable, rowIds, StatsAccumulator, totalSkipped, type FlowTable } from '../src/features/index.js';
import { dataPath } from './features-fixtures.js';

interface Shipped {
  file: string;
  schema: string;
  rows: number;
  dim: number;
  families: string[];
  benign: number;
  ids: string[];
}

const SHIPPED: Shipped[] = [
  {
    file: 'cic-ids2017/cic-ids2017-sample.csv.gz',
    schema: 'cicflowmeter',
    rows: 19_387,
    dim: 85,
    families: [
      'BENIGN', 'Botnet', 'DDoS', 'DoS GoldenEye', 'DoS Hulk', 'DoS Slowhttptest', 'DoS Slowloris', 'FTP-Patator', 'Heartbleed',
      'Infiltration', 'Infiltration - Portscan', 'Portscan', 'SSH-Patator', 'Web Attack - Brute Force',
      'Web Attack - SQL Injection', 'Web Attack - XSS',
    ],
    benign: 5000,
    ids: ['Src IP', 'Dst Port', 'Timestamp'],
  },
  {
    file: 'unsw-nb15/unsw-nb15-sample.csv.gz',
    schema: 'unsw-nb15',
    rows: 1453,
    dim: 67,
    families: ['Analysis', 'Backdoor', 'DoS', 'Exploits', 'Fuzzers', 'Normal', 'Reconnaissance', 'Shellcode', 'Worms'],
    benign: 243,
    ids: ['id'],
  },
  {
    file: 'nf-bot-iot-v2/nf-bot-iot-v2-sample.csv.gz',
    schema: 'netflow-v2',
    rows: 3033,
    dim: 56,
    families: ['Benign', 'DDoS', 'DoS', 'Reconnaissance', 'Theft'],
    benign: 750,
    ids: ['IPV4_SRC_ADDR', 'L4_DST_PORT'],
  },
];

function checkTable(t: FlowTable, d: Shipped): void {
  assert.equal(t.report.rowsRead, d.rows);
  assert.equal(totalSkipped(t.report), 0, 'the shipped samples have no bad rows');
  assert.equal(t.n, d.rows);
  assert.equal(t.dim, d.dim);
  assert.equal(t.dim, featureDim(builtinSchema(d.schema)));
  assert.equal(t.x.length, t.n * t.dim);
  assert.ok(t.x.every(Number.isFinite), 'no NaN or infinity in the features');
  assert.deepEqual(t.families, d.families);
  assert.equal(Object.values(t.report.byFamily).reduce((a, b) => a + b, 0), t.n);
  assert.ok(Object.values(t.report.byFamily).every((c) => c > 0));
  assert.equal(t.labels.filter((l) => l === 0).length, d.benign);
  // Every attack row carries an attack family, every benign row a benign one.
  const benignFamilies = new Set<number>();
  const attackFamilies = new Set<number>();
  for (let i = 0; i < t.n; i++) (t.labels[i] === 0 ? benignFamilies : attackFamilies).add(t.family[i]!);
  assert.equal(benignFamilies.size, 1);
  assert.equal(attackFamilies.size, d.families.length - 1);
  for (const c of d.ids) assert.ok((rowIds(t, 0)[c] ?? '') !== '', `identifier ${c} kept for alerts`);
  // Standardised with its own statistics, every feature is finite and centred.
  const stats = StatsAccumulator.forSchema(builtinSchema(d.schema)).addTable(t).finalize();
  assert.ok([...stats.mean, ...stats.std].every(Number.isFinite));
}

for (const d of SHIPPED) {
  test(`the shipped ${d.schema} sample reads through the built-in schema`, async () => {
    checkTable(await loadFlowTable(dataPath(d.file), builtinSchema(d.schema), { keepIds: true }), d);
  });
}

test('the shipped files match the SHA-256 digests recorded in data/README.md', async () => {
  const readme = await readFile(dataPath('README.md'), 'utf8');
  const recorded = [...readme.matchAll(/^([0-9a-f]{64}) {2}(\S+)$/gm)].map((m) => [m[2]!, m[1]!] as const);
  assert.deepEqual(recorded.map(([f]) => f).sort(), SHIPPED.map((d) => d.file).sort());
  for (const [file, sha] of recorded) {
    const actual = createHash('sha256').update(await readFile(dataPath(file))).digest('hex');
    assert.equal(actual, sha, `${file} differs from the digest in data/README.md`);
  }
  for (const d of SHIPPED) {
    const own = await readFile(dataPath(`${d.file.split('/')[0]}/README.md`), 'utf8');
    assert.match(own, /## Cite/);
    assert.match(own, /## Terms/);
  }
});
