import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isFedmetaError } from '../src/errors.js';
import { createOptimizer } from '../src/optim/index.js';
import type { OptimizerConfig } from '../src/optim/index.js';

const f32 = (...xs: number[]): Float32Array => new Float32Array(xs);

function assertClose(actual: Float32Array, expected: number[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length, 'length');
  for (let j = 0; j < expected.length; j++) {
    const e = expected[j]!;
    assert.ok(Math.abs(actual[j]! - e) <= tol * Math.max(1, Math.abs(e)), `coordinate ${j}: got ${actual[j]}, expected ${e}`);
  }
}

test('SGD: p - lr * g, returning new arrays', () => {
  const opt = createOptimizer({ kind: 'sgd', lr: 0.5 }, 2);
  const p0 = f32(1, -2);
  const g1 = f32(0.5, -1);
  const p1 = opt.step(p0, g1); // [1 - 0.25, -2 + 0.5]
  assert.deepEqual(Array.from(p1), [0.75, -1.5]);
  assert.deepEqual(Array.from(p0), [1, -2], 'params untouched');
  assert.deepEqual(Array.from(g1), [0.5, -1], 'gradient untouched');
  const p2 = opt.step(p1, f32(1, 1)); // [0.75 - 0.5, -1.5 - 0.5]
  assert.deepEqual(Array.from(p2), [0.25, -2]);
  assert.equal(opt.state().step, 2);
});

test('heavy-ball momentum: m = mu m + g; p - lr m', () => {
  const opt = createOptimizer({ kind: 'momentum', lr: 0.1, momentum: 0.9 }, 1);
  let p = f32(1);
  p = opt.step(p, f32(1)); // m = 1;              p = 1 - 0.1 = 0.9
  assertClose(p, [0.9]);
  p = opt.step(p, f32(1)); // m = 0.9 + 1 = 1.9;   p = 0.9 - 0.19 = 0.71
  assertClose(p, [0.71]);
  p = opt.step(p, f32(-1)); // m = 1.71 - 1 = 0.71; p = 0.71 - 0.071 = 0.639
  assertClose(p, [0.639]);
  assertClose(new Float32Array(opt.state().buffers['m']!), [0.71]);
});

test('Nesterov momentum: p - lr (g + mu m) with the new m', () => {
  const opt = createOptimizer({ kind: 'momentum', lr: 0.1, momentum: 0.9, nesterov: true }, 2);
  let p = f32(1, 0);
  p = opt.step(p, f32(1, 2)); // m = [1, 2]; p = [1 - 0.1 (1 + 0.9), 0 - 0.1 (2 + 1.8)] = [0.81, -0.38]
  assertClose(p, [0.81, -0.38]);
  p = opt.step(p, f32(1, 0)); // m = [1.9, 1.8]; p = [0.81 - 0.1 (1 + 1.71), -0.38 - 0.1 (0 + 1.62)] = [0.539, -0.542]
  assertClose(p, [0.539, -0.542]);
});

test('FedAdam with bias correction and the documented defaults', () => {
  const opt = createOptimizer({ kind: 'adam', lr: 0.1 }, 2); // beta1 0.9, beta2 0.99, epsilon 1e-3
  let p = f32(1, 1);
  // step 1: mhat = g, vhat = g^2, so the step is lr * g / (|g| + eps):
  //   [1 - 0.2 / 2.001, 1 + 0.05 / 0.501] = [0.90004998, 1.09980040]
  p = opt.step(p, f32(2, -0.5));
  assertClose(p, [1 - 0.2 / 2.001, 1 + 0.05 / 0.501]);
  // step 2, g = [1, -0.5]: m = [0.9 * 0.2 + 0.1, 0.9 * -0.05 - 0.05] = [0.28, -0.095];
  //   v = [0.99 * 0.04 + 0.01, 0.99 * 0.0025 + 0.0025] = [0.0496, 0.004975]; 1 - 0.9^2 = 0.19, 1 - 0.99^2 = 0.0199
  //   coordinate 0: 0.1 * (0.28 / 0.19) / (sqrt(0.0496 / 0.0199) + 0.001) = 0.1 * 1.4736842 / 1.5797534 = 0.0932857
  //   coordinate 1 (constant g): mhat = -0.5, vhat = 0.25, the same step as before, 0.05 / 0.501
  p = opt.step(p, f32(1, -0.5));
  assertClose(p, [0.90004998 - 0.0932857, 1 + 0.1 / 0.501], 2e-6);
  const s = opt.state();
  assertClose(new Float32Array(s.buffers['m']!), [0.28, -0.095]);
  assertClose(new Float32Array(s.buffers['v']!), [0.0496, 0.004975]);
  assert.equal(s.step, 2);
});

test('Adam honours explicit beta1, beta2 and epsilon', () => {
  // beta1 = 0, beta2 = 0: mhat = g and vhat = g^2 at every step: p - lr * g / (|g| + eps)
  const opt = createOptimizer({ kind: 'adam', lr: 1, beta1: 0, beta2: 0, epsilon: 1 }, 1);
  assertClose(opt.step(f32(0), f32(3)), [-0.75]); // 0 - 3 / (3 + 1)
  assertClose(opt.step(f32(0), f32(-1)), [0.5]); // 0 + 1 / (1 + 1)
});

test('bad configs are refused with CONFIG', () => {
  const bad: unknown[] = [
    { kind: 'sgd', lr: 0 },
    { kind: 'sgd', lr: NaN },
    { kind: 'momentum', lr: 0.1, momentum: 1 },
    { kind: 'momentum', lr: 0.1 },
    { kind: 'adam', lr: 0.1, beta1: 1 },
    { kind: 'adam', lr: 0.1, beta2: -0.1 },
    { kind: 'adam', lr: 0.1, epsilon: 0 },
    { kind: 'lamb', lr: 0.1 },
  ];
  for (const c of bad) {
    assert.throws(() => createOptimizer(c as OptimizerConfig, 3), (e) => isFedmetaError(e, ErrorCode.CONFIG), JSON.stringify(c));
  }
  assert.throws(() => createOptimizer({ kind: 'sgd', lr: 1 }, -1), (e) => isFedmetaError(e, ErrorCode.CONFIG));
});

test('step refuses wrong lengths and non-finite inputs without moving the state', () => {
  const opt = createOptimizer({ kind: 'adam', lr: 0.1 }, 2);
  opt.step(f32(0, 0), f32(1, 1));
  const before = opt.state();
  assert.throws(() => opt.step(f32(0, 0, 0), f32(1, 1, 1)), (e) => isFedmetaError(e, ErrorCode.SHAPE));
  assert.throws(() => opt.step(f32(0, 0), f32(1)), (e) => isFedmetaError(e, ErrorCode.SHAPE));
  assert.throws(() => opt.step(f32(0, 0), f32(NaN, 1)), (e) => isFedmetaError(e, ErrorCode.NON_FINITE));
  assert.throws(() => opt.step(f32(Infinity, 0), f32(1, 1)), (e) => isFedmetaError(e, ErrorCode.NON_FINITE));
  assert.deepEqual(opt.state(), before);
});
