export type OptimizerConfig =
  | { kind: 'sgd'; lr: number }
  | { kind: 'momentum'; lr: number; momentum: number; nesterov?: boolean }
  /** FedAdam (Reddi et al. 2021): Adam on the aggregated pseudo-gradient. */
  | { kind: 'adam'; lr: number; beta1?: number; beta2?: number; epsilon?: number };

/** Everything needed to continue identically after a restart; buffers are exact float32/float64 copies. */
export interface OptimizerState {
  kind: OptimizerConfig['kind'];
  step: number;
  /** Named buffers (momentum `m`, Adam `m` and `v`), each as long as the parameter vector. */
  buffers: Record<string, Float64Array>;
}

/**
 * The coordinator's outer optimizer. `gradient` has the sign convention of a gradient (the aggregated
 * pseudo-gradient, see MetaResult), so every optimizer moves params against it.
 */
export interface ServerOptimizer {
  readonly config: OptimizerConfig;
  /** Returns NEW parameters; neither input is modified. Advances the internal state by one step. */
  step(params: Float32Array, gradient: Float32Array): Float32Array;
  /** A deep copy of the state; restoring it with createOptimizer continues bit for bit. */
  state(): OptimizerState;
}
