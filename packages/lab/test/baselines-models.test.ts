import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng } from '@fedmeta/shared';
import type { Batch } from '@fedmeta/shared';
import { LogisticRegression, RandomForest } from '../src/baselines/index.js';

/** Two classes that differ on feature 2 only (attack above 1, benign below -1); the other features are noise. */
function blobs(n: number, dim: number, seed: number): Batch {
  const rng = createRng(seed);
  const x = new Float32Array(n * dim);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 2;
    for (let j = 0; j < dim; j++) x[i * dim + j] = rng.normal();
    x[i * dim + 2] = (y[i] === 1 ? 2 : -2) + 0.3 * rng.normal();
  }
  return { x, y, n, dim };
}

function accuracy(scores: Float32Array, y: Int32Array): number {
  let ok = 0;
  for (let i = 0; i < y.length; i++) if ((scores[i]! >= 0.5 ? 1 : 0) === y[i]) ok++;
  return ok / y.length;
}

test('the random forest separates a clear signal from noise and scores in [0, 1]', () => {
  const train = blobs(20, 9, 1);
  const test_ = blobs(400, 9, 2);
  const forest = RandomForest.fit(train, { trees: 50, seed: 7 });
  assert.equal(forest.size, 50);
  const s = forest.predict(test_.x, test_.n);
  assert.ok(s.every((v) => v >= 0 && v <= 1));
  assert.ok(accuracy(s, test_.y) > 0.95, `accuracy ${accuracy(s, test_.y)}`);
});

test('the random forest is reproducible from its seed and differs with another seed', () => {
  const train = blobs(12, 9, 3);
  const probe = blobs(50, 9, 4);
  const a = RandomForest.fit(train, { trees: 20, seed: 11 }).predict(probe.x, probe.n);
  const b = RandomForest.fit(train, { trees: 20, seed: 11 }).predict(probe.x, probe.n);
  const c = RandomForest.fit(train, { trees: 20, seed: 12 }).predict(probe.x, probe.n);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

test('a forest on one labelled flow of each class (K = 1) still gives valid scores', () => {
  const x = new Float32Array([0, 0, 0, 5, 5, 5]);
  const forest = RandomForest.fit({ x, y: new Int32Array([0, 1]), n: 2, dim: 3 }, { trees: 30, seed: 1 });
  const s = forest.predict(new Float32Array([0, 0, 0, 5, 5, 5]), 2);
  assert.ok(s[1]! > s[0]!, 'the attack-like row scores higher');
  assert.throws(() => RandomForest.fit({ x, y: new Int32Array([0, 1]), n: 2, dim: 3 }, { trees: 0, seed: 1 }));
});

test('logistic regression learns the signal and its L2 penalty shrinks the weights', () => {
  const train = blobs(20, 9, 5);
  const probe = blobs(400, 9, 6);
  const loose = LogisticRegression.fit(train, { steps: 300, lr: 0.1, l2: 0 });
  const tight = LogisticRegression.fit(train, { steps: 300, lr: 0.1, l2: 1 });
  assert.ok(accuracy(loose.predict(probe.x, probe.n), probe.y) > 0.95);
  const norm = (w: Float64Array): number => Math.hypot(...w);
  assert.ok(norm(tight.weights) < norm(loose.weights));
  assert.ok(Math.abs(loose.weights[2]!) > Math.abs(loose.weights[0]!), 'the informative feature carries the largest weight');
  // Trained from zero: the same data gives the same model.
  assert.deepEqual(LogisticRegression.fit(train).weights, LogisticRegression.fit(train).weights);
});
