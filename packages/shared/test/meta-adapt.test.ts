import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, adapt, initParams, initRuntime, isFedmetaError, localTrain, metaGradient, modelParamCount } from '@fedmeta/shared';
import type { Activation, ModelSpec } from '@fedmeta/shared';
import { adapt64, grad64, loss64, makeBatch, relError } from './meta-reference64.js';

const activations: Activation[] = ['relu', 'tanh', 'sigmoid', 'elu', 'softplus'];

for (const backend of ['wasm', 'cpu'] as const) {
  test(`adapt runs k SGD steps exactly as the float64 reference, every activation and task (${backend})`, async () => {
    await initRuntime({ backend });
    for (const activation of activations) {
      for (const task of [{ kind: 'binary' as const }, { kind: 'multiclass' as const, classes: 3 }]) {
        const spec: ModelSpec = { inputDim: 5, hidden: [7, 6], activation, task };
        const params = initParams(spec, 13).values;
        const s = makeBatch(9, 5, task.kind === 'binary' ? 2 : 3, 17);
        const got = adapt(spec, params, s.f32, { steps: 3, lr: 0.3 });
        const want = adapt64(spec, Float64Array.from(params), s.f64, { steps: 3, lr: 0.3 });
        const moved = want.map((v, i) => v - params[i]!);
        const err = relError(got.map((v, i) => v - params[i]!), moved);
        assert.ok(err < 1e-4, `${activation}/${task.kind}: displacement relative error ${err}`);
      }
    }
  });
}

test('ANIL adapts only the last layers and leaves the body bit-for-bit unchanged', async () => {
  await initRuntime({ backend: 'wasm' });
  const spec: ModelSpec = { inputDim: 5, hidden: [7, 6], activation: 'relu', task: { kind: 'multiclass', classes: 3 } };
  const params = initParams(spec, 2).values;
  const s = makeBatch(9, 5, 3, 4);
  const got = adapt(spec, params, s.f32, { steps: 2, lr: 0.3, adaptLast: 1 });
  const head = 6 * 3 + 3;
  const bodyEnd = params.length - head;
  assert.deepEqual(got.subarray(0, bodyEnd), params.subarray(0, bodyEnd));
  const want = adapt64(spec, Float64Array.from(params), s.f64, { steps: 2, lr: 0.3, first: 2 });
  assert.ok(relError(got.subarray(bodyEnd).map((v, i) => v - params[bodyEnd + i]!), want.subarray(bodyEnd).map((v, i) => v - params[bodyEnd + i]!)) < 1e-4);
  assert.throws(
    () => adapt(spec, params, s.f32, { steps: 1, lr: 0.1, adaptLast: 4 }),
    (e) => isFedmetaError(e, ErrorCode.CONFIG),
  );
});

test('Meta-SGD: adapt uses the learned step sizes, FOMAML returns their first-order gradient, Reptile refuses them', async () => {
  await initRuntime({ backend: 'wasm' });
  const spec: ModelSpec = { inputDim: 4, hidden: [5], activation: 'tanh', task: { kind: 'binary' } };
  const init = initParams(spec, 8, { metaSgd: true, metaSgdLr: 0.2 });
  assert.equal(init.manifest.at(-1)!.name, 'metasgd/dense1/bias');
  const n = modelParamCount(spec);
  const values = init.values;
  // Distinct step sizes per parameter, so that using lr instead would show.
  for (let i = n; i < 2 * n; i++) values[i] = 0.05 + 0.4 * ((i * 7919) % 97) / 97;
  const s = makeBatch(8, 4, 2, 1);
  const q = makeBatch(6, 4, 2, 2);
  const sizes = Float64Array.from(values.subarray(n));
  const theta = Float64Array.from(values.subarray(0, n));

  const adapted = adapt(spec, values, s.f32, { steps: 2, lr: 123 });
  assert.deepEqual(adapted.subarray(n), values.subarray(n), 'step sizes are carried over unchanged');
  const want = adapt64(spec, theta, s.f64, { steps: 2, lr: 0, sizes });
  assert.ok(relError(adapted.subarray(0, n).map((v, i) => v - theta[i]!), want.map((v, i) => v - theta[i]!)) < 1e-4);

  const fo = metaGradient('fomaml', spec, values, { support: s.f32, query: q.f32 }, { steps: 2, lr: 123 });
  const gq = grad64(spec, want, q.f64);
  const g0 = grad64(spec, theta, s.f64);
  const g1 = grad64(spec, adapt64(spec, theta, s.f64, { steps: 1, lr: 0, sizes }), s.f64);
  assert.ok(relError(fo.update.subarray(0, n), gq) < 1e-4);
  assert.ok(relError(fo.update.subarray(n), gq.map((v, i) => -v * (g0[i]! + g1[i]!))) < 1e-4);
  assert.ok(Math.abs(fo.metrics.queryLoss - loss64(spec, want, q.f64)) < 1e-5);

  assert.throws(
    () => metaGradient('reptile', spec, values, { support: s.f32, query: q.f32 }, { steps: 1, lr: 0.1 }),
    (e) => isFedmetaError(e, ErrorCode.CONFIG),
  );
  assert.throws(
    () => metaGradient('fomaml', spec, values, { support: s.f32, query: q.f32 }, { steps: 1, lr: 0.1, metaSgd: false }),
    (e) => isFedmetaError(e, ErrorCode.WRONG_LENGTH),
  );
});

