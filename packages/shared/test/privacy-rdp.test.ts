import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_ORDERS, computeRdp, rdpToEpsilon, sampledGaussianRdp } from '../src/privacy/index.js';
import { erfc } from '../src/privacy/log-math.js';

// The RDP accountant against closed forms, published figures and a direct numerical integration of the
// divergence it computes.

/** The orders of the TensorFlow Privacy MNIST tutorial (mnist_dpsgd_tutorial.py): 1.1..10.9 by 0.1, 12..63. */
const TUTORIAL_ORDERS = [...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10), ...Array.from({ length: 52 }, (_, i) => 12 + i)];

function logAddExp(a: number, b: number): number {
  const hi = Math.max(a, b);
  return hi === Number.NEGATIVE_INFINITY ? hi : hi + Math.log1p(Math.exp(Math.min(a, b) - hi));
}

/**
 * RDP of the sampled Gaussian mechanism straight from its definition, log E_{z~N(0,σ²)}[((1-q) + q e^{(2z-1)/(2σ²)})^α] / (α-1),
 * by the trapezoid rule in log space over a range that holds all the mass (the integrand peaks near z = 0
 * and near z = α).
 */
function rdpByIntegration(sigma: number, q: number, alpha: number): number {
  const h = sigma / 200;
  const lo = -40 * sigma;
  const hi = alpha + 40 * sigma;
  const logNorm = -Math.log(sigma * Math.sqrt(2 * Math.PI));
  let acc = Number.NEGATIVE_INFINITY;
  for (let z = lo; z <= hi; z += h) {
    const logRatio = q === 1 ? (2 * z - 1) / (2 * sigma * sigma) : logAddExp(Math.log1p(-q), Math.log(q) + (2 * z - 1) / (2 * sigma * sigma));
    acc = logAddExp(acc, logNorm - (z * z) / (2 * sigma * sigma) + alpha * logRatio);
  }
  return (acc + Math.log(h)) / (alpha - 1);
}

test('erfc matches tabulated values to 1e-14 relative, including the far tail and negative arguments', () => {
  // Reference values: the C library's erfc (glibc, within an ulp or two), as printed by Python's math.erfc.
  const table: Array<[number, number]> = [
    [0.1, 0.8875370839817152],
    [0.5, 0.4795001221869535],
    [1, 0.15729920705028513],
    [2, 0.004677734981047266],
    [3, 2.209049699858544e-5],
    [5, 1.5374597944280349e-12],
    [10, 2.088487583762545e-45],
    [-1, 1.8427007929497148],
  ];
  for (const [x, want] of table) assert.ok(Math.abs(erfc(x) - want) <= 1e-14 * want, `erfc(${x})`);
});

test('without subsampling (q = 1) the RDP is the Gaussian mechanism\'s α / (2σ²), exactly', () => {
  for (const sigma of [0.5, 1, 1.1, 4]) {
    for (const alpha of [1.5, 2, 3.25, 10, 64]) {
      assert.equal(sampledGaussianRdp(sigma, 1, alpha), alpha / (2 * sigma * sigma));
    }
  }
  // And the definition integrated numerically agrees (a check of the reference itself).
  assert.ok(Math.abs(rdpByIntegration(1.3, 1, 5) - 5 / (2 * 1.69)) < 1e-9);
  // Sampling nobody costs nothing.
  assert.equal(sampledGaussianRdp(1, 0, 8), 0);
});

test('integer and fractional orders agree with the numerically integrated divergence to 1e-7 relative', () => {
  for (const [sigma, q] of [
    [1.1, 256 / 60000],
    [0.8, 0.05],
    [2, 0.3],
    [5, 0.01],
  ] as const) {
    for (const alpha of [1.25, 1.5, 2, 2.5, 3, 4.7, 8, 10.5, 16, 32]) {
      const got = sampledGaussianRdp(sigma, q, alpha);
      const want = rdpByIntegration(sigma, q, alpha);
      assert.ok(Math.abs(got - want) <= 1e-7 * want + 1e-15, `σ=${sigma} q=${q} α=${alpha}: ${got} vs ${want}`);
    }
  }
});

