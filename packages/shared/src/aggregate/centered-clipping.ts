import { ErrorCode, FedmetaError } from '../errors.js';
import type { WeightedUpdate } from './types.js';
import { DEFAULT_CC_ITERATIONS, allFinite, assertPreconditions, checkUpdates } from './validate.js';

/**
 * Centered clipping (Karimireddy, He and Jaggi 2021): starting from the reference v, repeat
 *   v <- v + (1/n) * sum_i clip(x_i - v, tau)      with clip(d, tau) = d * min(1, tau / |d|).
 *
 * - The mean is uniform, not example-weighted: a site's weight is its own claim, and a Byzantine site that
 *   claimed a huge weight would then move v by up to tau per pass on its own; uniformly it moves v by at
 *   most tau / n.
 * - Default reference: the zero vector, i.e. "no change", the natural prior for a pseudo-gradient. The
 *   coordinate median would be a more robust start, but it needs every individual update, which would
 *   rule out secure aggregation (see needsIndividualUpdates); the coordinator should pass the previous
 *   round's aggregate, as the paper does.
 * - Default iterations: 3. Each pass moves v by at most tau, so from a reference far from the honest
 *   updates (such as zero in the first round) one pass can stop short; with the previous aggregate as the
 *   reference the paper finds one pass enough.
 *
 * Preconditions: tau finite and > 0 and iterations a whole number >= 1 (else PRECONDITION naming n); the
 * shared update checks (SHAPE, NON_FINITE, weights >= 0 with a positive total); a reference, when given,
 * as long as the updates (else SHAPE) and finite (else NON_FINITE).
 */
export function centeredClipping(
  updates: readonly WeightedUpdate[],
  tau: number,
  iterations: number = DEFAULT_CC_ITERATIONS,
  reference?: Float32Array,
): Float32Array {
  const n = updates.length;
  assertPreconditions({ kind: 'centered-clipping', tau, iterations }, n);
  const { dim } = checkUpdates(updates, 'centered clipping');
  const v = new Float64Array(dim);
  if (reference !== undefined) {
    if (reference.length !== dim) {
      throw new FedmetaError(
        ErrorCode.SHAPE,
        `centered clipping got a reference of ${reference.length} values for n = ${n} updates of ${dim}; pass the previous aggregate of this model`,
      );
    }
    if (!allFinite(reference)) {
      throw new FedmetaError(ErrorCode.NON_FINITE, `the centered-clipping reference (n = ${n}) contains NaN or infinity; pass a finite previous aggregate`);
    }
    v.set(reference);
  }
  const acc = new Float64Array(dim);
  for (let it = 0; it < iterations; it++) {
    acc.fill(0);
    for (const u of updates) {
      const x = u.vector;
      let sq = 0;
      for (let j = 0; j < dim; j++) {
        const e = x[j]! - v[j]!;
        sq += e * e;
      }
      const norm = Math.sqrt(sq);
      const s = norm > tau ? tau / norm : 1;
      for (let j = 0; j < dim; j++) acc[j]! += s * (x[j]! - v[j]!);
    }
    for (let j = 0; j < dim; j++) v[j]! += acc[j]! / n;
  }
  return new Float32Array(v);
}
