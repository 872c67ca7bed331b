import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initParams, initRuntime, metaGradient, tf } from '@fedmeta/shared';
import type { ModelSpec } from '@fedmeta/shared';
import { finiteDiff, makeBatch, mamlObjective64, relError } from './meta-reference64.js';

// Full second-order MAML against float64 finite differences of a plain-JS reference (forward, backprop and
// inner SGD in float64). A second-order bug (gradients built from detached saved outputs, a loss that is not
// twice differentiable) gives relative errors of 0.3 and more here, not 1e-6.

const cases: Array<{ name: string; spec: ModelSpec; lr: number }> = [
  { name: 'binary 3-4-1 tanh', spec: { inputDim: 3, hidden: [4], activation: 'tanh', task: { kind: 'binary' } }, lr: 0.5 },
  {
    name: '3-class 3-4-3 sigmoid',
    spec: { inputDim: 3, hidden: [4], activation: 'sigmoid', task: { kind: 'multiclass', classes: 3 } },
    lr: 0.5,
  },
  {
    name: '3-class 3-5-4-3 softplus',
    spec: { inputDim: 3, hidden: [5, 4], activation: 'softplus', task: { kind: 'multiclass', classes: 3 } },
    lr: 0.25,
  },
  { name: 'binary 3-4-1 relu', spec: { inputDim: 3, hidden: [4], activation: 'relu', task: { kind: 'binary' } }, lr: 0.5 },
];

for (const backend of ['wasm', 'cpu'] as const) {
  for (const c of cases) {
    test(`second-order MAML matches float64 finite differences: ${c.name} on ${backend}, 1-3 inner steps`, async () => {
      await initRuntime({ backend });
      const classes = c.spec.task.kind === 'binary' ? 2 : c.spec.task.classes;
      const params = initParams(c.spec, 7).values;
      // Biases away from zero so that every unit carries signal (and relu kinks sit away from the samples).
      const p64 = Float64Array.from(params);
      const support = makeBatch(6, 3, classes, 11);
      const query = makeBatch(5, 3, classes, 23);
      for (const steps of [1, 2, 3]) {
        const inner = { steps, lr: c.lr };
        const fd = finiteDiff((p) => mamlObjective64(c.spec, p, support.f64, query.f64, inner), p64);
        const maml = metaGradient('maml', c.spec, params, { support: support.f32, query: query.f32 }, inner);
        const err = relError(maml.update, fd);
        assert.ok(err < 1e-4, `steps=${steps}: relative error ${err.toExponential(2)} >= 1e-4`);
        // The check has teeth: the first-order approximation is far from the true meta-gradient here.
        const fo = metaGradient('fomaml', c.spec, params, { support: support.f32, query: query.f32 }, inner);
        assert.ok(relError(fo.update, fd) > 1e-3, `steps=${steps}: first-order MAML should differ from the exact gradient`);
      }
      assert.equal(tf.getBackend(), backend);
    });
  }
}

test('second-order MAML with ANIL (only the output layer adapted) and with Meta-SGD step sizes matches finite differences', async () => {
  await initRuntime({ backend: 'wasm' });
  const spec: ModelSpec = { inputDim: 3, hidden: [4], activation: 'tanh', task: { kind: 'multiclass', classes: 3 } };
  const support = makeBatch(6, 3, 3, 5);
  const query = makeBatch(5, 3, 3, 9);
  const episode = { support: support.f32, query: query.f32 };

  const params = initParams(spec, 3).values;
  const anil = { steps: 2, lr: 0.5, adaptLast: 1 };
  const fdAnil = finiteDiff((p) => mamlObjective64(spec, p, support.f64, query.f64, { steps: 2, lr: 0.5, first: 1 }), Float64Array.from(params));
  const gAnil = metaGradient('maml', spec, params, episode, anil).update;
  assert.ok(relError(gAnil, fdAnil) < 1e-4, `ANIL relative error ${relError(gAnil, fdAnil)}`);

  // Meta-SGD: the vector is [model | step sizes]; the meta-gradient covers both.
  const withSizes = initParams(spec, 3, { metaSgd: true, metaSgdLr: 0.3 }).values;
  const n = withSizes.length / 2;
  const objective = (p: Float64Array): number =>
    mamlObjective64(spec, p.subarray(0, n), support.f64, query.f64, { steps: 2, lr: 0, sizes: p.subarray(n) });
  const fd = finiteDiff(objective, Float64Array.from(withSizes));
  const g = metaGradient('maml', spec, withSizes, episode, { steps: 2, lr: 999 }).update;
  assert.equal(g.length, withSizes.length);
  assert.ok(relError(g, fd) < 1e-4, `Meta-SGD relative error ${relError(g, fd)}`);
});
