import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregate, clipToNorm, l2Norm, normClip, weightedMean } from '../src/aggregate/index.js';
import type { WeightedUpdate } from '../src/aggregate/index.js';

const f32 = (...xs: number[]): Float32Array => new Float32Array(xs);
const up = (weight: number, ...xs: number[]): WeightedUpdate => ({ vector: f32(...xs), weight });

function assertClose(actual: Float32Array, expected: number[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length, 'length');
  for (let j = 0; j < expected.length; j++) {
    const e = expected[j]!;
    assert.ok(Math.abs(actual[j]! - e) <= tol * Math.max(1, Math.abs(e)), `coordinate ${j}: got ${actual[j]}, expected ${e}`);
  }
}

test('weighted mean weights each update by its example count', () => {
  // (1*[1,2] + 3*[3,6] + 0*[100,-100]) / (1 + 3 + 0) = [10, 20] / 4 = [2.5, 5]; a zero-weight update has no say.
  const out = weightedMean([up(1, 1, 2), up(3, 3, 6), up(0, 100, -100)]);
  assert.ok(out instanceof Float32Array);
  assert.deepEqual(Array.from(out), [2.5, 5]);
});

test('weighted mean of three updates of length 3', () => {
  // weights 2, 1, 1 (total 4): [(2*1 + 4 + 0)/4, (2*0 + 0 + 8)/4, (2*-1 + -1 + 1)/4] = [1.5, 2, -0.5]
  assertClose(weightedMean([up(2, 1, 0, -1), up(1, 4, 0, -1), up(1, 0, 8, 1)]), [1.5, 2, -0.5]);
});

test('a single outlier drags the plain mean (which is why the robust aggregators exist)', () => {
  // ([1,1] + [1,1] + [1,1] + [1001,-999]) / 4 = [251, -249]
  assertClose(weightedMean([up(1, 1, 1), up(1, 1, 1), up(1, 1, 1), up(1, 1001, -999)]), [251, -249]);
});

test('l2Norm sums in float64 for both array types', () => {
  assert.equal(l2Norm(f32(3, 4)), 5); // sqrt(9 + 16)
  assert.equal(l2Norm(new Float64Array([1, 2, 2])), 3); // sqrt(1 + 4 + 4)
  assert.equal(l2Norm(f32()), 0);
  // 3e38^2 would overflow float32 but not float64: sqrt(2) * 3e38
  const big = Math.fround(3e38);
  assert.ok(Math.abs(l2Norm(f32(big, big)) - Math.SQRT2 * big) < 1e-9 * big);
});

test('clipToNorm scales long vectors onto the sphere and copies short ones', () => {
  // [3, 4] has norm 5; clipped to 1: [3/5, 4/5]
  const v = f32(3, 4);
  assertClose(clipToNorm(v, 1), [0.6, 0.8]);
  assert.deepEqual(Array.from(v), [3, 4], 'input untouched');
  const short = f32(0.3, 0.4);
  const copy = clipToNorm(short, 1);
  assert.notEqual(copy, short, 'a new array');
  assert.deepEqual(copy, short);
});

test('normClip clips each update before the example-weighted mean', () => {
  // [3,4] (norm 5) -> [0.6, 0.8]; [0, 0.5] (norm 0.5) stays.
  // weights 1 and 3: [(0.6 + 0) / 4, (0.8 + 3 * 0.5) / 4] = [0.15, 0.575]
  assertClose(normClip([up(1, 3, 4), up(3, 0, 0.5)], 1), [0.15, 0.575]);
});

test('normClip bounds the pull of an outlier to maxNorm * w / W', () => {
  // Honest [0.1, 0] x3 stay; outlier [1000, 0] -> [1, 0]; mean = (0.3 + 1) / 4 = 0.325
  const out = normClip([up(1, 0.1, 0), up(1, 0.1, 0), up(1, 0.1, 0), up(1, 1000, 0)], 1);
  assertClose(out, [0.325, 0]);
});

test('aggregate dispatches mean and norm-clip and leaves inputs untouched', () => {
  const updates = [up(1, 3, 4), up(3, 0, 0.5)];
  assertClose(aggregate({ kind: 'mean' }, updates), [0.75, 1 + 0.375]); // [(3 + 0)/4, (4 + 1.5)/4]
  assertClose(aggregate({ kind: 'norm-clip', maxNorm: 1 }, updates), [0.15, 0.575]);
  assert.deepEqual(Array.from(updates[0]!.vector), [3, 4]);
  assert.deepEqual(Array.from(updates[1]!.vector), [0, 0.5]);
});
