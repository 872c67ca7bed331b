import { tf } from '../runtime/tf.js';
import type { Scalar, Tensor, Tensor1D, Tensor2D } from '../runtime/tf.js';
import { reluGrad, transpose2d } from '../runtime/wasm-kernels.js';
import type { BatchTensors } from './batch.js';
import { meanLoss } from './forward.js';
import type { DenseTensors } from './forward.js';
import type { Activation, ModelSpec } from './spec.js';

/**
 * Explicit forward and backward passes of the MLP for the hand-written training step, in two layouts.
 *
 * The cost model is the wasm backend's: a plain matMul is fast, but the backend first repacks its right
 * operand whenever that tensor is new (about 10 ns per element, as much as a 75-row product), and caches the
 * packing while the tensor lives. Every step has new weights and new gradients, so what matters is which
 * operand of each product is the right one:
 * - `rows` (examples down the rows, as tfjs stores them): the right operands are the weight matrices and,
 *   for each weight gradient, the smaller of the layer input and the output gradient. Best for big batches.
 * - `cols` (examples across the columns): the right operands are activations and gradients, whose size
 *   scales with the batch, not with the weights. Best for small batches such as meta-learning episodes.
 *   The parameters are kept in a matching form between steps (see `toCols`).
 * Both return gradients already multiplied by `scale`, so that an SGD update is one subtraction.
 *
 * One trap: the backend keys its packing cache on the right operand's data id, not on its shape, so a tensor
 * and a reshape of it (which share data) must never both be right operands of products with different
 * shapes; such a second product would silently reuse the first one's packing.
 */
export type Layout = 'rows' | 'cols';

export interface Gradients {
  kernel: Tensor2D;
  bias: Tensor1D;
}

export interface BackwardResult {
  /** One entry per layer; undefined below the first layer asked for. */
  grads: Array<Gradients | undefined>;
  /** Mean loss at the current parameters, when asked for. */
  loss: Scalar | undefined;
}

/**
 * Chooses the layout that makes the backend pack fewer elements per step for this model and batch size (an
 * estimate: the weights each product packs in `rows`, the batch-sized operands it packs in `cols`). For the
 * 78-256-128-2 detector the switch is near 150 examples.
 */
export function chooseLayout(widths: readonly number[], n: number): Layout {
  let weights = 0;
  let perExample = 0;
  for (let l = 0; l + 1 < widths.length; l++) {
    const i = widths[l]!;
    const o = widths[l + 1]!;
    weights += i * o * (l > 0 ? 2 : 1); // forward (and input gradient) pack the weights
    perExample += Math.min(i, o); // rows: the smaller weight-gradient operand
  }
  const rowsCost = weights + n * perExample;
  let colsPerExample = 0;
  for (let l = 0; l + 1 < widths.length; l++) {
    const i = widths[l]!;
    const o = widths[l + 1]!;
    colsPerExample += (l > 0 ? i : 0) + o + (l > 0 ? o : 0); // activations, gradients, transposed gradients
  }
  return n * colsPerExample < rowsCost ? 'cols' : 'rows';
}

function activate(act: Activation, z: Tensor2D): Tensor2D {
  switch (act) {
    case 'relu':
      return tf.relu(z);
    case 'sigmoid':
      return tf.sigmoid(z);
    case 'elu':
      return tf.elu(z);
    case 'tanh':
      return fastTanh(z);
    case 'softplus':
      return tf.softplus(z);
  }
}

/** tanh through the sigmoid kernel, which the wasm backend runs about 15x faster than its own tanh. */
export function fastTanh(z: Tensor): Tensor2D {
  return tf.sub(tf.mul(tf.sigmoid(tf.mul(z, 2)), 2), 1) as Tensor2D;
}

/** dL/dz from dL/dh, using the layer's output h (and its pre-activation z for softplus). */
function activationGrad(act: Activation, dh: Tensor2D, h: Tensor2D, z: Tensor2D | undefined): Tensor2D {
  switch (act) {
    case 'relu':
      return reluGrad(dh, h);
    case 'sigmoid':
      return tf.mul(dh, tf.mul(h, tf.sub(1, h)));
    case 'tanh':
      return tf.mul(dh, tf.sub(1, tf.square(h)));
    case 'elu':
      return tf.engine().runKernel(tf.EluGrad, { dy: dh, y: h }) as Tensor2D;
    case 'softplus':
      return tf.mul(dh, tf.sigmoid(z!));
  }
}

