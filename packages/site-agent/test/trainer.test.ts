import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ErrorCode, builtinSchema, encodeMessage, initParams, initRuntime, isFedmetaError, manifestSize } from '@fedmeta/shared';
import type { ModelSpec, RoundTask } from '@fedmeta/shared';
import { listDataFiles, loadSiteData, type SiteData } from '../src/site-data.js';
import { computeUpdate, siteHoldout } from '../src/trainer.js';
import { updateMessages } from '../src/uplink.js';
import { csv, rowsOf, siteCsv, tempDir, writeText } from './fixtures.js';

const schema = builtinSchema('cicflowmeter');
const spec: ModelSpec = { inputDim: 85, hidden: [24], activation: 'relu', task: { kind: 'binary' } };
const task: RoundTask = { algorithm: 'fomaml', innerSteps: 3, innerLr: 0.05, shots: 5, queryShots: 8, episodes: 3, seed: 1234 };
const params = initParams(spec, 9);
const offer = { round: 4, version: 2, task, spec, manifest: params.manifest, params: params.values };
let data: SiteData;
let dir: string;

before(async () => {
  await initRuntime();
  dir = tempDir({ after: () => undefined });
  data = await loadSiteData({ files: [writeText(dir, 'site.csv', siteCsv(24))], schema, seed: 3 });
});

test('an update is a finite vector of the manifest\'s length with counts and metrics measured after adaptation', async () => {
  for (const algorithm of ['fomaml', 'reptile', 'maml'] as const) {
    const u = await computeUpdate({ ...offer, task: { ...task, algorithm } }, data, { siteSeed: 77 });
    assert.equal(u.update.length, manifestSize(params.manifest));
    assert.ok(u.update.every(Number.isFinite), algorithm);
    assert.ok(u.update.some((v) => v !== 0), `${algorithm} moves the parameters`);
    assert.deepEqual(u.counts, { episodes: 3, examples: 3 * (2 * 5 + 2 * 8) });
    assert.equal(u.round, 4);
    assert.equal(u.version, 2);
    assert.ok(u.metrics.supportLoss > 0 && Number.isFinite(u.metrics.queryLoss));
    assert.ok(u.metrics.valF1 !== undefined && u.metrics.valF1 >= 0 && u.metrics.valF1 <= 1);
    assert.ok(u.metrics.queryAccuracy !== undefined && u.metrics.queryAccuracy >= 0 && u.metrics.queryAccuracy <= 1);
    // What the agent would send passes the protocol's own schema.
    assert.ok(encodeMessage(updateMessages(u).header).byteLength > 4 * u.update.length);
  }
});

test('the episodes come from the round seed mixed with the site\'s secret seed', async () => {
  const a = await computeUpdate(offer, data, { siteSeed: 77 });
  const b = await computeUpdate(offer, data, { siteSeed: 77 });
  const c = await computeUpdate(offer, data, { siteSeed: 78 });
  const d = await computeUpdate({ ...offer, task: { ...task, seed: 1235 } }, data, { siteSeed: 77 });
  assert.deepEqual(a.update, b.update, 'same seeds, same update');
  assert.notDeepEqual(a.update, c.update, 'another site seed draws other flows');
  assert.notDeepEqual(a.update, d.update, 'another round seed draws other flows');
});

test('valF1 is measured on held-back flows that training episodes never use', () => {
  const h = siteHoldout(data.table, 77);
  assert.equal(h.train.n + h.val.n, data.table.n);
  assert.ok(h.val.n >= 0.15 * data.table.n && h.val.n <= 0.25 * data.table.n);
  const key = (t: typeof h.train, i: number) => Array.from(t.x.subarray(i * t.dim, (i + 1) * t.dim)).join(',');
  const trainRows = new Set(Array.from({ length: h.train.n }, (_, i) => key(h.train, i)));
  let shared = 0;
  for (let i = 0; i < h.val.n; i++) if (trainRows.has(key(h.val, i))) shared++;
  // Identical flows may occur twice in a capture; nearly all held-back rows must be new to training.
  assert.ok(shared <= 0.1 * h.val.n, `${shared} held-back rows also in training`);
});

