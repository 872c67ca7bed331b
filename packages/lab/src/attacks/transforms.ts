import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { Rng } from '@fedmeta/shared';

/**
 * What a malicious site sends instead of its honest update, as pure functions of the vectors it knows. Every
 * vector is in the update convention of the federation (a gradient's sign: the coordinator steps against it).
 * Inputs are never modified; every function returns a new Float32Array.
 */

function requireSameLength(vectors: readonly Float32Array[], what: string): number {
  const first = vectors[0];
  if (first === undefined) throw new FedmetaError(ErrorCode.PRECONDITION, `${what} needs at least one honest update; the attacker saw none`);
  for (const v of vectors) {
    if (v.length !== first.length) throw new FedmetaError(ErrorCode.SHAPE, `${what} got updates of ${v.length} and ${first.length} values; they must share one layout`);
  }
  return first.length;
}

/** Sign flip: −scale × the site's own honest update (scale 1 is the plain reversed gradient). */
export function signFlip(own: Float32Array, scale = 1): Float32Array {
  const out = new Float32Array(own.length);
  for (let i = 0; i < own.length; i++) out[i] = -scale * own[i]!;
  return out;
}

/**
 * Gaussian noise: an update drawn from N(0, σ²) per coordinate, with σ chosen so that the expected norm is
 * `normRatio` × the norm of the site's own honest update (a fixed σ would mean something else for every model).
 */
export function gaussianUpdate(own: Float32Array, normRatio: number, rng: Rng): Float32Array {
  let sq = 0;
  for (let i = 0; i < own.length; i++) sq += own[i]! * own[i]!;
  const sigma = own.length > 0 ? (normRatio * Math.sqrt(sq)) / Math.sqrt(own.length) : 0;
  const out = new Float32Array(own.length);
  for (let i = 0; i < out.length; i++) out[i] = sigma * rng.normal();
  return out;
}

/** Scaled update (model replacement): the attacker's own (poisoned) update multiplied by a boost factor. */
export function scaledUpdate(update: Float32Array, boost: number): Float32Array {
  if (!(Number.isFinite(boost) && boost > 0)) throw new FedmetaError(ErrorCode.CONFIG, 'the boost of a scaled update must be a positive number');
  const out = new Float32Array(update.length);
  for (let i = 0; i < update.length; i++) out[i] = boost * update[i]!;
  return out;
}

/** Per-coordinate mean and population standard deviation of a set of updates (in float64). */
export function coordinateMeanStd(vectors: readonly Float32Array[]): { mean: Float64Array; std: Float64Array } {
  const dim = requireSameLength(vectors, 'the coordinate statistics');
  const m = vectors.length;
  const mean = new Float64Array(dim);
  const std = new Float64Array(dim);
  for (const v of vectors) for (let i = 0; i < dim; i++) mean[i] = mean[i]! + v[i]!;
  for (let i = 0; i < dim; i++) mean[i] = mean[i]! / m;
  for (const v of vectors) {
    for (let i = 0; i < dim; i++) {
      const d = v[i]! - mean[i]!;
      std[i] = std[i]! + d * d;
    }
  }
  for (let i = 0; i < dim; i++) std[i] = Math.sqrt(std[i]! / m);
  return { mean, std };
}

/**
 * The standard normal quantile Φ⁻¹(p), by a rational approximation with a relative error below 1.2e-9 (far
 * finer than anything an attack's z needs).
 */
export function inverseNormalCdf(p: number): number {
  if (!(p > 0 && p < 1)) throw new FedmetaError(ErrorCode.PRECONDITION, 'the normal quantile needs a probability strictly between 0 and 1');
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p <= 1 - low) {
    const q = p - 0.5;
    const r = q * q;
    return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
  }
  const q = Math.sqrt(-2 * Math.log(1 - p));
  return -(((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
}

/**
 * "A little is enough" (Baruch et al. 2019): the largest z for which the crafted value still sits inside the
 * spread that a majority-based aggregator accepts. With n sites of which f are malicious, the attackers need
 * s = ⌊n/2 + 1⌋ − f honest sites on their side, and z = Φ⁻¹((n − s) / n).
 */
export function alieZ(n: number, f: number): number {
  if (!Number.isInteger(n) || !Number.isInteger(f) || f < 1 || f >= n) {
    throw new FedmetaError(ErrorCode.PRECONDITION, `"a little is enough" needs 1 <= f < n malicious sites, got n = ${n}, f = ${f}`);
  }
  const s = Math.floor(n / 2 + 1) - f;
  const p = (n - s) / n;
  // With f at or past a majority every honest site is already outvoted; the quantile would be ≥ 1.
  return inverseNormalCdf(Math.min(p, 1 - 1e-9));
}

/** "A little is enough": mean − z·std of the honest updates, per coordinate. */
export function littleIsEnough(honest: readonly Float32Array[], z: number): Float32Array {
  const { mean, std } = coordinateMeanStd(honest);
  const out = new Float32Array(mean.length);
  for (let i = 0; i < out.length; i++) out[i] = mean[i]! - z * std[i]!;
  return out;
}

/** Inner-product manipulation (Xie et al. 2020): −ε × the mean of the honest updates. */
export function innerProductManipulation(honest: readonly Float32Array[], epsilon: number): Float32Array {
  if (!(Number.isFinite(epsilon) && epsilon > 0)) throw new FedmetaError(ErrorCode.CONFIG, 'inner-product manipulation needs ε > 0');
  const { mean } = coordinateMeanStd(honest);
  const out = new Float32Array(mean.length);
  for (let i = 0; i < out.length; i++) out[i] = -epsilon * mean[i]!;
  return out;
}
