import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  aggregate,
  centeredClipping,
  coordinateMedian,
  multiKrum,
  multiKrumSelection,
  pairwiseSquaredDistances,
  trimmedMean,
  weightedMean,
} from '../src/aggregate/index.js';
import type { WeightedUpdate } from '../src/aggregate/index.js';

const up = (weight: number, ...xs: number[]): WeightedUpdate => ({ vector: new Float32Array(xs), weight });

function assertClose(actual: Float32Array, expected: number[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length, 'length');
  for (let j = 0; j < expected.length; j++) {
    const e = expected[j]!;
    assert.ok(Math.abs(actual[j]! - e) <= tol * Math.max(1, Math.abs(e)), `coordinate ${j}: got ${actual[j]}, expected ${e}`);
  }
}

// Four honest sites and one Byzantine site (index 4) that also claims a huge example count.
const honestAndByzantine = (): WeightedUpdate[] => [
  up(1, 1, -2, 0),
  up(2, 2, -1, 0),
  up(1, 4, 0, 0),
  up(3, 8, 3, 0),
  up(1000, 1000, -1000, 1e6),
];

test('coordinate median resists the outlier and ignores weights (odd n)', () => {
  // column 0 sorted: 1 2 4 8 1000 -> 4; column 1: -1000 -2 -1 0 3 -> -1; column 2: 0 0 0 0 1e6 -> 0
  const updates = honestAndByzantine();
  assertClose(coordinateMedian(updates), [4, -1, 0]);
  assert.deepEqual(Array.from(updates[4]!.vector), [1000, -1000, 1e6], 'inputs untouched');
  assert.ok(weightedMean(updates)[0]! > 900, 'the plain mean is captured by the claimed weight');
});

test('coordinate median of an even count averages the two middle values', () => {
  // sorted 1 2 3 10 -> (2 + 3) / 2 = 2.5; sorted -4 -4 0 7 -> (-4 + 0) / 2 = -2
  assertClose(coordinateMedian([up(1, 10, -4), up(5, 2, 7), up(1, 1, -4), up(1, 3, 0)]), [2.5, -2]);
  // n = 1: the update itself
  assertClose(coordinateMedian([up(1, 0.25, -3)]), [0.25, -3]);
});

test('trimmed mean drops trim values at each end of every coordinate', () => {
  const updates = honestAndByzantine();
  // trim 1: column 0 keeps 2 4 8 -> 14/3; column 1 keeps -2 -1 0 -> -1; column 2 keeps 0 0 0 -> 0
  assertClose(trimmedMean(updates, 1), [14 / 3, -1, 0]);
  // trim 2 on n = 5 keeps only the middle: the median
  assertClose(trimmedMean(updates, 2), [4, -1, 0]);
  // trim 0: the unweighted mean, (1 + 2 + 4 + 8 + 1000) / 5 = 203
  assertClose(trimmedMean(updates, 0).subarray(0, 1), [203]);
  assertClose(aggregate({ kind: 'trimmed-mean', trim: 1 }, updates), [14 / 3, -1, 0]);
});

test('median and trimmed mean match a sort-based reference across block boundaries and ties', () => {
  // A reference computed by sorting each column; values are rounded to quarters so that ties are common,
  // and 600 coordinates cross the internal block size.
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (const n of [7, 8]) {
    const dim = 600;
    const updates = Array.from({ length: n }, () => ({
      vector: Float32Array.from({ length: dim }, () => Math.round((rand() - 0.5) * 16) / 4),
      weight: 1,
    }));
    const med = coordinateMedian(updates);
    const tm = trimmedMean(updates, 2);
    for (let j = 0; j < dim; j++) {
      const col = updates.map((u) => u.vector[j]!).sort((a, b) => a - b);
      const m = n % 2 === 1 ? col[(n - 1) / 2]! : (col[n / 2 - 1]! + col[n / 2]!) / 2;
      const t = col.slice(2, n - 2).reduce((a, b) => a + b, 0) / (n - 4);
      assert.ok(med[j] === Math.fround(m), `median, n = ${n}, coordinate ${j}`); // === treats -0 as 0
      assert.ok(Math.abs(tm[j]! - t) < 1e-6, `trimmed mean, n = ${n}, coordinate ${j}`);
    }
  }
});

