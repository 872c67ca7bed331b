import { ErrorCode, FedmetaError } from '../errors.js';
import { l2Norm } from '../aggregate/vector.js';
import type { MechanismSteps } from './accountant.js';
import type { NoiseSource } from './noise.js';

/**
 * Site-level ("central") DP in the style of DP-FedAvg (McMahan et al. 2018): each site's whole update is
 * clipped to L2 norm S, the clipped updates are summed, Gaussian noise N(0, σ²S²) is added to the sum, and the
 * sum is divided by a fixed denominator. Neighbouring federations differ by one site's entire data, so the
 * guarantee protects a whole office, not a single flow; with few sites the noise this needs is large.
 *
 * The mean is unweighted: an example-weighted mean would let a site's weight (a count of its data) change the
 * sensitivity. Robust aggregators (median, Krum) have another sensitivity and are not covered.
 */
export interface CentralDpConfig {
  /** S: the L2 bound on each site's update. */
  clipNorm: number;
  /** σ: the noise on the sum has standard deviation σS. */
  noiseMultiplier: number;
  /** Probability that a given site takes part in a round (sampled sites / enrolled sites). */
  samplingRate: number;
  /**
   * Divide the noisy sum by this fixed number (the expected number of participating sites) rather than the
   * number that answered, which is itself data-dependent. Default: the number of updates.
   */
  expectedSites?: number;
}

export function checkCentralDpConfig(cfg: CentralDpConfig): void {
  if (!(Number.isFinite(cfg.clipNorm) && cfg.clipNorm > 0)) throw new FedmetaError(ErrorCode.CONFIG, 'central dp clipNorm must be a finite number > 0');
  if (!(Number.isFinite(cfg.noiseMultiplier) && cfg.noiseMultiplier >= 0)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'central dp noiseMultiplier must be a finite number >= 0');
  }
  if (!(Number.isFinite(cfg.samplingRate) && cfg.samplingRate > 0 && cfg.samplingRate <= 1)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'central dp samplingRate must be a number in (0, 1] (sampled sites / enrolled sites)');
  }
  const d = cfg.expectedSites;
  if (d !== undefined && !(Number.isFinite(d) && d > 0)) throw new FedmetaError(ErrorCode.CONFIG, 'central dp expectedSites must be a number > 0');
}

export interface ClippedUpdate {
  vector: Float32Array;
  /** The norm before clipping. */
  norm: number;
  clipped: boolean;
}

/**
 * A copy of `v` with L2 norm at most maxNorm, guaranteed after float32 rounding (a site that clips its own
 * update before secure aggregation uses this too).
 */
export function clipUpdate(v: Float32Array, maxNorm: number): ClippedUpdate {
  if (!(Number.isFinite(maxNorm) && maxNorm > 0)) throw new FedmetaError(ErrorCode.PRECONDITION, 'clipping needs a finite bound > 0');
  const norm = l2Norm(v);
  if (!Number.isFinite(norm)) {
    throw new FedmetaError(ErrorCode.NON_FINITE, `an update of ${v.length} values contains NaN or infinity; reject it before aggregation`);
  }
  const out = new Float32Array(v);
  if (norm <= maxNorm) return { vector: out, norm, clipped: false };
  let scale = maxNorm / norm;
  // Rounding each value to float32 can push the norm a few ulps past the bound: shrink until it is inside.
  for (;;) {
    for (let i = 0; i < v.length; i++) out[i] = v[i]! * scale;
    if (l2Norm(out) <= maxNorm) break;
    scale *= 1 - 1e-7;
  }
  return { vector: out, norm, clipped: true };
}

export interface CentralDpResult {
  /** (Σ clipped updates + noise) / denominator, in the updates' layout and sign convention. */
  aggregate: Float32Array;
  /** Each site's update after clipping, in input order. */
  clippedUpdates: Float32Array[];
  /** How many updates were scaled down. */
  clipped: number;
  /** The standard deviation of the noise added to each coordinate of the sum (σS). */
  noiseStd: number;
  denominator: number;
  /** What to give the accountant: one sampled Gaussian mechanism per round. */
  accounting: MechanismSteps;
}

/** Clips each site's update to S, sums, adds N(0, σ²S²) per coordinate and divides by the denominator. */
export function clipAndNoiseAggregate(updates: readonly Float32Array[], cfg: CentralDpConfig, noise: NoiseSource): CentralDpResult {
  checkCentralDpConfig(cfg);
  if (updates.length === 0) throw new FedmetaError(ErrorCode.PRECONDITION, 'aggregation needs at least one update');
  const dim = updates[0]!.length;
  const sum = new Float64Array(dim);
  const clippedUpdates: Float32Array[] = [];
  let clipped = 0;
  for (const u of updates) {
    if (u.length !== dim) throw new FedmetaError(ErrorCode.WRONG_LENGTH, `an update has ${u.length} values where the others have ${dim}`);
    const c = clipUpdate(u, cfg.clipNorm);
    if (c.clipped) clipped++;
    clippedUpdates.push(c.vector);
    for (let i = 0; i < dim; i++) sum[i] = sum[i]! + c.vector[i]!;
  }
  const noiseStd = cfg.noiseMultiplier * cfg.clipNorm;
  const denominator = cfg.expectedSites ?? updates.length;
  const noisy = new Float32Array(dim);
  // Noise in float64 on the float64 sum, then one rounding: the float32 result carries the configured σS.
  for (let i = 0; i < dim; i++) noisy[i] = (sum[i]! + (noiseStd === 0 ? 0 : noiseStd * noise.normal())) / denominator;
  return {
    aggregate: noisy,
    clippedUpdates,
    clipped,
    noiseStd,
    denominator,
    accounting: { noiseMultiplier: cfg.noiseMultiplier, samplingRate: cfg.samplingRate, steps: 1 },
  };
}
