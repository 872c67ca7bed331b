/** A small MLP detector. Parameters are named `dense{i}/kernel` ([in, out]) and `dense{i}/bias` ([out]). */
export type Activation = 'relu' | 'tanh' | 'sigmoid' | 'elu' | 'softplus';

export type DetectorTask =
  /** Benign (0) against attack (1); one output logit. */
  | { kind: 'binary' }
  /** N-way classification of attack families for triage; N output logits, labels 0..N-1. */
  | { kind: 'multiclass'; classes: number };

export interface ModelSpec {
  inputDim: number;
  hidden: number[];
  activation: Activation;
  task: DetectorTask;
}

export function outputDim(spec: ModelSpec): number {
  return spec.task.kind === 'binary' ? 1 : spec.task.classes;
}

/** Layer widths from input to output, e.g. [78, 256, 128, 1]. */
export function layerWidths(spec: ModelSpec): number[] {
  return [spec.inputDim, ...spec.hidden, outputDim(spec)];
}
