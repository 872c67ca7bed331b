import type { WeightedUpdate } from './types.js';
import { assertFiniteSum, assertPreconditions, checkUpdates, nonFiniteUpdate } from './validate.js';
import { clipScale, l2Norm } from './vector.js';

/** acc += s * x, in float64. */
function addScaled(acc: Float64Array, x: Float32Array, s: number): void {
  for (let j = 0; j < acc.length; j++) acc[j]! += s * x[j]!;
}

function divideInto(acc: Float64Array, total: number): Float32Array {
  const out = new Float32Array(acc.length);
  for (let j = 0; j < acc.length; j++) out[j] = acc[j]! / total;
  return out;
}

/**
 * Example-weighted mean: sum_i w_i x_i / sum_i w_i, summed in float64 and rounded once to float32.
 * Preconditions: n >= 1 updates of one length (else SHAPE), finite values (else NON_FINITE), weights finite
 * and >= 0 with a positive total (else PRECONDITION). Not robust: one site can move it arbitrarily far.
 */
export function weightedMean(updates: readonly WeightedUpdate[]): Float32Array {
  const { dim, totalWeight } = checkUpdates(updates, 'mean', { scanValues: false });
  const acc = new Float64Array(dim);
  for (const u of updates) if (u.weight !== 0) addScaled(acc, u.vector, u.weight);
  assertFiniteSum(acc, updates);
  return divideInto(acc, totalWeight);
}

/**
 * Clips each update to L2 norm <= maxNorm, then takes the example-weighted mean of the clipped updates.
 * Bounds any one site's pull to maxNorm * w_i / W, which a differential-privacy accountant also needs.
 * Preconditions: those of `weightedMean`, plus maxNorm finite and > 0 (else PRECONDITION).
 */
export function normClip(updates: readonly WeightedUpdate[], maxNorm: number): Float32Array {
  assertPreconditions({ kind: 'norm-clip', maxNorm }, updates.length);
  const { dim, totalWeight } = checkUpdates(updates, 'norm clipping', { scanValues: false });
  const acc = new Float64Array(dim);
  const norms = updates.map((u) => (u.weight === 0 ? 0 : l2Norm(u.vector)));
  // The norm is finite exactly when every value is, so this pass doubles as the check for NaN and infinity.
  const bad = norms.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw nonFiniteUpdate(bad, updates.length);
  for (const [i, u] of updates.entries()) {
    if (u.weight !== 0) addScaled(acc, u.vector, u.weight * clipScale(norms[i]!, maxNorm));
  }
  return divideInto(acc, totalWeight);
}
