import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isFedmetaError } from '../src/errors.js';
import { createOptimizer } from '../src/optim/index.js';
import type { OptimizerConfig, OptimizerState } from '../src/optim/index.js';

const CONFIGS: OptimizerConfig[] = [
  { kind: 'sgd', lr: 0.05 },
  { kind: 'momentum', lr: 0.05, momentum: 0.9 },
  { kind: 'momentum', lr: 0.05, momentum: 0.9, nesterov: true },
  { kind: 'adam', lr: 0.01 },
  { kind: 'adam', lr: 0.01, beta1: 0.8, beta2: 0.999, epsilon: 1e-6 },
];

const DIM = 257;

/** Seeded pseudo-gradients with a spread of magnitudes, so that rounding differences would show. */
function gradients(count: number): Float32Array[] {
  let seed = 987654321;
  const rand = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 4294967296;
  };
  return Array.from({ length: count }, () => Float32Array.from({ length: DIM }, () => (rand() - 0.5) * 10 ** (rand() * 6 - 4)));
}

const bytes = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

test('continuing from a restored state gives byte-identical parameters', () => {
  const gs = gradients(7);
  for (const config of CONFIGS) {
    const start: Float32Array = Float32Array.from({ length: DIM }, (_, j) => Math.sin(j));
    const straight = createOptimizer(config, DIM);
    let a = start;
    for (const g of gs) a = straight.step(a, g);

    const first = createOptimizer(config, DIM);
    let b = start;
    for (const g of gs.slice(0, 3)) b = first.step(b, g);
    // structuredClone stands in for writing the checkpoint and reading it back
    const stored: OptimizerState = structuredClone(first.state());
    const resumed = createOptimizer(config, DIM, stored);
    for (const g of gs.slice(3)) b = resumed.step(b, g);

    assert.ok(bytes(a).equals(bytes(b)), `${JSON.stringify(config)}: resumed run differs`);
    assert.deepEqual(resumed.state(), straight.state());
  }
});

test('state() is a deep copy and restoring never aliases the caller\'s buffers', () => {
  const opt = createOptimizer({ kind: 'momentum', lr: 0.1, momentum: 0.5 }, 2);
  opt.step(new Float32Array([0, 0]), new Float32Array([1, 1]));
  const s = opt.state();
  s.buffers['m']![0] = 123;
  s.step = 99;
  assert.deepEqual(Array.from(opt.state().buffers['m']!), [1, 1]);
  assert.equal(opt.state().step, 1);

  const given = opt.state();
  const restored = createOptimizer({ kind: 'momentum', lr: 0.1, momentum: 0.5 }, 2, given);
  given.buffers['m']![0] = 123;
  assert.deepEqual(Array.from(restored.state().buffers['m']!), [1, 1]);
});

test('a fresh state has step 0 and zeroed buffers of the right names', () => {
  assert.deepEqual(createOptimizer({ kind: 'sgd', lr: 1 }, 3).state(), { kind: 'sgd', step: 0, buffers: {} });
  const adam = createOptimizer({ kind: 'adam', lr: 1 }, 3).state();
  assert.deepEqual(Object.keys(adam.buffers).sort(), ['m', 'v']);
  assert.deepEqual(adam.buffers['v'], new Float64Array(3));
});

test('a restored state that does not fit is refused with STATE_CORRUPT', () => {
  const adamConfig: OptimizerConfig = { kind: 'adam', lr: 0.1 };
  const good = (): OptimizerState => ({ kind: 'adam', step: 4, buffers: { m: new Float64Array(3), v: new Float64Array(3) } });
  createOptimizer(adamConfig, 3, good()); // the good one is accepted
  const corruptions: [string, (s: OptimizerState) => unknown][] = [
    ['kind differs from config', (s) => (s.kind = 'momentum')],
    ['buffer too short', (s) => (s.buffers['m'] = new Float64Array(2))],
    ['buffer missing', (s) => delete s.buffers['v']],
    ['extra buffer', (s) => (s.buffers['w'] = new Float64Array(3))],
    ['float32 buffer', (s) => ((s.buffers as Record<string, unknown>)['m'] = new Float32Array(3))],
    ['NaN in a buffer', (s) => (s.buffers['m']![1] = NaN)],
    ['negative second moment', (s) => (s.buffers['v']![2] = -1e-9)],
    ['negative step', (s) => (s.step = -1)],
    ['fractional step', (s) => (s.step = 1.5)],
  ];
  for (const [what, corrupt] of corruptions) {
    const s = good();
    corrupt(s);
    assert.throws(() => createOptimizer(adamConfig, 3, s), (e) => isFedmetaError(e, ErrorCode.STATE_CORRUPT), what);
  }
  // the right state for a model of another size
  assert.throws(() => createOptimizer(adamConfig, 4, good()), (e) => isFedmetaError(e, ErrorCode.STATE_CORRUPT));
});
