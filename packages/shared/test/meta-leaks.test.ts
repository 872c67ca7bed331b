import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Detector,
  adapt,
  clearPredictCache,
  initParams,
  initRuntime,
  localTrain,
  metaGradient,
  metaGradientMean,
  predictScores,
  tf,
} from '@fedmeta/shared';
import type { MetaAlgorithm, ModelSpec } from '@fedmeta/shared';
import { makeBatch } from './meta-reference64.js';

// Every entry point must leave tf.memory().numTensors as it found it: a site runs thousands of rounds.

const spec: ModelSpec = { inputDim: 6, hidden: [8, 5], activation: 'tanh', task: { kind: 'multiclass', classes: 3 } };
const binary: ModelSpec = { inputDim: 6, hidden: [8], activation: 'relu', task: { kind: 'binary' } };

function same(what: string, fn: () => unknown): void {
  const before = tf.memory().numTensors;
  fn();
  assert.equal(tf.memory().numTensors, before, `${what} leaked tensors`);
}

for (const backend of ['wasm', 'cpu'] as const) {
  test(`no tensor leaks: inner loop, every meta-gradient, local training, scoring (${backend})`, async () => {
    await initRuntime({ backend });
    const params = initParams(spec, 1).values;
    const withSizes = initParams(spec, 1, { metaSgd: true }).values;
    const s = makeBatch(10, 6, 3, 1).f32;
    const q = makeBatch(7, 6, 3, 2).f32;
    const ep = { support: s, query: q };
    same('adapt', () => adapt(spec, params, s, { steps: 3, lr: 0.1 }));
    same('adapt (ANIL, Meta-SGD)', () => adapt(spec, withSizes, s, { steps: 3, lr: 0.1, adaptLast: 2 }));
    for (const algorithm of ['reptile', 'fomaml', 'maml'] as MetaAlgorithm[]) {
      same(algorithm, () => metaGradient(algorithm, spec, params, ep, { steps: 2, lr: 0.1 }));
      same(`${algorithm} mean`, () => metaGradientMean(algorithm, spec, params, [ep, ep], { steps: 2, lr: 0.1, adaptLast: 1 }));
    }
    for (const algorithm of ['fomaml', 'maml'] as MetaAlgorithm[]) {
      same(`${algorithm} Meta-SGD`, () => metaGradient(algorithm, spec, withSizes, ep, { steps: 2, lr: 0.1 }));
    }
    same('maml with no inner step', () => metaGradient('maml', spec, withSizes, ep, { steps: 0, lr: 0.1 }));
    same('localTrain', () => localTrain(spec, params, s, { steps: 4, lr: 0.1, batchSize: 4 }));
    // A failing call must not leak either.
    same('refused call', () => assert.throws(() => metaGradient('reptile', spec, withSizes, ep, { steps: 1, lr: 0.1 })));

    const x = makeBatch(50, 6, 2, 3).f32.x;
    const bparams = initParams(binary, 2).values;
    same('predictScores + clearPredictCache', () => {
      predictScores(binary, bparams, x, 50);
      predictScores(binary, bparams, x, 50);
      predictScores(spec, params, x, 50);
      clearPredictCache();
    });
    predictScores(binary, bparams, x, 50);
    same('predictScores with a cached detector', () => predictScores(binary, bparams, x, 50));
    clearPredictCache();
    same('Detector', () => {
      const d = new Detector(binary, bparams);
      d.predict(x, 50);
      d.dispose();
    });
  });
}
