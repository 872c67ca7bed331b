import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adapt, initParams, initRuntime, logits, meanLoss, metaGradient, tf, uploadBatch, uploadLayers } from '@fedmeta/shared';
import type { Activation, Batch, ModelSpec } from '@fedmeta/shared';
import { RdpAccountant, dpAdapt, dpGradient, dpMetaGradient, dpMetaGradientMean, perExampleGradients, clippedGradientSum, seededNoise } from '../src/privacy/index.js';
import { finiteDiff, loss64, makeBatch, relError } from './meta-reference64.js';

// Record-level DP-SGD: per-example gradients must be right, every clipped one must be inside the bound, the
// fast clipped sum must be the sum of those, and the noise must have the configured spread.

function norm64(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

function row(b: Batch, i: number): Batch {
  return { x: b.x.slice(i * b.dim, (i + 1) * b.dim), y: b.y.slice(i, i + 1), n: 1, dim: b.dim };
}

/** Per-example gradients by tfjs autodiff of the differentiable forward pass, one example at a time. */
function autodiffGrad(spec: ModelSpec, params: Float32Array, ex: Batch): Float32Array {
  const layers = uploadLayers(spec, params);
  const flat = layers.flatMap((l) => [l.kernel, l.bias]);
  const bt = uploadBatch(spec, ex);
  const grads = tf.grads((...ts: tf.Tensor[]) => {
    const ls = layers.map((_, i) => ({ kernel: ts[2 * i] as tf.Tensor2D, bias: ts[2 * i + 1] as tf.Tensor1D }));
    return meanLoss(spec, logits(spec, ls, bt.x), bt.target);
  })(flat);
  const out = new Float32Array(params.length);
  let at = 0;
  for (const g of grads) {
    out.set(g.dataSync() as Float32Array, at);
    at += g.size;
  }
  tf.dispose([...grads, ...flat]);
  bt.dispose();
  return out;
}

const activations: Activation[] = ['relu', 'tanh', 'sigmoid', 'elu', 'softplus'];

for (const backend of ['wasm', 'cpu'] as const) {
  test(`per-example gradients match tfjs autodiff for every activation, binary and multiclass (${backend})`, async () => {
    await initRuntime({ backend });
    for (const activation of activations) {
      for (const task of [{ kind: 'binary' as const }, { kind: 'multiclass' as const, classes: 3 }]) {
        const spec: ModelSpec = { inputDim: 4, hidden: [5, 3], activation, task };
        const params = initParams(spec, 5).values;
        const b = makeBatch(6, 4, task.kind === 'binary' ? 2 : 3, 9).f32;
        const layers = uploadLayers(spec, params);
        const bt = uploadBatch(spec, b);
        const per = perExampleGradients(spec, layers, bt, 0);
        for (let i = 0; i < b.n; i++) {
          const want = autodiffGrad(spec, params, row(b, i));
          assert.ok(relError(per.grads[i]!, want) < 1e-5, `${activation}/${task.kind} example ${i}`);
          assert.ok(Math.abs(per.norms[i]! - norm64(want)) < 1e-5 * norm64(want), 'its ghost norm');
        }
        tf.dispose(layers.flatMap((l) => [l.kernel, l.bias]));
        bt.dispose();
      }
    }
  });
}

test('per-example gradients match float64 finite differences of the loss (tiny tanh net)', async () => {
  await initRuntime({ backend: 'wasm' });
  const spec: ModelSpec = { inputDim: 3, hidden: [4], activation: 'tanh', task: { kind: 'multiclass', classes: 3 } };
  const params = initParams(spec, 3).values;
  const b = makeBatch(4, 3, 3, 17);
  const layers = uploadLayers(spec, params);
  const bt = uploadBatch(spec, b.f32);
  const per = perExampleGradients(spec, layers, bt, 0);
  for (let i = 0; i < b.f32.n; i++) {
    const one = { x: b.f64.x.slice(i * 3, i * 3 + 3), y: b.f64.y.slice(i, i + 1), n: 1, dim: 3 };
    const fd = finiteDiff((p) => loss64(spec, p, one), Float64Array.from(params));
    assert.ok(relError(per.grads[i]!, fd) < 1e-5, `example ${i}: ${relError(per.grads[i]!, fd)}`);
  }
  tf.dispose(layers.flatMap((l) => [l.kernel, l.bias]));
  bt.dispose();
});

/** A batch whose examples have very different gradient norms (features scaled from 0.01 to 30). */
function spreadBatch(n: number, dim: number): Batch {
  const b = makeBatch(n, dim, 2, 41).f32;
  for (let i = 0; i < n; i++) {
    const scale = 0.01 * Math.pow(3000, i / (n - 1));
    for (let j = 0; j < dim; j++) b.x[i * dim + j] = b.x[i * dim + j]! * scale;
  }
  return b;
}

test('every clipped per-example gradient is inside C, and the fast clipped sum is their sum', async () => {
  await initRuntime({ backend: 'wasm' });
  const spec: ModelSpec = { inputDim: 20, hidden: [16, 8], activation: 'relu', task: { kind: 'binary' } };
  const params = initParams(spec, 8).values;
  const b = spreadBatch(24, 20);
  const layers = uploadLayers(spec, params);
  const bt = uploadBatch(spec, b);
  const raw = perExampleGradients(spec, layers, bt, 0);
  const sorted = [...raw.norms].sort((p, q) => p - q);
  const C = sorted[12]!; // about half the examples are clipped
  const clipped = perExampleGradients(spec, layers, bt, 0, C);
  assert.ok(clipped.clipped >= 10 && clipped.clipped <= 13, `${clipped.clipped} clipped`);
  const sum = new Float64Array(params.length);
  for (let i = 0; i < b.n; i++) {
    const g = clipped.grads[i]!;
    const n = norm64(g);
    assert.ok(n <= C, `example ${i}: norm ${n} > C = ${C}`);
    const r = raw.grads[i]!;
    if (clipped.factors[i]! < 1) {
      assert.ok(raw.norms[i]! > C * (1 - 2e-4), 'only gradients at or beyond the bound are scaled');
      assert.ok(n > C * (1 - 3e-4), 'a clipped gradient sits at the bound');
      // Same direction: clipping only scales.
      let dot = 0;
      for (let j = 0; j < g.length; j++) dot += g[j]! * r[j]!;
      assert.ok(dot / (n * norm64(r)) > 1 - 1e-6);
    } else {
      assert.ok(relError(g, r) < 1e-7, 'an example inside the bound is left alone');
    }
    for (let j = 0; j < sum.length; j++) sum[j] = sum[j]! + g[j]!;
  }
  const fast = clippedGradientSum(spec, layers, bt, C, 0);
  assert.ok(relError(fast.sum, sum) < 1e-5, `fast sum: ${relError(fast.sum, sum)}`);
  assert.equal(fast.clipped, clipped.clipped);
  // With no noise, dpGradient is that sum over the batch size.
  const dp = dpGradient(spec, params, b, { clipNorm: C, noiseMultiplier: 0, samplingRate: 0.01 }, seededNoise(1));
  assert.ok(relError(dp.gradient, sum.map((v) => v / b.n)) < 1e-5);
  assert.deepEqual(dp.accounting, { noiseMultiplier: 0, samplingRate: 0.01, steps: 1 });
  tf.dispose(layers.flatMap((l) => [l.kernel, l.bias]));
  bt.dispose();
});

test('with ANIL only the adapted layers are clipped, noised and returned', async () => {
  await initRuntime({ backend: 'wasm' });
  const spec: ModelSpec = { inputDim: 6, hidden: [5], activation: 'elu', task: { kind: 'multiclass', classes: 3 } };
  const params = initParams(spec, 2).values;
  const b = makeBatch(7, 6, 3, 4).f32;
  const r = dpGradient(spec, params, b, { clipNorm: 0.1, noiseMultiplier: 1, samplingRate: 0.1 }, seededNoise(3), { adaptLast: 1 });
  const firstLayer = 6 * 5 + 5;
  assert.ok(r.gradient.subarray(0, firstLayer).every((v) => v === 0));
  assert.ok(r.gradient.subarray(firstLayer).every((v) => v !== 0));
  const layers = uploadLayers(spec, params);
  const bt = uploadBatch(spec, b);
  const per = perExampleGradients(spec, layers, bt, 1, 0.1);
  for (const g of per.grads) assert.ok(norm64(g) <= 0.1 && g.subarray(0, firstLayer).every((v) => v === 0));
  tf.dispose(layers.flatMap((l) => [l.kernel, l.bias]));
  bt.dispose();
});

test('the noise on the sum has standard deviation σC: 100k samples with zero gradients, within 2%', async () => {
  await initRuntime({ backend: 'wasm' });
  // The detector's size. Its output layer is zeroed, so every example predicts 0.5 and the hidden layers get no
  // gradient; two identical flows with opposite labels then have opposite gradients, and the clipped sum is 0.
  const spec: ModelSpec = { inputDim: 78, hidden: [256, 128], activation: 'relu', task: { kind: 'binary' } };
  const params = initParams(spec, 1).values;
  params.fill(0, params.length - 129);
  const x = makeBatch(1, 78, 2, 5).f32.x;
  const b: Batch = { x: Float32Array.from([...x, ...x]), y: Int32Array.from([0, 1]), n: 2, dim: 78 };
  const [sigma, C] = [1.3, 0.7];
  const silent = dpGradient(spec, params, b, { clipNorm: C, noiseMultiplier: 0, samplingRate: 0.01 }, seededNoise(1));
  assert.ok(silent.gradient.every((v) => v === 0), 'the construction has a zero clipped sum');
  const noise = seededNoise(2024);
  const samples: number[] = [];
  while (samples.length < 100_000) {
    const r = dpGradient(spec, params, b, { clipNorm: C, noiseMultiplier: sigma, samplingRate: 0.01 }, noise);
    for (const v of r.gradient) samples.push(v * b.n); // the mean's noise times the batch size is the sum's
  }
  const mean = samples.reduce((s, v) => s + v, 0) / samples.length;
  const std = Math.sqrt(samples.reduce((s, v) => s + (v - mean) ** 2, 0) / (samples.length - 1));
  assert.ok(Math.abs(std / (sigma * C) - 1) < 0.02, `std ${std} against ${sigma * C}`);
  assert.ok(Math.abs(mean) < (4 * sigma * C) / Math.sqrt(samples.length), `mean ${mean}`);
  // Gaussian shape: about 68.3% within one standard deviation.
  const inside = samples.filter((v) => Math.abs(v) < sigma * C).length / samples.length;
  assert.ok(Math.abs(inside - 0.6827) < 0.01, `${inside} within 1σ`);
});

test('the DP inner loop is the plain inner loop when noise is off and C is loose; seeded noise is reproducible', async () => {
  await initRuntime({ backend: 'wasm' });
  const spec: ModelSpec = { inputDim: 8, hidden: [12], activation: 'tanh', task: { kind: 'binary' } };
  const params = initParams(spec, 4).values;
  const support = makeBatch(10, 8, 2, 6).f32;
  const inner = { steps: 3, lr: 0.3 };
  const loose = { clipNorm: 1e6, noiseMultiplier: 0, samplingRate: 0.05 };
  const plain = adapt(spec, params, support, inner);
  const dp = dpAdapt(spec, params, support, inner, loose, seededNoise(1));
  assert.ok(relError(dp.adapted.map((v, i) => v - params[i]!), plain.map((v, i) => v - params[i]!)) < 1e-5);
  assert.equal(dp.clipped, 0);

  const cfg = { clipNorm: 0.5, noiseMultiplier: 1.2, samplingRate: 0.05 };
  const a = dpAdapt(spec, params, support, inner, cfg, seededNoise(77));
  const again = dpAdapt(spec, params, support, inner, cfg, seededNoise(77));
  const other = dpAdapt(spec, params, support, inner, cfg, seededNoise(78));
  assert.deepEqual(a.adapted, again.adapted);
  assert.notDeepEqual(a.adapted, other.adapted);
  // Three noisy steps on one sample compose to one sampled Gaussian with σ/√3.
  assert.deepEqual(a.accounting, { noiseMultiplier: 1.2 / Math.sqrt(3), samplingRate: 0.05, steps: 1 });
});

test('DP meta-gradients: equal to the plain ones without noise, accounted per episode, maml refused, no tensor leaks', async () => {
  await initRuntime({ backend: 'wasm' });
  const spec: ModelSpec = { inputDim: 5, hidden: [6], activation: 'sigmoid', task: { kind: 'multiclass', classes: 3 } };
  const params = initParams(spec, 9).values;
  const episode = { support: makeBatch(9, 5, 3, 1).f32, query: makeBatch(6, 5, 3, 2).f32 };
  const inner = { steps: 2, lr: 0.5 };
  const loose = { clipNorm: 1e6, noiseMultiplier: 0, samplingRate: 0.1 };
  const before = tf.memory().numTensors;
  for (const algorithm of ['reptile', 'fomaml'] as const) {
    const want = metaGradient(algorithm, spec, params, episode, inner);
    const got = dpMetaGradient(algorithm, spec, params, episode, inner, loose, seededNoise(1));
    assert.ok(relError(got.update, want.update) < 1e-4, algorithm);
    assert.ok(Math.abs(got.metrics.queryLoss - want.metrics.queryLoss) < 1e-5);
    assert.ok(Math.abs(got.metrics.supportLoss - want.metrics.supportLoss) < 1e-5);
  }
  const cfg = { clipNorm: 1, noiseMultiplier: 1.5, samplingRate: 0.02, querySamplingRate: 0.01 };
  const mean = dpMetaGradientMean('fomaml', spec, params, [episode, episode, episode], inner, cfg, seededNoise(5));
  assert.deepEqual(mean.accounting, [
    { noiseMultiplier: 1.5 / Math.SQRT2, samplingRate: 0.02, steps: 3 },
    { noiseMultiplier: 1.5, samplingRate: 0.01, steps: 3 },
  ]);
  const acc = new RdpAccountant();
  acc.record(mean.accounting);
  assert.equal(acc.steps, 6);
  assert.ok(acc.epsilon(1e-5).epsilon > 0);
  assert.throws(() => dpMetaGradient('maml', spec, params, episode, inner, cfg, seededNoise(1)), { code: 'FEDMETA_ERR_CONFIG' });
  assert.throws(() => dpGradient(spec, params, episode.support, { ...cfg, clipNorm: 0 }, seededNoise(1)), { code: 'FEDMETA_ERR_CONFIG' });
  assert.throws(() => dpGradient(spec, params, episode.support, { ...cfg, samplingRate: 0 }, seededNoise(1)), { code: 'FEDMETA_ERR_CONFIG' });
  assert.equal(tf.memory().numTensors, before);
});
