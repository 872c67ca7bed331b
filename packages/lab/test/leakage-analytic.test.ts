import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng, dpGradient, initParams, initRuntime, predictScores, seededNoise } from '@fedmeta/shared';
import type { Batch, ModelSpec } from '@fedmeta/shared';
import {
  batchGradient,
  countPositives,
  dlgReconstruct,
  firstLayerCandidates,
  labelOfSingle,
  labelRecovery,
  marginalMedian,
  rowsOf,
  scoreRecovery,
  sumUpdates,
} from '../src/leakage/index.js';

const spec: ModelSpec = { inputDim: 5, hidden: [12, 6], activation: 'relu', task: { kind: 'binary' } };

function batch(n: number, seed: number, labels?: number[]): Batch {
  const rng = createRng(seed);
  return {
    x: Float32Array.from({ length: n * spec.inputDim }, () => rng.normal()),
    y: Int32Array.from(labels ?? Array.from({ length: n }, () => rng.int(2))),
    n,
    dim: spec.inputDim,
  };
}

test('analytic first-layer recovery gives a single flow back exactly, from every active neuron', async () => {
  await initRuntime();
  const params = initParams(spec, 3).values;
  for (const seed of [1, 2, 3]) {
    const b = batch(1, seed);
    const cands = firstLayerCandidates(spec, batchGradient(spec, params, b));
    assert.ok(cands.length > 0, 'some neuron is active');
    for (const c of cands) for (let j = 0; j < spec.inputDim; j++) assert.ok(Math.abs(c[j]! - b.x[j]!) < 1e-4 * (1 + Math.abs(b.x[j]!)));
    assert.equal(scoreRecovery(b.x, 1, spec.inputDim, cands, new Float32Array(spec.inputDim), 1e-3).rowMatch, 1);
  }
});

test('the label of a single flow is read from the output bias gradient, for either label', async () => {
  await initRuntime();
  const params = initParams(spec, 4).values;
  for (const y of [0, 1]) assert.equal(labelOfSingle(spec, batchGradient(spec, params, batch(1, 9, [y]))), y);
});

test('the count of attack flows in a batch follows from the output bias gradient and the mean score', async () => {
  await initRuntime();
  const params = initParams(spec, 5).values;
  const b = batch(6, 12, [1, 0, 1, 1, 0, 0]);
  const scores = predictScores(spec, params, b.x, b.n);
  const meanScore = scores.reduce((a, s) => a + s, 0) / b.n;
  const k = countPositives(spec, batchGradient(spec, params, b), b.n, meanScore);
  assert.equal(k, 3);
  assert.equal(labelRecovery(k, 3, 6), 1);
  assert.equal(labelRecovery(2, 3, 6), 1 - 1 / 6);
});

test('recovery scores pair reconstructions one-to-one and fall back to the marginal guess', () => {
  const truth = Float32Array.from([0, 0, 10, 10]); // two flows of two features
  const fallback = Float32Array.from([5, 5]);
  // One good reconstruction (of flow 1, off by 0.01 in one feature), nothing for flow 0.
  const s = scoreRecovery(truth, 2, 2, [Float32Array.from([10, 10.01])], fallback, 0.05);
  assert.equal(s.rowMatch, 0.5);
  assert.equal(s.featureMatch, 0.5);
  assert.ok(Math.abs(s.mae - (5 + 5 + 0 + 0.01) / 4) < 1e-6);
  // The same reconstruction is never used for two flows.
  assert.equal(scoreRecovery(Float32Array.from([10, 10, 10, 10]), 2, 2, [Float32Array.from([10, 10])], fallback, 0.05).rowMatch, 0.5);
  assert.deepEqual(Array.from(marginalMedian(Float32Array.from([1, 9, 3, 7, 2, 8]), 3, 2)), [2, 8]);
  assert.deepEqual(rowsOf(Float32Array.from([1, 2, 3, 4]), 2, 2).map((r) => Array.from(r)), [[1, 2], [3, 4]]);
  assert.deepEqual(Array.from(sumUpdates([Float32Array.from([1, 2]), Float32Array.from([3, 4])])), [4, 6]);
});

test('DLG inverts a single flow of a small model; DP noise on the same update defeats the analytic attack', async () => {
  await initRuntime();
  const small: ModelSpec = { inputDim: 5, hidden: [16, 16], activation: 'relu', task: { kind: 'binary' } };
  const params = initParams(small, 22).values;
  const rng = createRng(22);
  const b: Batch = { x: Float32Array.from({ length: 5 }, () => rng.normal()), y: Int32Array.from([1]), n: 1, dim: 5 };
  const g = batchGradient(small, params, b);
  const zero = new Float32Array(5);
  const r = dlgReconstruct(small, params, g, 1, { iterations: 300, lr: 0.1, labels: Int32Array.from([1]), init: new Float32Array(5).fill(0.1) });
  const dlg = scoreRecovery(b.x, 1, 5, [r.x], zero, 0.05);
  const guess = scoreRecovery(b.x, 1, 5, [], zero, 0.05);
  assert.ok(dlg.mae < guess.mae / 10, `DLG error ${dlg.mae} should be far below the guess's ${guess.mae}`);
  assert.equal(dlg.rowMatch, 1);
  const noisy = dpGradient(small, params, b, { clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.01 }, seededNoise(2)).gradient;
  assert.equal(scoreRecovery(b.x, 1, 5, firstLayerCandidates(small, noisy), zero, 0.05).rowMatch, 0);
});
