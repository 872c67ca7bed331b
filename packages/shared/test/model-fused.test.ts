import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Detector, MlpTrainer, initParams, initRuntime, tf, uploadBatch, uploadLayers } from '@fedmeta/shared';
import type { DetectorTask, ModelSpec } from '@fedmeta/shared';
import { fusedKernels } from '../src/model/fused.js';
import { adapt64, grad64, loss64, makeBatch, probs64, relError } from './meta-reference64.js';

// On the wasm backend a relu network trains on the compiled kernels (model/fused.ts); the tfjs path is
// what `layout: 'rows'` forces. Both must be the same SGD, checked step for step and against float64.

const tasks: DetectorTask[] = [{ kind: 'binary' }, { kind: 'multiclass', classes: 2 }, { kind: 'multiclass', classes: 3 }];
// Widths that reach every tail of the kernels' 4 x 8 tiles (and a model with no hidden layer).
const hiddens = [[], [7], [9, 6], [16, 12, 5]];

function gradVector(grads: ReadonlyArray<{ kernel: tf.Tensor; bias: tf.Tensor } | undefined>): Float32Array {
  const parts: Float32Array[] = [];
  for (const g of grads) {
    parts.push(g!.kernel.dataSync() as Float32Array, g!.bias.dataSync() as Float32Array);
    g!.kernel.dispose();
    g!.bias.dispose();
  }
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

test('the compiled step equals the tfjs step, with ANIL and with Meta-SGD step sizes; loss and gradients match float64', async () => {
  await initRuntime({ backend: 'wasm' });
  const before = tf.memory().numTensors;
  for (const task of tasks) {
    for (const hidden of hiddens) {
      const spec: ModelSpec = { inputDim: 6, hidden, activation: 'relu', task };
      assert.ok(fusedKernels(spec), 'the compiled path is the one under test');
      const params = initParams(spec, 7).values;
      const sizesFlat = Float32Array.from(params, (_, i) => 0.05 + ((i * 13) % 7) / 20);
      const sizes = uploadLayers(spec, sizesFlat);
      const L = hidden.length + 1;
      for (const n of [1, 5, 13]) {
        const b = makeBatch(n, 6, task.kind === 'binary' ? 2 : task.classes, n + hidden.length);
        const up = uploadBatch(spec, b.f32);
        for (const adaptLast of [...new Set([L, 1, Math.min(2, L)])]) {
          for (const withSizes of [false, true]) {
            const what = `${task.kind}${task.kind === 'multiclass' ? task.classes : ''} [${hidden}] n=${n} adaptLast=${adaptLast}${withSizes ? ' Meta-SGD' : ''}`;
            const opts = { adaptLast, withLoss: true, ...(withSizes ? { stepSizes: sizes } : {}) };
            const fused = new MlpTrainer(spec, params);
            const plain = new MlpTrainer(spec, params);
            for (let s = 0; s < 3; s++) {
              const lf = fused.step(up, 0.3, opts)!;
              const lp = plain.step(up, 0.3, { ...opts, layout: 'rows' })!;
              assert.ok(Math.abs(lf - lp) < 1e-5 * (1 + Math.abs(lp)), `${what}: loss at step ${s}`);
            }
            const got = fused.read();
            const want = plain.read();
            assert.ok(relError(got.map((v, i) => v - params[i]!), want.map((v, i) => v - params[i]!)) < 1e-5, `${what}: parameters`);
            const p64 = Float64Array.from(got);
            assert.ok(Math.abs(fused.loss(up) - loss64(spec, p64, b.f64)) < 1e-5, `${what}: loss()`);
            const { grads, loss } = fused.gradients(up, 0, true);
            assert.ok(Math.abs(loss! - loss64(spec, p64, b.f64)) < 1e-5, `${what}: gradient loss`);
            const g64 = grad64(spec, p64, b.f64);
            const norm = Math.sqrt(g64.reduce((a, v) => a + v * v, 0));
            if (norm > 1e-6) assert.ok(relError(gradVector(grads), g64) < 1e-4, `${what}: gradients`);
            else gradVector(grads);
            fused.dispose();
            plain.dispose();
          }
        }
        up.dispose();
      }
      tf.dispose(sizes.flatMap((l) => [l.kernel, l.bias]));
    }
  }
  assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
});

test('switching between the compiled and the tfjs path mid-training stays on one SGD trajectory', async () => {
  await initRuntime({ backend: 'wasm' });
  const spec: ModelSpec = { inputDim: 5, hidden: [12, 6], activation: 'relu', task: { kind: 'multiclass', classes: 3 } };
  const params = initParams(spec, 12).values;
  const b = makeBatch(14, 5, 3, 6);
  const up = uploadBatch(spec, b.f32);
  up.xT(); // the cols layout's transposed batch, kept with the batch
  const before = tf.memory().numTensors;
  const tr = new MlpTrainer(spec, params);
  for (const layout of [undefined, 'cols', undefined, 'rows', undefined] as const) tr.step(up, 0.2, layout ? { layout } : {});
  const want = adapt64(spec, Float64Array.from(params), b.f64, { steps: 5, lr: 0.2 });
  const got = tr.read();
  assert.ok(relError(got.map((v, i) => v - params[i]!), want.map((v, i) => v - params[i]!)) < 1e-4);
  tr.dispose();
  assert.equal(tf.memory().numTensors, before);
  up.dispose();
});

test('gradients of only the last layers (ANIL) leave the earlier entries undefined and match float64', async () => {
  await initRuntime({ backend: 'wasm' });
  const spec: ModelSpec = { inputDim: 5, hidden: [11, 9], activation: 'relu', task: { kind: 'multiclass', classes: 4 } };
  const params = initParams(spec, 3).values;
  const b = makeBatch(10, 5, 4, 4);
  const up = uploadBatch(spec, b.f32);
  const tr = new MlpTrainer(spec, params);
  const { grads } = tr.gradients(up, 1);
  assert.equal(grads[0], undefined);
  const g64 = grad64(spec, Float64Array.from(params), b.f64);
  const from = 5 * 11 + 11;
  assert.ok(relError(gradVector(grads.slice(1)), g64.subarray(from)) < 1e-4);
  tr.dispose();
  up.dispose();
});

test('a frozen layer keeps its tensor and a borrowed start is never disposed or changed', async () => {
  await initRuntime({ backend: 'wasm' });
  const spec: ModelSpec = { inputDim: 4, hidden: [8, 6], activation: 'relu', task: { kind: 'binary' } };
  const params = initParams(spec, 1).values;
  const start = uploadLayers(spec, params);
  const up = uploadBatch(spec, makeBatch(9, 4, 2, 2).f32);
  const before = tf.memory().numTensors;
  for (const adaptLast of [1, 2, 3, 1]) {
    const tr = new MlpTrainer(spec, start);
    tr.step(up, 0.1, { adaptLast });
    tr.step(up, 0.1, { adaptLast });
    if (adaptLast === 1) assert.equal(tr.current()[0]!.kernel, start[0]!.kernel);
    // Switching between ANIL and full steps (the kernels' transposes are made again as needed).
    tr.step(up, 0.1, { adaptLast: 3 });
    tr.step(up, 0.1, { adaptLast });
    tr.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
  const back = new Float32Array(params.length);
  let at = 0;
  for (const l of start) {
    back.set(l.kernel.dataSync() as Float32Array, at);
    at += l.kernel.size;
    back.set(l.bias.dataSync() as Float32Array, at);
    at += l.bias.size;
  }
  assert.deepEqual(back, params);
  tf.dispose(start.flatMap((l) => [l.kernel, l.bias]));
  up.dispose();
});

test('parameters uploaded while the cpu backend was active train and score on wasm', async () => {
  const spec: ModelSpec = { inputDim: 3, hidden: [5], activation: 'relu', task: { kind: 'multiclass', classes: 3 } };
  const params = initParams(spec, 9).values;
  const b = makeBatch(6, 3, 3, 5);
  await initRuntime({ backend: 'cpu' });
  const start = uploadLayers(spec, params);
  const detector = new Detector(spec, params);
  await initRuntime({ backend: 'wasm' });
  const probs = detector.predict(b.f32.x, 6);
  assert.ok(relError(probs, probs64(spec, Float64Array.from(params), b.f64)) < 1e-5);
  const up = uploadBatch(spec, b.f32);
  const tr = new MlpTrainer(spec, start);
  const loss = tr.step(up, 0.1, { withLoss: true })!;
  assert.ok(Math.abs(loss - loss64(spec, Float64Array.from(params), b.f64)) < 1e-5);
  tr.dispose();
  detector.dispose();
  up.dispose();
  tf.dispose(start.flatMap((l) => [l.kernel, l.bias]));
});