/** Keeps the pre-activation only where the derivative needs it. */
const keepsPre = (act: Activation): boolean => act === 'softplus';

/** Logits [n, outputs] with fused matMul + bias + activation where the backend fuses them. */
export function forwardRows(spec: ModelSpec, layers: readonly DenseTensors[], x: Tensor2D): { inputs: Tensor2D[]; pre: Array<Tensor2D | undefined>; logits: Tensor2D } {
  const act = spec.activation;
  const inputs: Tensor2D[] = [];
  const pre: Array<Tensor2D | undefined> = [];
  let h = x;
  layers.forEach((layer, i) => {
    inputs.push(h);
    const { kernel, bias } = layer;
    if (i === layers.length - 1) {
      h = tf.fused.matMul({ a: h, b: kernel, bias }) as Tensor2D;
    } else if (act === 'relu' || act === 'sigmoid' || act === 'elu') {
      h = tf.fused.matMul({ a: h, b: kernel, bias, activation: act }) as Tensor2D;
      pre.push(undefined);
    } else {
      const z = tf.fused.matMul({ a: h, b: kernel, bias }) as Tensor2D;
      pre.push(keepsPre(act) ? z : undefined);
      h = activate(act, z);
    }
  });
  return { inputs, pre, logits: h };
}

function outputGradient(spec: ModelSpec, logits: Tensor2D, target: Tensor2D, scale: number): Tensor2D {
  const probs = spec.task.kind === 'binary' ? tf.sigmoid(logits) : tf.softmax(logits);
  return tf.mul(tf.sub(probs, target), scale) as Tensor2D;
}

/** Examples down the rows. */
export function backwardRows(
  spec: ModelSpec,
  layers: readonly DenseTensors[],
  batch: BatchTensors,
  scale: number,
  first: number,
  withLoss: boolean,
): BackwardResult {
  const { inputs, pre, logits } = forwardRows(spec, layers, batch.x);
  const loss = withLoss ? meanLoss(spec, logits, batch.target) : undefined;
  let g = outputGradient(spec, logits, batch.target, scale);
  const L = layers.length;
  const grads: Array<Gradients | undefined> = new Array(L).fill(undefined);
  for (let i = L - 1; i >= first; i--) {
    const input = inputs[i]!;
    const inDim = input.shape[1];
    const outDim = g.shape[1];
    if (inDim <= outDim) {
      // dWᵀ = gᵀ · x: the backend packs the layer input (the same tensor across steps for layer 0).
      const gT = transpose2d(g);
      grads[i] = { kernel: transpose2d(tf.matMul(gT, input) as Tensor2D), bias: tf.sum(gT, 1) as Tensor1D };
    } else {
      // dW = xᵀ · g: the backend packs g; the bias gradient, a ones-row product with g, reuses that packing.
      grads[i] = {
        kernel: tf.matMul(transpose2d(input), g) as Tensor2D,
        bias: tf.reshape(tf.matMul(tf.ones([1, batch.n]), g), [outDim]) as Tensor1D,
      };
    }
    if (i === first) break;
    const dh = tf.matMul(g, transpose2d(layers[i]!.kernel)) as Tensor2D;
    g = activationGrad(spec.activation, dh, input, pre[i - 1]);
  }
  return { grads, loss };
}

/**
 * The parameters as the cols layout keeps them between steps, so that a step converts nothing: the first
 * layer's kernel transposed ([out, in]: the left operand of its forward product, and what its weight
 * gradient comes out as), hidden biases as columns ([out, 1]: they add across the examples). Other kernels
 * and the output layer are as in the rows layout. A model without hidden layers is the same in both.
 */
export function toCols<T extends DenseTensors | undefined>(layers: readonly T[]): T[] {
  const L = layers.length;
  return layers.map((l, i) => {
    if (l === undefined || i === L - 1) return l;
    const kernel = i === 0 ? transpose2d(l.kernel) : l.kernel;
    return { kernel, bias: tf.reshape(l.bias, [l.bias.shape[0], 1]) as unknown as Tensor1D } as T;
  });
}