test('localTrain: full-batch steps equal adapt, minibatches are deterministic per seed, update = params - trained', async () => {
  await initRuntime({ backend: 'wasm' });
  const spec: ModelSpec = { inputDim: 5, hidden: [8], activation: 'relu', task: { kind: 'multiclass', classes: 4 } };
  const params = initParams(spec, 6).values;
  const b = makeBatch(40, 5, 4, 12);
  const full = localTrain(spec, params, b.f32, { steps: 3, lr: 0.2 });
  const adapted = adapt(spec, params, b.f32, { steps: 3, lr: 0.2 });
  assert.deepEqual(full.update, params.map((v, i) => v - adapted[i]!));
  assert.equal(full.metrics.examples, 40);
  assert.ok(Math.abs(full.metrics.supportLoss - loss64(spec, Float64Array.from(params), b.f64)) < 1e-5);
  assert.ok(full.metrics.queryLoss < full.metrics.supportLoss, 'training lowers the training loss');

  const mb1 = localTrain(spec, params, b.f32, { steps: 7, lr: 0.2, batchSize: 16, seed: 3 });
  const mb2 = localTrain(spec, params, b.f32, { steps: 7, lr: 0.2, batchSize: 16, seed: 3 });
  const mb3 = localTrain(spec, params, b.f32, { steps: 7, lr: 0.2, batchSize: 16, seed: 4 });
  assert.deepEqual(mb1.update, mb2.update);
  assert.notDeepEqual(mb1.update, mb3.update);
  assert.ok(mb1.metrics.queryLoss < mb1.metrics.supportLoss);
});

test('bad inputs are refused with coded errors', async () => {
  await initRuntime({ backend: 'wasm' });
  const spec: ModelSpec = { inputDim: 3, hidden: [4], activation: 'relu', task: { kind: 'binary' } };
  const params = initParams(spec, 1).values;
  const s = makeBatch(4, 3, 2, 1).f32;
  const wrongDim = { ...s, dim: 4, x: new Float32Array(16) };
  assert.throws(() => adapt(spec, params, wrongDim, { steps: 1, lr: 0.1 }), (e) => isFedmetaError(e, ErrorCode.SHAPE));
  const badLabel = { ...s, y: Int32Array.of(0, 1, 2, 1) };
  assert.throws(() => adapt(spec, params, badLabel, { steps: 1, lr: 0.1 }), (e) => isFedmetaError(e, ErrorCode.SHAPE));
  assert.throws(() => adapt(spec, params.subarray(1), s, { steps: 1, lr: 0.1 }), (e) => isFedmetaError(e, ErrorCode.WRONG_LENGTH));
  const empty = { x: new Float32Array(0), y: new Int32Array(0), n: 0, dim: 3 };
  assert.throws(() => metaGradient('maml', spec, params, { support: s, query: empty }, { steps: 1, lr: 0.1 }), (e) => isFedmetaError(e, ErrorCode.SHAPE));
  // Reptile needs no query: its reported query loss is then the support loss after adaptation.
  const r = metaGradient('reptile', spec, params, { support: s, query: empty }, { steps: 1, lr: 0.1 });
  assert.ok(Number.isFinite(r.metrics.queryLoss));
  assert.throws(() => metaGradient('nope' as 'maml', spec, params, { support: s, query: s }, { steps: 1, lr: 0.1 }), (e) => isFedmetaError(e, ErrorCode.CONFIG));
});
