import { ErrorCode, FedmetaError } from '../errors.js';
import type { BatchTensors } from '../model/batch.js';
import { forwardRows } from '../model/backprop.js';
import { meanLoss } from '../model/forward.js';
import type { DenseTensors } from '../model/forward.js';
import { layerSlots, modelParamCount } from '../model/params.js';
import type { Activation, ModelSpec } from '../model/spec.js';
import { tf } from '../runtime/tf.js';
import type { Tensor2D } from '../runtime/tf.js';
import { reluGrad, transpose2d } from '../runtime/wasm-kernels.js';

/**
 * Per-example gradients of the MLP, clipped, without materialising them. For a dense layer the gradient of
 * example i's loss is the outer product a_i ⊗ g_i of the layer's input and the loss's derivative with respect
 * to the layer's pre-activation, so its squared norm is ||a_i||² ||g_i||² for the kernel plus ||g_i||² for the
 * bias ("ghost norms"): one ordinary forward and backward pass gives every example's norm. Scaling example
 * i's output gradient by its clip factor c_i scales all its g_i by c_i, so the clipped sum is Σ_l Aᵀ(c ⊙ G)
 * per layer, two products as in plain backprop.
 */

/**
 * Clip factors bring every example to a norm of at most clipNorm * CLIP_SAFETY rather than clipNorm itself,
 * so that the float32 rounding of the norms (about 1e-6 relative) cannot carry a clipped gradient past the
 * bound the noise is calibrated to.
 */
export const CLIP_SAFETY = 1 - 1e-4;

interface Parts {
  /** Layer inputs a_l [n, in_l], for l >= first. */
  inputs: Tensor2D[];
  /** dℓ_i/dz_l [n, out_l] for every example i, for l >= first. */
  deltas: Tensor2D[];
  logits: Tensor2D;
}

/** The derivative of the activation, from its output h (and its input z where h does not determine it). */
function activationGrad(act: Activation, dh: Tensor2D, h: Tensor2D, z: Tensor2D | undefined): Tensor2D {
  switch (act) {
    case 'relu':
      return reluGrad(dh, h);
    case 'sigmoid':
      return tf.mul(dh, tf.mul(h, tf.sub(1, h)));
    case 'tanh':
      return tf.mul(dh, tf.sub(1, tf.square(h)));
    case 'elu':
      // elu'(z) = 1 for z > 0, e^z = h + 1 otherwise.
      return tf.mul(dh, tf.add(tf.minimum(h, 0), 1));
    case 'softplus':
      return tf.mul(dh, tf.sigmoid(z!));
  }
}

/** Forward and backward pass keeping each layer's input and per-example deltas (call inside tf.tidy). */
function backwardParts(spec: ModelSpec, layers: readonly DenseTensors[], batch: BatchTensors, first: number): Parts {
  const { inputs, pre, logits } = forwardRows(spec, layers, batch.x);
  const probs = spec.task.kind === 'binary' ? tf.sigmoid(logits) : tf.softmax(logits);
  let g = tf.sub(probs, batch.target) as Tensor2D; // d(example loss)/d(logits), one row per example
  const L = layers.length;
  const deltas: Tensor2D[] = new Array(L);
  for (let i = L - 1; i >= first; i--) {
    deltas[i] = g;
    if (i === first) break;
    const dh = tf.matMul(g, transpose2d(layers[i]!.kernel)) as Tensor2D;
    g = activationGrad(spec.activation, dh, inputs[i]!, pre[i - 1]);
  }
  return { inputs, deltas, logits };
}

export interface ClipFactors {
  /** Each example's gradient norm over the adapted layers, before clipping. */
  norms: Float64Array;
  /** The factor each example's gradient is multiplied by (1 when inside the bound). */
  factors: Float64Array;
  /** How many examples were scaled down. */
  clipped: number;
}

/** Norms from the per-layer squared input and delta norms ([n, 2m] row-major: ||a||², ||g||² per layer), in float64. */
function clipFactors(sq: Float32Array, n: number, m: number, clipNorm: number): ClipFactors {
  const bound = clipNorm * CLIP_SAFETY;
  const norms = new Float64Array(n);
  const factors = new Float64Array(n);
  let clipped = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let l = 0; l < m; l++) s += (sq[i * 2 * m + 2 * l]! + 1) * sq[i * 2 * m + 2 * l + 1]!;
    const norm = Math.sqrt(s);
    if (!Number.isFinite(norm)) {
      throw new FedmetaError(ErrorCode.NON_FINITE, 'a per-example gradient is not finite (the model has diverged); lower the learning rate');
    }
    norms[i] = norm;
    factors[i] = norm > bound ? bound / norm : 1;
    if (norm > bound) clipped++;
  }
  return { norms, factors, clipped };
}

