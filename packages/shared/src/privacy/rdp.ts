import { ErrorCode, FedmetaError } from '../errors.js';
import { SIGNED_ZERO, logAdd, logErfc, signedAdd, signedSum } from './log-math.js';
import type { SignedLog } from './log-math.js';

/**
 * Rényi differential privacy of the Sampled Gaussian Mechanism (Mironov, Talwar and Zhang 2019, "Rényi
 * Differential Privacy of the Sampled Gaussian Mechanism"): each record is included with probability q
 * (Poisson sampling), the sum of the included records' contributions, each of L2 norm at most C, gets Gaussian
 * noise of standard deviation σC. Neighbouring datasets differ by adding or removing one record.
 *
 * RDP of order α is log(A_α)/(α - 1) with A_α = E_{z~μ0}[(μ(z)/μ0(z))^α], μ0 = N(0, σ²), μ = (1-q)μ0 + qN(1, σ²)
 * (that direction of the divergence is the larger one, section 3 of the paper). A_α is computed in log space:
 * for integer α by the binomial expansion (their section 3.2); for fractional α by the two convergent series
 * split at z0 = σ² log(1/q - 1) + 1/2 (their section 3.3), whose terms have alternating signs.
 */

/**
 * Orders the accountant tracks by default: a fine fractional grid where the optimum lies for the usual
 * budgets (ε of 0.5 to 10), integers up to 64, and a few large orders for very small budgets or many steps.
 */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, i) => Math.round((1.1 + i * 0.1) * 10) / 10),
  ...Array.from({ length: 53 }, (_, i) => 11 + i),
  80,
  96,
  128,
  256,
  512,
]);

/** How far below the running log-sum a term must fall before a series is cut. */
const NEGLIGIBLE = 36;
/** Hard cap on fractional-order series terms (reached only for extreme, near-useless settings). */
const MAX_TERMS = 200_000;

export function checkMechanism(noiseMultiplier: number, samplingRate: number): void {
  if (!(Number.isFinite(noiseMultiplier) && noiseMultiplier > 0)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'the noise multiplier must be a finite number > 0; without noise there is no privacy guarantee to account');
  }
  if (!(Number.isFinite(samplingRate) && samplingRate >= 0 && samplingRate <= 1)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'the sampling rate must be a number from 0 to 1 (expected batch size / dataset size)');
  }
}

export function checkOrder(order: number): void {
  if (!(Number.isFinite(order) && order > 1)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'every RDP order must be a finite number > 1');
  }
}

/** log A_α for an integer α >= 2: log Σ_k C(α,k) (1-q)^{α-k} q^k e^{(k²-k)/(2σ²)}. */
function logAInteger(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const twoVar = 2 * sigma * sigma;
  let logBinom = 0; // log C(α, 0)
  let acc = Number.NEGATIVE_INFINITY;
  for (let k = 0; k <= alpha; k++) {
    if (k > 0) logBinom += Math.log((alpha - k + 1) / k);
    acc = logAdd(acc, logBinom + k * logQ + (alpha - k) * log1mQ + (k * k - k) / twoVar);
  }
  return acc;
}

/** log A_α for a fractional α > 1 (section 3.3 of the paper): two series over i = 0, 1, 2, … */
function logAFractional(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const twoVar = 2 * sigma * sigma;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const rootTwoSigma = Math.SQRT2 * sigma;
  const logHalf = Math.log(0.5);
  let lower: SignedLog = SIGNED_ZERO; // the integral over z <= z0
  let upper: SignedLog = SIGNED_ZERO; // the integral over z >= z0
  let logBinom = 0; // log |C(α, i)|
  let sign: -1 | 1 = 1; // sign of C(α, i)
  for (let i = 0; i < MAX_TERMS; i++) {
    if (i > 0) {
      const ratio = (alpha - i + 1) / i;
      logBinom += Math.log(Math.abs(ratio));
      if (ratio < 0) sign = sign === 1 ? -1 : 1;
    }
    const j = alpha - i;
    const t0 = logBinom + i * logQ + j * log1mQ + (i * i - i) / twoVar + logHalf + logErfc((i - z0) / rootTwoSigma);
    const t1 = logBinom + j * logQ + i * log1mQ + (j * j - j) / twoVar + logHalf + logErfc((z0 - j) / rootTwoSigma);
    lower = signedAdd(lower, sign, t0);
    upper = signedAdd(upper, sign, t1);
    // Past α the terms shrink steadily (the binomial coefficients alternate and decay): stop once both are
    // negligible against what has been summed (A_α >= 1, so its log is >= 0).
    if (i > alpha + 1 && Math.max(t0, t1) < Math.max(0, lower.log, upper.log) - NEGLIGIBLE) break;
  }
  const total = signedSum(lower, upper);
  if (total.sign <= 0) {
    throw new FedmetaError(ErrorCode.PRECONDITION, 'the fractional-order RDP series lost its precision; use integer orders for this noise multiplier and sampling rate');
  }
  return total.log;
}

