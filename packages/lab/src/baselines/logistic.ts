import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { Batch } from '@fedmeta/shared';

/**
 * L2-regularised logistic regression by full-batch gradient descent on the mean log loss plus (l2 / 2)·|w|²
 * (the bias is not penalised). Starts from zero, so the result depends on the data alone. The few-shot
 * baseline: trained on the support set only.
 */
export interface LogisticOptions {
  /** Gradient steps (default 300). */
  steps?: number;
  /** Step size (default 0.1; features are standardised, so the loss is well scaled). */
  lr?: number;
  /** L2 penalty (default 0.01). */
  l2?: number;
}

export class LogisticRegression {
  private constructor(
    readonly weights: Float64Array,
    readonly bias: number,
  ) {}

  static fit(batch: Batch, opts: LogisticOptions = {}): LogisticRegression {
    const { x, y, n, dim } = batch;
    if (!Number.isInteger(n) || n < 1 || x.length !== n * dim || y.length !== n) {
      throw new FedmetaError(ErrorCode.SHAPE, `a training set needs n >= 1 rows of ${dim} features and n labels; got ${x.length} values and ${y.length} labels`);
    }
    const steps = opts.steps ?? 300;
    const lr = opts.lr ?? 0.1;
    const l2 = opts.l2 ?? 0.01;
    if (!Number.isInteger(steps) || steps < 0) throw new FedmetaError(ErrorCode.CONFIG, 'logistic regression steps must be a non-negative integer');
    if (!(Number.isFinite(lr) && lr > 0) || !(Number.isFinite(l2) && l2 >= 0)) {
      throw new FedmetaError(ErrorCode.CONFIG, 'logistic regression needs a positive step size and a non-negative L2 penalty');
    }
    const w = new Float64Array(dim);
    let b = 0;
    const gw = new Float64Array(dim);
    for (let s = 0; s < steps; s++) {
      gw.fill(0);
      let gb = 0;
      for (let i = 0; i < n; i++) {
        let z = b;
        const off = i * dim;
        for (let j = 0; j < dim; j++) z += w[j]! * x[off + j]!;
        const err = sigmoid(z) - y[i]!;
        gb += err;
        for (let j = 0; j < dim; j++) gw[j] = gw[j]! + err * x[off + j]!;
      }
      for (let j = 0; j < dim; j++) w[j] = w[j]! - lr * (gw[j]! / n + l2 * w[j]!);
      b -= lr * (gb / n);
    }
    return new LogisticRegression(w, b);
  }

  predict(x: Float32Array, n: number): Float32Array {
    const dim = this.weights.length;
    if (x.length !== n * dim) throw new FedmetaError(ErrorCode.SHAPE, `expected ${n} rows of ${dim} features, got ${x.length} values`);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let z = this.bias;
      const off = i * dim;
      for (let j = 0; j < dim; j++) z += this.weights[j]! * x[off + j]!;
      out[i] = sigmoid(z);
    }
    return out;
  }
}

function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}
