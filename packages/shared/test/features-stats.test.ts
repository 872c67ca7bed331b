import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isFedmetaError } from '../src/errors.js';
import { createRng } from '../src/episodes/index.js';
import { StatsAccumulator, standardize, standardizeRows, subsetTable } from '../src/features/index.js';
import { toySchema, toyTable } from './features-fixtures.js';

function randomMatrix(n: number, dim: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n * dim }, (_, i) => rng.normal() * (1 + (i % dim)) + (i % dim) * 3);
}

test('merging per-site sums gives the pooled mean and std, without any row leaving a site', () => {
  const dim = 5;
  const sites = [randomMatrix(40, dim, 1), randomMatrix(7, dim, 2), randomMatrix(120, dim, 3)];
  const perSite = sites.map((x) => new StatsAccumulator(dim).addRows(x, x.length / dim));
  // What a site shares travels as plain numbers.
  const shared = perSite.map((a) => JSON.parse(JSON.stringify(a.toJSON())) as ReturnType<StatsAccumulator['toJSON']>);
  const merged = shared.slice(1).reduce((acc, s) => StatsAccumulator.merge(acc, s), StatsAccumulator.fromJSON(shared[0]!)).finalize();

  const pooled = new Float32Array(sites.reduce((a, x) => a + x.length, 0));
  let at = 0;
  for (const x of sites) {
    pooled.set(x, at);
    at += x.length;
  }
  const n = pooled.length / dim;
  assert.equal(merged.count, n);
  for (let j = 0; j < dim; j++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += pooled[i * dim + j]!;
    mean /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (pooled[i * dim + j]! - mean) ** 2;
    const std = Math.sqrt(v / n);
    assert.ok(Math.abs(merged.mean[j]! - mean) < 1e-9 * (1 + Math.abs(mean)), `mean ${j}`);
    assert.ok(Math.abs(merged.std[j]! - std) < 1e-7 * (1 + std), `std ${j}`);
  }
  // Merge order does not matter.
  const reversed = StatsAccumulator.merge(StatsAccumulator.merge(perSite[2]!, perSite[1]!), perSite[0]!).finalize();
  reversed.mean.forEach((m, j) => assert.ok(Math.abs(m - merged.mean[j]!) < 1e-9 * (1 + Math.abs(m))));
});

test('standardising with pooled stats gives zero mean and unit std; unmasked and constant features are left unscaled', async () => {
  const table = await toyTable(60, { dos: 30 });
  const acc = StatsAccumulator.forSchema(toySchema).addTable(table);
  const stats = acc.finalize();
  // ratio (no standardisation) and the one-hot / hashed slots keep mean 0, std 1.
  assert.deepEqual(stats.mean.slice(1), new Array(table.dim - 1).fill(0));
  assert.deepEqual(stats.std.slice(1), new Array(table.dim - 1).fill(1));
  const before = table.x.slice();
  standardize(table, stats);
  let m = 0;
  let s = 0;
  for (let i = 0; i < table.n; i++) m += table.x[i * table.dim]!;
  m /= table.n;
  for (let i = 0; i < table.n; i++) s += (table.x[i * table.dim]! - m) ** 2;
  assert.ok(Math.abs(m) < 1e-5);
  assert.ok(Math.abs(Math.sqrt(s / table.n) - 1) < 1e-4);
  for (let i = 0; i < table.n; i++) assert.equal(table.x[i * table.dim + 1], before[i * table.dim + 1]);

  const constant = new StatsAccumulator(2).addRows(Float32Array.from([5, 1, 5, 2, 5, 3]), 3).finalize();
  assert.equal(constant.std[0], 1);
  assert.deepEqual(Array.from(standardizeRows(Float32Array.from([5, 2]), 2, constant)), [0, 0]);
});

test('statistics of a subset of rows equal those of the subset table', async () => {
  const table = await toyTable(30, { dos: 10, scan: 10 });
  const rows = [0, 3, 5, 31, 45];
  const a = StatsAccumulator.forSchema(toySchema).addTable(table, rows).toJSON();
  const b = StatsAccumulator.forSchema(toySchema).addTable(subsetTable(table, rows)).toJSON();
  assert.deepEqual(a, b);
});

test('shape mismatches and empty or non-finite statistics are refused', () => {
  assert.throws(() => new StatsAccumulator(3).add(new StatsAccumulator(4)), (e: unknown) => isFedmetaError(e, ErrorCode.SHAPE));
  assert.throws(() => new StatsAccumulator(3).finalize(), (e: unknown) => isFedmetaError(e, ErrorCode.NO_ROWS));
  assert.throws(
    () => StatsAccumulator.fromJSON({ count: 1, sum: [NaN], sumsq: [1] }),
    (e: unknown) => isFedmetaError(e, ErrorCode.NON_FINITE),
  );
  const stats = new StatsAccumulator(2).addRows(Float32Array.from([1, 2, 3, 4]), 2).finalize();
  assert.throws(() => standardizeRows(new Float32Array(3), 3, stats), (e: unknown) => isFedmetaError(e, ErrorCode.SHAPE));
});