/**
 * RDP of one step of the Sampled Gaussian Mechanism at one order. q = 0 costs nothing; q = 1 is the plain
 * Gaussian mechanism, α / (2σ²).
 */
export function sampledGaussianRdp(noiseMultiplier: number, samplingRate: number, order: number): number {
  checkMechanism(noiseMultiplier, samplingRate);
  checkOrder(order);
  const q = samplingRate;
  const sigma = noiseMultiplier;
  if (q === 0) return 0;
  if (q === 1) return order / (2 * sigma * sigma);
  const logA = Number.isInteger(order) ? logAInteger(q, sigma, order) : logAFractional(q, sigma, order);
  // A_α >= 1 in exact arithmetic; rounding can leave a hair below.
  return Math.max(0, logA / (order - 1));
}

/** RDP of `steps` compositions of the Sampled Gaussian Mechanism at each order (RDP adds up over steps). */
export function computeRdp(noiseMultiplier: number, samplingRate: number, steps: number, orders: readonly number[]): Float64Array {
  if (!(Number.isInteger(steps) && steps >= 0)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'the number of steps must be a non-negative integer');
  }
  return Float64Array.from(orders, (a) => steps * sampledGaussianRdp(noiseMultiplier, samplingRate, a));
}

/**
 * How RDP is turned into (ε, δ)-DP:
 * - 'improved': ε = rdp + log((α-1)/α) - (log δ + log α)/(α-1), Proposition 12 of Canonne, Kamath and
 *   Steinke (2020), also Theorem 21 of Balle et al. (2020), "Hypothesis testing interpretations and Rényi
 *   differential privacy". Always tighter than the classic one.
 * - 'classic': ε = rdp - log δ/(α-1), Proposition 3 of Mironov (2017), "Rényi differential privacy".
 */
export type RdpConversion = 'improved' | 'classic';

export interface EpsilonAtOrder {
  epsilon: number;
  /** The order that gave the smallest ε. */
  order: number;
}

export function checkDelta(delta: number): void {
  if (!(Number.isFinite(delta) && delta > 0 && delta < 1)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'delta must be a number strictly between 0 and 1 (typically below 1 / dataset size)');
  }
}

/** The smallest ε over the orders at which the accumulated RDP guarantees (ε, δ)-DP. */
export function rdpToEpsilon(orders: readonly number[], rdp: ArrayLike<number>, delta: number, conversion: RdpConversion = 'improved'): EpsilonAtOrder {
  checkDelta(delta);
  if (orders.length === 0 || orders.length !== rdp.length) {
    throw new FedmetaError(ErrorCode.PRECONDITION, `${orders.length} RDP orders for ${rdp.length} RDP values; give one value per order`);
  }
  const logDelta = Math.log(delta);
  let best: EpsilonAtOrder = { epsilon: Number.POSITIVE_INFINITY, order: orders[0]! };
  orders.forEach((a, i) => {
    const r = rdp[i]!;
    const eps =
      conversion === 'classic'
        ? r - logDelta / (a - 1)
        : r + Math.log1p(-1 / a) - (logDelta + Math.log(a)) / (a - 1);
    if (eps < best.epsilon) best = { epsilon: eps, order: a };
  });
  // The improved bound can dip below zero for tiny RDP; a negative ε means nothing more than ε = 0.
  return { epsilon: Math.max(0, best.epsilon), order: best.order };
}
