import { tf } from '../runtime/tf.js';
import type { Scalar, Tensor, Tensor1D, Tensor2D } from '../runtime/tf.js';
import type { Activation, ModelSpec } from './spec.js';
import { layerSlots } from './params.js';

/**
 * The differentiable forward pass and loss, written only from ops whose registered gradients are correct to
 * second order (runtime/gradients.ts): no fused ops, no tfjs loss helpers. Used where tfjs autodiff must see
 * the whole computation: full second-order MAML, and input gradients (for example for evasion tests).
 */
export interface DenseTensors {
  kernel: Tensor2D;
  bias: Tensor1D;
}

export function activate(activation: Activation, z: Tensor): Tensor {
  switch (activation) {
    case 'relu':
      return tf.relu(z);
    case 'tanh':
      return tf.tanh(z);
    case 'sigmoid':
      return tf.sigmoid(z);
    case 'elu':
      return tf.elu(z);
    case 'softplus':
      return tf.softplus(z);
  }
}

/** Logits [n, outputs] for x [n, inputDim]; no fused ops (their gradients are not twice differentiable). */
export function logits(spec: ModelSpec, layers: readonly DenseTensors[], x: Tensor2D): Tensor2D {
  let h: Tensor2D = x;
  layers.forEach((layer, i) => {
    const z = tf.add(tf.matMul(h, layer.kernel), layer.bias) as Tensor2D;
    h = i < layers.length - 1 ? (activate(spec.activation, z) as Tensor2D) : z;
  });
  return h;
}

/**
 * Mean loss from differentiable pieces. Binary: mean(softplus(z) - y z) (= sigmoid cross-entropy).
 * Multiclass: mean(logSumExp(z) - sum(onehot * z)) (= softmax cross-entropy). `target` is what
 * `targetValues` builds.
 */
export function meanLoss(spec: ModelSpec, z: Tensor2D, target: Tensor2D): Scalar {
  if (spec.task.kind === 'binary') {
    return tf.mean(tf.sub(tf.softplus(z), tf.mul(target, z)));
  }
  return tf.mean(tf.sub(tf.logSumExp(z, 1), tf.sum(tf.mul(target, z), 1)));
}

/** Uploads the model's layers from a flat vector (its first modelParamCount values). */
export function uploadLayers(spec: ModelSpec, values: Float32Array): DenseTensors[] {
  return layerSlots(spec).map((s) => ({
    kernel: tf.tensor2d(values.subarray(s.kernelOffset, s.kernelOffset + s.inDim * s.outDim), [s.inDim, s.outDim]),
    bias: tf.tensor1d(values.subarray(s.biasOffset, s.biasOffset + s.outDim)),
  }));
}

/** Reads layer tensors back into `out` at their flat offsets (dataSync outside any tidy: no element walk). */
export function readLayers(spec: ModelSpec, layers: readonly DenseTensors[], out: Float32Array): Float32Array {
  layerSlots(spec).forEach((s, i) => {
    const layer = layers[i]!;
    out.set(layer.kernel.dataSync() as Float32Array, s.kernelOffset);
    out.set(layer.bias.dataSync() as Float32Array, s.biasOffset);
  });
  return out;
}

export function disposeLayers(layers: readonly DenseTensors[]): void {
  for (const l of layers) {
    l.kernel.dispose();
    l.bias.dispose();
  }
}