function rowSquares(t: Tensor2D): tf.Tensor1D {
  return tf.sum(tf.square(t), 1) as tf.Tensor1D;
}

export interface ClippedSum extends ClipFactors {
  /** Σ_i c_i ∇ℓ_i in the flat model layout; entries of layers below `first` are zero. */
  sum: Float32Array;
  /** Mean loss of the batch at these parameters, when asked for. */
  loss: number | undefined;
}

/** The sum over the batch of the per-example gradients, each clipped to clipNorm (layers first..L-1). */
export function clippedGradientSum(
  spec: ModelSpec,
  layers: readonly DenseTensors[],
  batch: BatchTensors,
  clipNorm: number,
  first: number,
  withLoss = false,
): ClippedSum {
  const L = layers.length;
  const m = L - first;
  const n = batch.n;
  let factors: ClipFactors | undefined;
  const out = tf.tidy(() => {
    const { inputs, deltas, logits } = backwardParts(spec, layers, batch, first);
    const parts: tf.Tensor1D[] = [];
    for (let l = first; l < L; l++) parts.push(rowSquares(inputs[l]!), rowSquares(deltas[l]!));
    factors = clipFactors(tf.stack(parts, 1).dataSync() as Float32Array, n, m, clipNorm);
    const c = tf.tensor2d(Float32Array.from(factors.factors), [n, 1]);
    const tensors: tf.Tensor[] = [];
    for (let l = first; l < L; l++) {
      const cg = tf.mul(deltas[l]!, c) as Tensor2D;
      tensors.push(tf.matMul(transpose2d(inputs[l]!), cg), tf.sum(cg, 0));
    }
    if (withLoss) tensors.push(meanLoss(spec, logits, batch.target));
    return tensors;
  });
  const sum = new Float32Array(modelParamCount(spec));
  const slots = layerSlots(spec);
  for (let l = first; l < L; l++) {
    const s = slots[l]!;
    sum.set(out[2 * (l - first)]!.dataSync() as Float32Array, s.kernelOffset);
    sum.set(out[2 * (l - first) + 1]!.dataSync() as Float32Array, s.biasOffset);
  }
  const loss = withLoss ? (out[2 * m]!.dataSync()[0] as number) : undefined;
  tf.dispose(out);
  return { ...factors!, sum, loss };
}

export interface PerExampleGradients extends ClipFactors {
  /** One flat gradient per example (model layout; layers below `first` zero), multiplied by its clip factor. */
  grads: Float32Array[];
}

/**
 * Every example's gradient written out explicitly (n vectors of the model's size): for checks and small
 * batches, not for training. With clipNorm, each is multiplied by the same factor `clippedGradientSum`
 * applies; without, factors are 1.
 */
export function perExampleGradients(
  spec: ModelSpec,
  layers: readonly DenseTensors[],
  batch: BatchTensors,
  first: number,
  clipNorm = Number.POSITIVE_INFINITY,
): PerExampleGradients {
  const L = layers.length;
  const m = L - first;
  const n = batch.n;
  const read = tf.tidy(() => {
    const { inputs, deltas } = backwardParts(spec, layers, batch, first);
    const parts: tf.Tensor1D[] = [];
    for (let l = first; l < L; l++) parts.push(rowSquares(inputs[l]!), rowSquares(deltas[l]!));
    return {
      sq: tf.stack(parts, 1).dataSync() as Float32Array,
      a: inputs.slice(first).map((t) => t.dataSync() as Float32Array),
      g: deltas.slice(first).map((t) => t.dataSync() as Float32Array),
    };
  });
  const f = clipFactors(read.sq, n, m, clipNorm);
  const slots = layerSlots(spec);
  const size = modelParamCount(spec);
  const grads = Array.from({ length: n }, (_, i) => {
    const out = new Float32Array(size);
    const c = f.factors[i]!;
    for (let l = first; l < L; l++) {
      const { inDim, outDim, kernelOffset, biasOffset } = slots[l]!;
      const a = read.a[l - first]!;
      const g = read.g[l - first]!;
      for (let r = 0; r < inDim; r++) {
        const ar = a[i * inDim + r]!;
        for (let o = 0; o < outDim; o++) out[kernelOffset + r * outDim + o] = ar * c * g[i * outDim + o]!;
      }
      for (let o = 0; o < outDim; o++) out[biasOffset + o] = c * g[i * outDim + o]!;
    }
    return out;
  });
  return { ...f, grads };
}