test('published DP-SGD figures: the TensorFlow Privacy MNIST tutorial (classic conversion) and Opacus (improved)', () => {
  // Published figures carry two decimals; we allow 0.01 (one of them, 9.74, is 9.747 here).
  const TOL = 0.01;
  // TensorFlow Privacy, tutorials/README.md, "Select Parameters" table for mnist_dpsgd_tutorial.py: batch 256
  // of 60000 (q = 256/60000), 60000 // 256 = 234 steps per epoch, δ = 1e-5, the tutorial's orders, and the
  // accountant of that time (get_privacy_spent: ε = rdp - log δ / (α-1)).
  //   σ = 1.12, 60 epochs: ε = 2.92 (the tutorial's default run; its "Expected Output" ends with 2.92 as well)
  //   σ = 0.6, 30 epochs: ε = 9.74;  σ = 1.2, 10 epochs: ε = 1.20
  const q = 256 / 60000;
  for (const [sigma, epochs, published] of [
    [1.12, 60, 2.92],
    [0.6, 30, 9.74],
    [1.2, 10, 1.2],
  ] as const) {
    const rdp = computeRdp(sigma, q, epochs * Math.floor(60000 / 256), TUTORIAL_ORDERS);
    const { epsilon } = rdpToEpsilon(TUTORIAL_ORDERS, rdp, 1e-5, 'classic');
    assert.ok(Math.abs(epsilon - published) <= TOL, `σ=${sigma}, ${epochs} epochs: ε=${epsilon}, published ${published}`);
  }
  // Opacus documentation, "Compute DP-SGD Privacy" (opacus.scripts.compute_dp_sgd_privacy): sample rate 1%,
  // σ = 1.0, 300 steps, orders {2, 5, 10, 20, 100}, δ = 1e-5: "epsilon = 2.39 ... The optimal alpha is 5.0".
  const orders = [2, 5, 10, 20, 100];
  const r = rdpToEpsilon(orders, computeRdp(1.0, 0.01, 300, orders), 1e-5, 'improved');
  assert.ok(Math.abs(r.epsilon - 2.39) <= TOL, `Opacus example: ε=${r.epsilon}, published 2.39`);
  assert.equal(r.order, 5);
});

test('the improved conversion is never looser than the classic one', () => {
  for (const [sigma, q, steps] of [
    [1.12, 256 / 60000, 14040],
    [0.7, 0.02, 500],
    [3, 0.5, 50],
  ] as const) {
    const rdp = computeRdp(sigma, q, steps, DEFAULT_ORDERS);
    const improved = rdpToEpsilon(DEFAULT_ORDERS, rdp, 1e-5, 'improved').epsilon;
    const classic = rdpToEpsilon(DEFAULT_ORDERS, rdp, 1e-5, 'classic').epsilon;
    assert.ok(improved < classic, `σ=${sigma} q=${q}: ${improved} vs ${classic}`);
    assert.ok(improved > 0.5 * classic, 'and not absurdly tighter');
  }
});

test('ε grows with the sampling rate and the steps and shrinks with the noise; RDP grows with the order', () => {
  const eps = (sigma: number, q: number, steps: number): number =>
    rdpToEpsilon(DEFAULT_ORDERS, computeRdp(sigma, q, steps, DEFAULT_ORDERS), 1e-5).epsilon;
  const sigmas = [0.6, 0.8, 1, 1.5, 2, 4];
  for (let i = 1; i < sigmas.length; i++) assert.ok(eps(sigmas[i]!, 0.01, 1000) < eps(sigmas[i - 1]!, 0.01, 1000), `σ ${sigmas[i]}`);
  const qs = [0.001, 0.004, 0.01, 0.05, 0.2, 1];
  for (let i = 1; i < qs.length; i++) assert.ok(eps(1.1, qs[i]!, 100) > eps(1.1, qs[i - 1]!, 100), `q ${qs[i]}`);
  const steps = [1, 10, 100, 1000, 10000];
  for (let i = 1; i < steps.length; i++) assert.ok(eps(1.1, 0.01, steps[i]!) > eps(1.1, 0.01, steps[i - 1]!), `steps ${steps[i]}`);
  // Rényi divergences are non-decreasing in the order, across the integer/fractional switch too.
  for (const [sigma, q] of [
    [1.1, 0.004],
    [0.7, 0.1],
  ] as const) {
    const rdp = computeRdp(sigma, q, 1, DEFAULT_ORDERS);
    for (let i = 1; i < rdp.length; i++) assert.ok(rdp[i]! >= rdp[i - 1]!, `σ=${sigma} order ${DEFAULT_ORDERS[i]}`);
  }
});

test('bad mechanisms, orders and deltas are refused with a configuration error', () => {
  const code = { code: 'FEDMETA_ERR_CONFIG' };
  assert.throws(() => sampledGaussianRdp(0, 0.1, 2), code);
  assert.throws(() => sampledGaussianRdp(1, 1.5, 2), code);
  assert.throws(() => sampledGaussianRdp(1, 0.1, 1), code);
  assert.throws(() => computeRdp(1, 0.1, 2.5, [2]), code);
  assert.throws(() => rdpToEpsilon([2], [0.1], 0), code);
  assert.throws(() => rdpToEpsilon([2], [0.1], 1), code);
});
