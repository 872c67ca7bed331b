import type { MetaAlgorithm } from '../meta/types.js';

/** The work a round asks of each sampled site. */
export interface RoundTask {
  algorithm: MetaAlgorithm;
  innerSteps: number;
  innerLr: number;
  /** Support examples per class in each episode. */
  shots: number;
  /** Query examples per class in each episode. */
  queryShots: number;
  /** Episodes per site per round; the site returns the mean update over them. */
  episodes: number;
  /** Seed for the site's episode sampler this round (mixed with the site's own secret seed). */
  seed: number;
  /**
   * Record-level differential privacy: when present, the site trains with DP-SGD (each example's gradient
   * clipped to clipNorm, Gaussian noise of standard deviation noiseMultiplier x clipNorm on every noisy sum)
   * and reports what it spent in the update's privacy field.
   */
  dp?: TaskDp;
}

export interface TaskDp {
  clipNorm: number;
  noiseMultiplier: number;
}
