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
