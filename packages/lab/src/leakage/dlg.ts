import { ErrorCode, FedmetaError, disposeLayers, logits, meanLoss, outputDim, requireRuntime, targetValues, tf, uploadLayers } from '@fedmeta/shared';
import type { ModelSpec, Scalar, Tensor, Tensor2D } from '@fedmeta/shared';
import { asLayers } from './gradient.js';

/**
 * Gradient inversion by optimisation ("deep leakage from gradients"): dummy flows start from the attacker's
 * prior and are moved by Adam until the gradient they produce at the offered parameters points the same way
 * as the observed update. Labels are not optimised: they are fixed beforehand from the output layer (the
 * analytic count), as iDLG does. The distance is 1 − cosine similarity over the whole flat gradient rather
 * than the squared distance: it ignores the update's scale, which clipping (DP) or averaging (secure
 * aggregation) changes.
 */
export interface DlgOptions {
  iterations: number;
  lr: number;
  /** Labels of the dummy flows, one per row. */
  labels: Int32Array;
  /** The dummy flows' starting values (n rows). */
  init: Float32Array;
}

export interface DlgResult {
  x: Float32Array;
  /** 1 − cosine similarity between the dummy gradient and the observed update, before the last step. */
  distance: number;
}

export function dlgReconstruct(spec: ModelSpec, params: Float32Array, observed: Float32Array, n: number, opts: DlgOptions): DlgResult {
  requireRuntime();
  const dim = spec.inputDim;
  if (opts.init.length !== n * dim || opts.labels.length !== n) throw new FedmetaError(ErrorCode.SHAPE, `the dummy batch needs ${n} rows of ${dim} features and ${n} labels`);
  if (!Number.isInteger(opts.iterations) || opts.iterations < 1) throw new FedmetaError(ErrorCode.CONFIG, 'the inversion needs at least one iteration');
  const layers = uploadLayers(spec, params);
  const ws = layers.flatMap((l) => [l.kernel, l.bias]);
  // The observed update in the layers' shapes: the distance is summed per tensor (no concat, whose gradient
  // the runtime does not register).
  const targetLayers = uploadLayers(spec, observed);
  const targets = targetLayers.flatMap((l) => [l.kernel, l.bias]);
  const t = tf.tensor2d(targetValues(spec, opts.labels, n), [n, outputDim(spec)]);
  const x = tf.variable(tf.tensor2d(opts.init, [n, dim]), true, undefined, 'float32');
  const optimizer = tf.train.adam(opts.lr);
  const targetNorm = tf.tidy(() => tf.sqrt(tf.addN(targets.map((v) => tf.sum(tf.square(v))))));
  const distance = (): Scalar => {
    const gs = tf.grads((...w: Tensor[]) => meanLoss(spec, logits(spec, asLayers(w), x as unknown as Tensor2D), t))(ws);
    const dot = tf.addN(gs.map((g, i) => tf.sum(tf.mul(g, targets[i]!))));
    const norm = tf.sqrt(tf.addN(gs.map((g) => tf.sum(tf.square(g)))));
    return tf.sub(1, tf.div(dot, tf.add(tf.mul(norm, targetNorm), 1e-12))) as Scalar;
  };
  try {
    let last = Number.NaN;
    for (let it = 0; it < opts.iterations; it++) {
      const keep = it === opts.iterations - 1;
      const loss = optimizer.minimize(distance, keep, [x]);
      if (loss !== null) {
        last = (loss.dataSync() as Float32Array)[0]!;
        loss.dispose();
      }
    }
    return { x: Float32Array.from(x.dataSync() as Float32Array), distance: last };
  } finally {
    optimizer.dispose();
    x.dispose();
    targetNorm.dispose();
    t.dispose();
    disposeLayers(targetLayers);
    disposeLayers(layers);
  }
}
