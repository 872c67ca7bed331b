import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initParams, initRuntime, metaGradient, metaGradientMean, modelParamCount } from '@fedmeta/shared';
import type { Episode, ModelSpec } from '@fedmeta/shared';
import { makeBatch, relError } from './meta-reference64.js';
import type { Batch64 } from './meta-reference64.js';

// Reptile and first-order MAML on a linear model (no hidden layer: logistic / softmax regression), whose loss
// gradient has a closed form: dL/dW = Xᵀ(p - Y)/n, dL/db = mean(p - Y), with p = sigmoid or softmax of XW + b.
// From zero parameters p is exactly 1/2 (or 1/C), so the first step is known without any model code.

const d = 4;
const binary: ModelSpec = { inputDim: d, hidden: [], activation: 'relu', task: { kind: 'binary' } };
const threeWay: ModelSpec = { inputDim: d, hidden: [], activation: 'relu', task: { kind: 'multiclass', classes: 3 } };

/** Closed-form gradient of the mean cross-entropy of a linear model at (W [d, c], b [c]) = theta. */
function linearGrad(c: number, theta: Float64Array, b: Batch64): Float64Array {
  const g = new Float64Array(theta.length);
  for (let i = 0; i < b.n; i++) {
    const z = new Float64Array(c);
    for (let o = 0; o < c; o++) {
      z[o] = theta[d * c + o]!;
      for (let k = 0; k < d; k++) z[o]! += b.x[i * d + k]! * theta[k * c + o]!;
    }
    let p: Float64Array;
    let target: Float64Array;
    if (c === 1) {
      p = Float64Array.of(1 / (1 + Math.exp(-z[0]!)));
      target = Float64Array.of(b.y[i] === 1 ? 1 : 0);
    } else {
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const s = e.reduce((a, v) => a + v, 0);
      p = e.map((v) => v / s);
      target = new Float64Array(c);
      target[b.y[i]!] = 1;
    }
    for (let o = 0; o < c; o++) {
      const r = (p[o]! - target[o]!) / b.n;
      g[d * c + o]! += r;
      for (let k = 0; k < d; k++) g[k * c + o]! += b.x[i * d + k]! * r;
    }
  }
  return g;
}

function sgd(c: number, theta: Float64Array, b: Batch64, lr: number, steps: number): Float64Array {
  let t = theta;
  for (let k = 0; k < steps; k++) {
    const g = linearGrad(c, t, b);
    t = t.map((v, i) => v - lr * g[i]!);
  }
  return t;
}

function episode(classes: number, seed: number): { ep: Episode; s: Batch64; q: Batch64 } {
  const s = makeBatch(8, d, classes, seed);
  const q = makeBatch(6, d, classes, seed + 100);
  return { ep: { support: s.f32, query: q.f32 }, s: s.f64, q: q.f64 };
}

for (const backend of ['wasm', 'cpu'] as const) {
  test(`from zero parameters, one Reptile step is lr * Xᵀ(1/2 - y)/n and FOMAML with no step is the query gradient (${backend})`, async () => {
    await initRuntime({ backend });
    const { ep, s, q } = episode(2, 1);
    const zero = new Float32Array(modelParamCount(binary));
    const lr = 0.25;
    const expected = new Float64Array(d + 1);
    for (let i = 0; i < s.n; i++) {
      const r = (0.5 - (s.y[i] === 1 ? 1 : 0)) / s.n;
      expected[d]! += r;
      for (let k = 0; k < d; k++) expected[k]! += s.x[i * d + k]! * r;
    }
    const rep = metaGradient('reptile', binary, zero, ep, { steps: 1, lr });
    assert.ok(relError(rep.update, expected.map((v) => lr * v)) < 1e-6);
    assert.ok(Math.abs(rep.metrics.supportLoss - Math.log(2)) < 1e-6, 'loss of a zero model is log 2');
    assert.equal(rep.metrics.examples, s.n + q.n);

    const fo0 = metaGradient('fomaml', binary, zero, ep, { steps: 0, lr });
    assert.ok(relError(fo0.update, linearGrad(1, new Float64Array(d + 1), q)) < 1e-6);
  });

  test(`Reptile and FOMAML with 1-3 inner steps match the closed-form linear-model iterates (${backend})`, async () => {
    await initRuntime({ backend });
    for (const [spec, c] of [
      [binary, 1],
      [threeWay, 3],
    ] as const) {
      const { ep, s, q } = episode(spec.task.kind === 'binary' ? 2 : 3, 7);
      const theta = initParams(spec, 5).values;
      const t64 = Float64Array.from(theta);
      for (const steps of [1, 2, 3]) {
        const lr = 0.5;
        const adapted = sgd(c, t64, s, lr, steps);
        const rep = metaGradient('reptile', spec, theta, ep, { steps, lr });
        assert.ok(relError(rep.update, t64.map((v, i) => v - adapted[i]!)) < 1e-5, `reptile c=${c} steps=${steps}`);
        const fo = metaGradient('fomaml', spec, theta, ep, { steps, lr });
        assert.ok(relError(fo.update, linearGrad(c, adapted, q)) < 1e-5, `fomaml c=${c} steps=${steps}`);
      }
    }
  });
}

test('the algorithms agree where their definitions coincide (MLP)', async () => {
  await initRuntime({ backend: 'wasm' });
  const spec: ModelSpec = { inputDim: d, hidden: [6, 5], activation: 'tanh', task: { kind: 'multiclass', classes: 3 } };
  const theta = initParams(spec, 9).values;
  const { ep } = episode(3, 3);
  const lr = 0.125;
  // One Reptile step is lr times the support gradient, which is FOMAML with no step and query = support.
  const rep = metaGradient('reptile', spec, theta, ep, { steps: 1, lr }).update;
  const grad = metaGradient('fomaml', spec, theta, { support: ep.support, query: ep.support }, { steps: 0, lr }).update;
  assert.ok(relError(rep, grad.map((v) => lr * v)) < 1e-5);
  // With no inner step first- and second-order MAML are the same gradient.
  const fo = metaGradient('fomaml', spec, theta, ep, { steps: 0, lr }).update;
  const so = metaGradient('maml', spec, theta, ep, { steps: 0, lr }).update;
  assert.ok(relError(fo, so) < 1e-5);
  // The mean over episodes is the mean of the per-episode results.
  const other = episode(3, 42).ep;
  const a = metaGradient('fomaml', spec, theta, ep, { steps: 2, lr });
  const b = metaGradient('fomaml', spec, theta, other, { steps: 2, lr });
  const mean = metaGradientMean('fomaml', spec, theta, [ep, other], { steps: 2, lr });
  assert.ok(relError(mean.update, a.update.map((v, i) => (v + b.update[i]!) / 2)) < 1e-6);
  assert.equal(mean.metrics.examples, a.metrics.examples + b.metrics.examples);
  assert.ok(Math.abs(mean.metrics.queryLoss - (a.metrics.queryLoss + b.metrics.queryLoss) / 2) < 1e-6);
});