// Multi-Krum case: four honest points on a unit square and one Byzantine point far away.
// Squared distances: d12 = d13 = d24 = d34 = 1, d14 = d23 = 2, d15 = 200, d25 = d35 = 181, d45 = 162.
// With n = 5, f = 1 each score sums the n - f - 2 = 2 nearest: x1..x4 score 1 + 1 = 2, x5 scores 162 + 181 = 343.
const krumCase = (): WeightedUpdate[] => [up(1, 0, 0), up(2, 1, 0), up(3, 0, 1), up(4, 1, 1), up(100, 10, 10)];

test('Multi-Krum scores by the nearest n - f - 2 neighbours and drops the outlier', () => {
  const { scores, selected } = multiKrumSelection(krumCase(), 1);
  assert.deepEqual(Array.from(scores), [2, 2, 2, 2, 343]);
  assert.deepEqual(selected, [0, 1, 2, 3]); // default m = n - f = 4
  // example-weighted mean of x1..x4 with weights 1 2 3 4 (total 10):
  // [(0 + 2 + 0 + 4) / 10, (0 + 0 + 3 + 4) / 10] = [0.6, 0.7]; the outlier's weight of 100 does not count.
  assertClose(multiKrum(krumCase(), 1), [0.6, 0.7]);
  assertClose(aggregate({ kind: 'multi-krum', f: 1 }, krumCase()), [0.6, 0.7]);
});

test('Multi-Krum with m picks the m lowest scores, ties to the lower index', () => {
  // m = 2: x1 (w 1) and x2 (w 2): [(0 + 2) / 3, 0]
  assertClose(multiKrum(krumCase(), 1, 2), [2 / 3, 0]);
  // m = 1 is the original Krum: x1
  assertClose(aggregate({ kind: 'multi-krum', f: 1, m: 1 }, krumCase()), [0, 0]);
});

test('Multi-Krum scores without ties on a line', () => {
  // Points 0, 1, 3, 7, 100 (one coordinate), n = 5, f = 1, 2 nearest neighbours each:
  // 0: {1, 9} -> 10; 1: {1, 4} -> 5; 3: {4, 9} -> 13; 7: {16, 36} -> 52; 100: {8649, 9409} -> 18058
  const updates = [up(1, 0), up(1, 1), up(1, 3), up(1, 7), up(1, 100)];
  const { scores, selected } = multiKrumSelection(updates, 1, 3);
  assert.deepEqual(Array.from(scores), [10, 5, 13, 52, 18058]);
  assert.deepEqual(selected, [1, 0, 2]);
  assertClose(multiKrum(updates, 1, 3), [4 / 3]); // (1 + 0 + 3) / 3
});

test('centered clipping from zero: one pass by hand', () => {
  // tau = 1, v = 0. x1 = [1,0] and x2 = [0,1] have norm 1: kept; x3 = [1,1] (norm sqrt 2) -> [1/sqrt2, 1/sqrt2];
  // the outlier [100, 0] -> [1, 0]. v = ([1,0] + [0,1] + [0.70711,0.70711] + [1,0]) / 4 = [0.676777, 0.426777]
  const updates = [up(1, 1, 0), up(1, 0, 1), up(1, 1, 1), up(1000, 100, 0)];
  const s = Math.SQRT1_2;
  assertClose(centeredClipping(updates, 1, 1), [(2 + s) / 4, (1 + s) / 4]);
  assertClose(weightedMean(updates), [(2 + 100000) / 1003, 2 / 1003], 1e-6); // the mean follows the claimed weight
});

