import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MlpTrainer, chooseLayout, initParams, initRuntime, layerWidths, tf, uploadBatch, uploadLayers } from '@fedmeta/shared';
import type { Activation, Layout, ModelSpec } from '@fedmeta/shared';
import { adapt64, grad64, loss64, makeBatch, relError } from './meta-reference64.js';

// The hand-written step has two layouts (examples down the rows for big batches, across the columns for
// small ones); both must be the same SGD. Checked against the float64 reference for every activation.

const activations: Activation[] = ['relu', 'tanh', 'sigmoid', 'elu', 'softplus'];

for (const backend of ['wasm', 'cpu'] as const) {
  test(`both step layouts compute the reference SGD step, loss and gradient (${backend})`, async () => {
    await initRuntime({ backend });
    for (const activation of activations) {
      for (const task of [{ kind: 'binary' as const }, { kind: 'multiclass' as const, classes: 3 }]) {
        for (const hidden of [[], [7], [7, 6]]) {
          const spec: ModelSpec = { inputDim: 5, hidden, activation, task };
          const params = initParams(spec, 31).values;
          const p64 = Float64Array.from(params);
          const b = makeBatch(11, 5, task.kind === 'binary' ? 2 : 3, 3);
          const up = uploadBatch(spec, b.f32);
          const want = adapt64(spec, p64, b.f64, { steps: 2, lr: 0.4 });
          for (const layout of ['rows', 'cols'] as Layout[]) {
            const what = `${activation}/${task.kind}/[${hidden.join(',')}]/${layout}`;
            const tr = new MlpTrainer(spec, params);
            const loss = tr.step(up, 0.4, { layout, withLoss: true })!;
            assert.ok(Math.abs(loss - loss64(spec, p64, b.f64)) < 1e-5, `${what}: loss`);
            tr.step(up, 0.4, { layout });
            const got = tr.read();
            assert.ok(relError(got.map((v, i) => v - params[i]!), want.map((v, i) => v - params[i]!)) < 1e-4, `${what}: step`);
            const { grads } = tr.gradients(up, 0);
            const flat = new Float32Array(params.length);
            let at = 0;
            for (const g of grads) {
              flat.set(g!.kernel.dataSync() as Float32Array, at);
              at += g!.kernel.size;
              flat.set(g!.bias.dataSync() as Float32Array, at);
              at += g!.bias.size;
              g!.kernel.dispose();
              g!.bias.dispose();
            }
            assert.ok(relError(flat, grad64(spec, Float64Array.from(got), b.f64)) < 1e-4, `${what}: gradient`);
            tr.dispose();
          }
          up.dispose();
        }
      }
    }
  });
}

test('the layout follows the batch size: columns for episodes, rows for big batches', () => {
  const widths = layerWidths({ inputDim: 78, hidden: [256, 128], activation: 'relu', task: { kind: 'multiclass', classes: 2 } });
  assert.equal(chooseLayout(widths, 20), 'cols');
  assert.equal(chooseLayout(widths, 64), 'cols');
  assert.equal(chooseLayout(widths, 512), 'rows');
});

test('a trainer borrows the tensors it starts from and never disposes them', async () => {
  await initRuntime({ backend: 'wasm' });
  const spec: ModelSpec = { inputDim: 4, hidden: [5], activation: 'relu', task: { kind: 'binary' } };
  const params = initParams(spec, 1).values;
  const start = uploadLayers(spec, params);
  const b = uploadBatch(spec, makeBatch(6, 4, 2, 2).f32);
  const before = tf.memory().numTensors;
  for (const adaptLast of [1, 2]) {
    const tr = new MlpTrainer(spec, start);
    tr.step(b, 0.1, { adaptLast });
    tr.step(b, 0.1, { adaptLast });
    if (adaptLast === 1) assert.equal(tr.current()[0]!.kernel, start[0]!.kernel, 'a frozen layer keeps its tensor');
    tr.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(start[0]!.kernel.dataSync(), params.subarray(0, 20));
  tf.dispose(start.flatMap((l) => [l.kernel, l.bias]));
  b.dispose();
});

test('Meta-SGD step sizes work in both layouts and stay the caller\'s', async () => {
  await initRuntime({ backend: 'wasm' });
  const spec: ModelSpec = { inputDim: 4, hidden: [6, 5], activation: 'tanh', task: { kind: 'multiclass', classes: 3 } };
  const params = initParams(spec, 4).values;
  const sizesFlat = Float32Array.from(params, (_, i) => 0.05 + ((i * 37) % 11) / 40);
  const b = makeBatch(9, 4, 3, 8);
  const want = adapt64(spec, Float64Array.from(params), b.f64, { steps: 2, lr: 0, sizes: Float64Array.from(sizesFlat) });
  const up = uploadBatch(spec, b.f32);
  const sizes = uploadLayers(spec, sizesFlat);
  up.xT(); // the batch's own transposed copy, made once and kept with the batch
  const before = tf.memory().numTensors;
  for (const layout of ['rows', 'cols'] as Layout[]) {
    const tr = new MlpTrainer(spec, params);
    tr.step(up, 99, { layout, stepSizes: sizes });
    tr.step(up, 99, { layout, stepSizes: sizes });
    const got = tr.read();
    assert.ok(relError(got.map((v, i) => v - params[i]!), want.map((v, i) => v - params[i]!)) < 1e-4, layout);
    tr.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
  let at = 0;
  for (const l of sizes) {
    assert.deepEqual(l.kernel.dataSync(), sizesFlat.subarray(at, at + l.kernel.size));
    at += l.kernel.size + l.bias.size;
  }
  tf.dispose(sizes.flatMap((l) => [l.kernel, l.bias]));
  up.dispose();
});
