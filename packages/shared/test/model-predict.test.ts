import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Detector, ErrorCode, PREDICT_CHUNK, clearPredictCache, initParams, initRuntime, isFedmetaError, predictScores } from '@fedmeta/shared';
import type { Activation, ModelSpec } from '@fedmeta/shared';
import { makeBatch, probs64 } from './meta-reference64.js';

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const activations: Activation[] = ['relu', 'tanh', 'sigmoid', 'elu', 'softplus'];

for (const backend of ['wasm', 'cpu'] as const) {
  test(`predictScores gives the attack probability (binary) and softmax rows (multiclass), every activation (${backend})`, async () => {
    await initRuntime({ backend });
    for (const activation of activations) {
      for (const task of [{ kind: 'binary' as const }, { kind: 'multiclass' as const, classes: 4 }]) {
        const spec: ModelSpec = { inputDim: 5, hidden: [9, 7], activation, task };
        const params = initParams(spec, 21).values;
        const b = makeBatch(33, 5, 2, 8);
        const got = predictScores(spec, params, b.f32.x, 33);
        const want = probs64(spec, Float64Array.from(params), b.f64);
        assert.equal(got.length, task.kind === 'binary' ? 33 : 33 * 4);
        assert.ok(maxAbsDiff(got, want) < 2e-6, `${activation}/${task.kind}: ${maxAbsDiff(got, want)}`);
      }
    }
    clearPredictCache();
  });
}

test('scoring more rows than one chunk gives the same scores as row by row; edits to the vector are seen', async () => {
  await initRuntime({ backend: 'wasm' });
  const spec: ModelSpec = { inputDim: 3, hidden: [4], activation: 'relu', task: { kind: 'binary' } };
  const params = initParams(spec, 3).values;
  const n = PREDICT_CHUNK + 37;
  const b = makeBatch(n, 3, 2, 5);
  const all = predictScores(spec, params, b.f32.x, n);
  const want = probs64(spec, Float64Array.from(params), b.f64);
  assert.ok(maxAbsDiff(all, want) < 2e-6);
  const d = new Detector(spec, params);
  assert.deepEqual(d.predict(b.f32.x.subarray(PREDICT_CHUNK * 3), 37), all.subarray(PREDICT_CHUNK));
  d.dispose();
  assert.throws(() => d.predict(b.f32.x, n), (e) => isFedmetaError(e, ErrorCode.PRECONDITION));
  // The cache keys on content, not on the array object: an in-place edit is not served stale scores.
  params[params.length - 1] = params[params.length - 1]! + 2;
  const shifted = predictScores(spec, params, b.f32.x, n);
  assert.ok(maxAbsDiff(shifted, probs64(spec, Float64Array.from(params), b.f64)) < 2e-6);
  assert.throws(() => predictScores(spec, params, b.f32.x, n + 1), (e) => isFedmetaError(e, ErrorCode.SHAPE));
  assert.equal(predictScores(spec, params, new Float32Array(0), 0).length, 0);
  clearPredictCache();
});
