/** One site's update and the weight it carries (its example count, for the example-weighted mean). */
export interface WeightedUpdate {
  vector: Float32Array;
  weight: number;
}

export type AggregatorConfig =
  | { kind: 'mean' }
  | { kind: 'median' }
  /** Drops the `trim` largest and `trim` smallest values of each coordinate; needs n > 2 * trim. */
  | { kind: 'trimmed-mean'; trim: number }
  /** Multi-Krum: tolerates f faulty updates, averages the m best-scored ones; needs n >= 2f + 3. */
  | { kind: 'multi-krum'; f: number; m?: number }
  /** Centered clipping (Karimireddy et al. 2021) around a reference, radius tau, `iterations` passes. */
  | { kind: 'centered-clipping'; tau: number; iterations?: number }
  /** Clips each update to L2 norm <= maxNorm, then the example-weighted mean. */
  | { kind: 'norm-clip'; maxNorm: number };

/**
 * Per-round inputs that are not configuration: they change every round, so they live outside the
 * (checkpointed) config.
 */
export interface AggregateOptions {
  /**
   * Starting point of centered clipping, typically the previous round's aggregate (same gradient-sign
   * convention as the updates). Ignored by the other aggregators. Default: the zero vector.
   */
  reference?: Float32Array;
}