test('a triage (multiclass) model trains on N-way episodes of the site\'s families', async () => {
  const tri = initParams({ ...spec, task: { kind: 'multiclass', classes: 3 } }, 2);
  const u = await computeUpdate({ ...offer, spec: { ...spec, task: { kind: 'multiclass', classes: 3 } }, manifest: tri.manifest, params: tri.values }, data, { siteSeed: 5 });
  assert.equal(u.update.length, tri.values.length);
  assert.ok(u.update.every(Number.isFinite));
  assert.equal(u.metrics.valF1, undefined);
});

test('a site without attack flows, or with another feature width, is refused with a coded sentence', async () => {
  const benignOnly = await loadSiteData({ files: [writeText(dir, 'benign.csv', csv(rowsOf('BENIGN', 30)))], schema, seed: 3 });
  await assert.rejects(computeUpdate(offer, benignOnly, { siteSeed: 1 }), (e) => {
    assert.ok(isFedmetaError(e, ErrorCode.PRECONDITION));
    assert.match(e.message, /0 attack families/);
    return true;
  });
  const wide = initParams({ ...spec, inputDim: 90 }, 1);
  await assert.rejects(
    computeUpdate({ ...offer, spec: { ...spec, inputDim: 90 }, manifest: wide.manifest, params: wide.values }, data, { siteSeed: 1 }),
    (e) => isFedmetaError(e, ErrorCode.SCHEMA_MISMATCH),
  );
});

test('the network is built from the offer\'s model spec: its activation is used, and a spec that does not fit the parameters is refused', async () => {
  const relu = await computeUpdate(offer, data, { siteSeed: 77 });
  const tanh = await computeUpdate({ ...offer, spec: { ...spec, activation: 'tanh' } }, data, { siteSeed: 77 });
  assert.equal(tanh.update.length, relu.update.length);
  assert.notDeepEqual(tanh.update, relu.update, 'the same parameters through another activation give another meta-gradient');
  await assert.rejects(computeUpdate({ ...offer, spec: { ...spec, hidden: [12] } }, data, { siteSeed: 77 }), (e) => isFedmetaError(e, ErrorCode.SHAPE));
});

test('files listed and files in the watched directory become one table, standardised with the statistics of the site\'s own benign flows', async (t) => {
  const d = tempDir(t);
  const watched = join(d, 'incoming');
  mkdirSync(watched);
  const a = writeText(d, 'a.csv', csv([...rowsOf('BENIGN', 20), ...rowsOf('DoS Hulk', 10)]));
  writeFileSync(join(watched, 'b.csv.gz'), gzipSync(csv([...rowsOf('BENIGN', 20, 20), ...rowsOf('Portscan', 10)])));
  writeText(watched, 'notes.txt', 'not flows');
  assert.deepEqual(await listDataFiles(watched), [join(watched, 'b.csv.gz')]);
  const site = await loadSiteData({ files: [a], watchDir: watched, schema, seed: 1 });
  assert.equal(site.table.n, 60);
  assert.deepEqual(site.table.families, ['BENIGN', 'DoS Hulk', 'Portscan']);
  assert.deepEqual(site.files, [a, join(watched, 'b.csv.gz')]);
  // The first feature (Flow Duration, signed log) has mean 0 and std 1 over the site's BENIGN flows after
  // standardising: the site's normal traffic sets the scale, attack rows do not.
  let sum = 0;
  let sq = 0;
  let benign = 0;
  for (let i = 0; i < site.table.n; i++) {
    if (site.table.labels[i] !== 0) continue;
    const v = site.table.x[i * site.table.dim]!;
    sum += v;
    sq += v * v;
    benign++;
  }
  assert.equal(benign, 40);
  assert.ok(Math.abs(sum / benign) < 1e-4);
  assert.ok(Math.abs(Math.sqrt(sq / benign) - 1) < 1e-3);
  assert.equal(site.stats.mean.length, site.table.dim);
});
