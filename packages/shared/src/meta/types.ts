/**
 * A labelled batch of already-transformed features, row-major: x has n * dim values.
 * Labels: 0/1 for a binary task, 0..N-1 for a multiclass task.
 */
export interface Batch {
  x: Float32Array;
  y: Int32Array;
  n: number;
  dim: number;
}

/** One few-shot task: adapt on `support`, measure on `query`. */
export interface Episode {
  support: Batch;
  query: Batch;
}

export type MetaAlgorithm = 'reptile' | 'fomaml' | 'maml';

export interface InnerLoopConfig {
  /** k steps of SGD on the support batch. */
  steps: number;
  /** Inner step size (ignored for parameters covered by a Meta-SGD learned step size). */
  lr: number;
  /**
   * ANIL: only the last `adaptLast` dense layers are adapted in the inner loop (the output layer alone is 1).
   * Default: all layers.
   */
  adaptLast?: number;
  /**
   * Meta-SGD: the parameter vector carries one learned inner step size per model parameter after the model's
   * own values (`manifestFor(spec, { metaSgd: true })`), and those replace `lr`. Default: inferred from the
   * vector's length (twice the model's size means step sizes are present).
   */
  metaSgd?: boolean;
}

/**
 * What a site returns for one episode (or the mean over several): an update vector in the flat-parameter
 * layout, with the sign convention of a gradient, so that the outer optimizer always does `params -= lr * step(update)`.
 * Reptile's update is therefore (params - adapted) / (steps * lr)-free: params - adapted.
 */
export interface MetaResult {
  update: Float32Array;
  metrics: {
    supportLoss: number; // loss on the support batch before adaptation
    queryLoss: number; // loss on the query batch after adaptation
    examples: number; // support + query examples used
  };
}