test('centered clipping around a given reference', () => {
  // v = [0.5, 0.5], tau = 1. Differences: [0.5,-0.5], [-0.5,0.5], [0.5,0.5] (norm 0.707: kept) and
  // [99.5,-0.5] (norm sqrt(9900.5) = 99.501256) -> [0.99998737, -0.00502506].
  // v + sum / 4 = [0.5 + 1.49998737 / 4, 0.5 + 0.49497494 / 4] = [0.87499684, 0.62374373]
  const updates = [up(1, 1, 0), up(1, 0, 1), up(1, 1, 1), up(1, 100, 0)];
  const ref = new Float32Array([0.5, 0.5]);
  const out = aggregate({ kind: 'centered-clipping', tau: 1, iterations: 1 }, updates, { reference: ref });
  const norm = Math.sqrt(99.5 * 99.5 + 0.25);
  assertClose(out, [0.5 + (0.5 + 99.5 / norm) / 4, 0.5 + (0.5 - 0.5 / norm) / 4]);
  assertClose(out, [0.87499684, 0.62374373]);
  assert.deepEqual(Array.from(ref), [0.5, 0.5], 'reference untouched');
});

test('centered clipping: k passes equal k single passes chained through the reference', () => {
  const updates = [up(1, 1, 0), up(1, 0, 1), up(1, 1, 1), up(1, 100, 0)];
  const one = centeredClipping(updates, 0.5, 1);
  const two = centeredClipping(updates, 0.5, 1, one);
  const direct = centeredClipping(updates, 0.5, 2);
  // float32 rounding of the intermediate reference is the only difference
  assertClose(direct, Array.from(two), 1e-6);
  // with a radius larger than every difference nothing is clipped: the unweighted mean
  // [(1 + 0 + 1 + 100) / 4, (0 + 1 + 1 + 0) / 4] = [25.5, 0.5]
  assertClose(centeredClipping(updates, 1000, 1), [102 / 4, 2 / 4]);
});

test('all robust aggregators stay with the honest majority under a Byzantine update', () => {
  // Honest sites near [1, 1]; one site sends [1e4, -1e4] and claims 1e6 examples.
  const updates = [up(10, 1, 1), up(10, 1.1, 0.9), up(10, 0.9, 1.1), up(10, 1, 1.05), up(10, 1.05, 1), up(1e6, 1e4, -1e4)];
  const reference = new Float32Array([1, 1]);
  const results: Record<string, Float32Array> = {
    median: aggregate({ kind: 'median' }, updates),
    trimmed: aggregate({ kind: 'trimmed-mean', trim: 1 }, updates),
    krum: aggregate({ kind: 'multi-krum', f: 1 }, updates),
    cc: aggregate({ kind: 'centered-clipping', tau: 0.5 }, updates, { reference }),
  };
  for (const [name, r] of Object.entries(results)) {
    // within the honest cloud's spread (0.25) of [1, 1], plus a tau / n pull for centered clipping
    assert.ok(Math.hypot(r[0]! - 1, r[1]! - 1) < 0.25, `${name} moved to [${r[0]}, ${r[1]}]`);
  }
  const mean = aggregate({ kind: 'mean' }, updates);
  assert.ok(Math.hypot(mean[0]! - 1, mean[1]! - 1) > 1000, 'the mean is captured');
});

test('pairwise distances match a direct computation for odd and even counts across blocks', () => {
  // The kernel works in tiles of 2 x 4 updates and blocks of coordinates; the counts and the length here
  // leave remainders in all of them.
  let seed = 777;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648 - 0.5;
  };
  for (const n of [3, 6, 7, 9]) {
    const dim = 531;
    const vs = Array.from({ length: n }, () => Float32Array.from({ length: dim }, rand));
    const d = pairwiseSquaredDistances(vs, dim);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < n; k++) {
        let s = 0;
        for (let j = 0; j < dim; j++) s += (vs[i]![j]! - vs[k]![j]!) ** 2;
        assert.ok(Math.abs(d[i * n + k]! - s) <= 1e-12 * Math.max(1, s), `n = ${n}, pair ${i}, ${k}`);
      }
    }
  }
});