/** The inverse of `toCols` (also for gradients, which take the same form as the parameters). */
export function toRows<T extends DenseTensors | undefined>(layers: readonly T[]): T[] {
  const L = layers.length;
  return layers.map((l, i) => {
    if (l === undefined || i === L - 1) return l;
    const kernel = i === 0 ? transpose2d(l.kernel) : l.kernel;
    // A copy, not a view: the wasm backend's fused matMul checks the rank its bias data was made with.
    return { kernel, bias: tf.clone(tf.reshape(l.bias, [l.bias.size])) as Tensor1D } as T;
  });
}

interface ColsForward {
  /** Each layer's input, transposed: [width, n]. */
  inputsT: Tensor2D[];
  preT: Array<Tensor2D | undefined>;
  /** [n, outputs], from the output layer multiplied in the rows layout. */
  logits: Tensor2D;
}

/** Forward pass over cols-form parameters (see `toCols`). */
export function forwardCols(spec: ModelSpec, layers: readonly DenseTensors[], batch: BatchTensors): ColsForward {
  const act = spec.activation;
  const L = layers.length;
  const inputsT: Tensor2D[] = [];
  const preT: Array<Tensor2D | undefined> = [];
  let hT = L > 1 ? batch.xT() : batch.x;
  for (let i = 0; i < L - 1; i++) {
    const layer = layers[i]!;
    inputsT.push(hT);
    // The backend packs hT (width x n), not the weights.
    const kernelT = i === 0 ? layer.kernel : transpose2d(layer.kernel);
    const zT = tf.add(tf.matMul(kernelT, hT), layer.bias) as Tensor2D;
    preT.push(keepsPre(act) ? zT : undefined);
    hT = activate(act, zT);
  }
  inputsT.push(hT);
  const last = layers[L - 1]!;
  // The output layer's weights are tiny and its few logits per example would make a poor cols product: it
  // multiplies in the rows layout. A plain product and a broadcast add: two kernels, where the fused op
  // adds three reshapes around its one.
  const z = tf.add(tf.matMul(L === 1 ? batch.x : transpose2d(hT), last.kernel), last.bias) as Tensor2D;
  return { inputsT, preT, logits: z };
}

/** Examples across the columns: hidden activations are [width, n]; parameters and gradients in cols form. */
export function backwardCols(
  spec: ModelSpec,
  layers: readonly DenseTensors[],
  batch: BatchTensors,
  scale: number,
  first: number,
  withLoss: boolean,
): BackwardResult {
  const act = spec.activation;
  const L = layers.length;
  const { inputsT, preT, logits: z } = forwardCols(spec, layers, batch);
  const loss = withLoss ? meanLoss(spec, z, batch.target) : undefined;
  let g: Tensor2D | undefined = outputGradient(spec, z, batch.target, scale);
  // A transposed copy even when a reshape would do (binary: [n, 1] -> [1, n]): the wasm backend caches its
  // packing of a right operand by data id, not shape, so a reshape of g used as the right operand of a
  // second product would be served g's packing.
  let gT = transpose2d(g);
  const grads: Array<Gradients | undefined> = new Array(L).fill(undefined);
  for (let i = L - 1; i >= first; i--) {
    if (i === L - 1) {
      const kernel = tf.matMul(L === 1 ? batch.xT() : inputsT[i]!, g ?? transpose2d(gT)) as Tensor2D;
      grads[i] = { kernel, bias: tf.sum(gT, 1) as Tensor1D };
    } else {
      // Layer 0 multiplies against the batch, which the backend packed once for all the steps on it, and
      // its gradient comes out transposed, as its kernel is kept.
      const kernel = i === 0 ? tf.matMul(gT, batch.x) : tf.matMul(inputsT[i]!, g ?? transpose2d(gT));
      grads[i] = { kernel: kernel as Tensor2D, bias: tf.sum(gT, 1, true) as unknown as Tensor1D };
    }
    if (i === first) break;
    const dhT = tf.matMul(layers[i]!.kernel, gT) as Tensor2D;
    gT = activationGrad(act, dhT, inputsT[i]!, preT[i - 1]);
    g = undefined;
  }
  return { grads, loss };
}
