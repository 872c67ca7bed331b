import { ErrorCode, FedmetaError, disposeLayers, logits, requireRuntime, tf, uploadLayers } from '@fedmeta/shared';
import type { ModelSpec, Rng, Tensor2D } from '@fedmeta/shared';

/**
 * Projected gradient descent in feature space: the attacker lowers the detector's logit of its own flows
 * (towards "benign") by changing only the features it controls, within a budget around each original flow,
 * and never outside the features' domain. Units are the standardised ones the detector sees, so a budget of
 * 0.5 means half a (benign) standard deviation of each controlled feature.
 *
 * Guarantees, whatever the gradient does: every returned row differs from its original only where `mask` is
 * 1; |x' − x| <= ε per feature (L∞) or ||x' − x||₂ <= ε over the row (L2); and x'_j >= lower_j wherever the
 * original already was (a flow that the loader read below the bound is never pushed further).
 */
export type PgdNorm = 'linf' | 'l2';

export interface PgdOptions {
  epsilon: number;
  norm: PgdNorm;
  steps: number;
  /** Step size; default 2.5 ε / steps (Madry et al.'s rule of thumb). */
  stepSize?: number;
  /** 1 for features the attacker controls. */
  mask: Uint8Array;
  /** Lowest allowed value per feature, standardised (−Infinity where unconstrained). */
  lower: Float64Array;
  /** Start from a random point of the budget instead of the flow itself. */
  rng?: Rng;
}

/** d(sum of logits)/dx for n rows: each row's own logit gradient, since rows do not interact. */
export function logitGradient(spec: ModelSpec, params: Float32Array, x: Float32Array, n: number): Float32Array {
  requireRuntime();
  if (spec.task.kind !== 'binary') throw new FedmetaError(ErrorCode.CONFIG, 'the evasion attack targets a binary detector');
  const layers = uploadLayers(spec, params);
  try {
    const g = tf.tidy(() => {
      const xt = tf.tensor2d(x, [n, spec.inputDim]);
      return tf.grad((input) => tf.sum(logits(spec, layers, input as Tensor2D)))(xt);
    });
    const out = Float32Array.from(g.dataSync() as Float32Array);
    g.dispose();
    return out;
  } finally {
    disposeLayers(layers);
  }
}

function checkOptions(dim: number, o: PgdOptions): void {
  if (!(Number.isFinite(o.epsilon) && o.epsilon >= 0)) throw new FedmetaError(ErrorCode.CONFIG, 'the evasion budget must be a finite number >= 0');
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new FedmetaError(ErrorCode.CONFIG, 'PGD needs a whole number of steps >= 1');
  if (o.mask.length !== dim || o.lower.length !== dim) throw new FedmetaError(ErrorCode.SHAPE, `the feature mask and bounds must cover the ${dim} features`);
  if (o.norm !== 'linf' && o.norm !== 'l2') throw new FedmetaError(ErrorCode.CONFIG, 'the PGD norm must be linf or l2');
}

/** Projects row `r` of `x` back into the budget around `x0` and into the domain, in place. */
export function project(x: Float32Array, x0: Float32Array, r: number, dim: number, o: Pick<PgdOptions, 'epsilon' | 'norm' | 'mask' | 'lower'>): void {
  const off = r * dim;
  if (o.norm === 'linf') {
    for (let j = 0; j < dim; j++) {
      const orig = x0[off + j]!;
      if (o.mask[j] !== 1) {
        x[off + j] = orig;
        continue;
      }
      x[off + j] = Math.min(orig + o.epsilon, Math.max(orig - o.epsilon, x[off + j]!));
    }
  } else {
    let sq = 0;
    for (let j = 0; j < dim; j++) {
      if (o.mask[j] !== 1) {
        x[off + j] = x0[off + j]!;
        continue;
      }
      const d = x[off + j]! - x0[off + j]!;
      sq += d * d;
    }
    const norm = Math.sqrt(sq);
    // A hair inside the ball, so float32 rounding of the scaled deltas cannot land just outside it.
    if (norm > o.epsilon) {
      const scale = (o.epsilon / norm) * (1 - 1e-6);
      for (let j = 0; j < dim; j++) if (o.mask[j] === 1) x[off + j] = x0[off + j]! + (x[off + j]! - x0[off + j]!) * scale;
    }
  }
  // Moving a feature up to its bound only brings it nearer its original value: the budget still holds.
  for (let j = 0; j < dim; j++) {
    if (o.mask[j] !== 1) continue;
    const bound = Math.min(o.lower[j]!, x0[off + j]!);
    if (x[off + j]! < bound) x[off + j] = bound;
  }
}

/** The attacked copies of n flows (row-major, standardised). */
export function pgdAttack(spec: ModelSpec, params: Float32Array, x0: Float32Array, n: number, o: PgdOptions): Float32Array {
  const dim = spec.inputDim;
  checkOptions(dim, o);
  if (x0.length !== n * dim) throw new FedmetaError(ErrorCode.SHAPE, `expected ${n} rows of ${dim} features`);
  const x = new Float32Array(x0);
  if (o.epsilon === 0 || n === 0) return x;
  const alpha = o.stepSize ?? (2.5 * o.epsilon) / o.steps;
  if (o.rng !== undefined) {
    for (let i = 0; i < x.length; i++) if (o.mask[i % dim] === 1) x[i] = x[i]! + o.epsilon * (2 * o.rng.next() - 1);
    for (let r = 0; r < n; r++) project(x, x0, r, dim, o);
  }
  for (let step = 0; step < o.steps; step++) {
    const g = logitGradient(spec, params, x, n);
    for (let r = 0; r < n; r++) {
      const off = r * dim;
      if (o.norm === 'linf') {
        for (let j = 0; j < dim; j++) if (o.mask[j] === 1) x[off + j] = x[off + j]! - alpha * Math.sign(g[off + j]!);
      } else {
        let sq = 0;
        for (let j = 0; j < dim; j++) if (o.mask[j] === 1) sq += g[off + j]! * g[off + j]!;
        const norm = Math.sqrt(sq);
        if (norm > 0) for (let j = 0; j < dim; j++) if (o.mask[j] === 1) x[off + j] = x[off + j]! - (alpha * g[off + j]!) / norm;
      }
      project(x, x0, r, dim, o);
    }
  }
  return x;
}
