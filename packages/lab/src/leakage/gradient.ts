import { ErrorCode, FedmetaError, disposeLayers, layerSlots, logits, meanLoss, modelParamCount, outputDim, requireRuntime, targetValues, tf, uploadLayers } from '@fedmeta/shared';
import type { Batch, DenseTensors, ModelSpec, Tensor, Tensor1D, Tensor2D } from '@fedmeta/shared';

/**
 * What the site sends in the leakage experiments: the gradient of the mean loss of a batch at the offered
 * parameters, in the flat layout. It is FedSGD's update, and one inner step of Reptile's up to the known step
 * size; multi-step and first-order MAML updates mix several such gradients (see the results README).
 */
export function batchGradient(spec: ModelSpec, params: Float32Array, batch: Batch): Float32Array {
  requireRuntime();
  if (params.length < modelParamCount(spec)) throw new FedmetaError(ErrorCode.WRONG_LENGTH, 'the parameter vector is shorter than the model');
  const layers = uploadLayers(spec, params);
  const x = tf.tensor2d(batch.x, [batch.n, batch.dim]);
  const t = tf.tensor2d(targetValues(spec, batch.y, batch.n), [batch.n, outputDim(spec)]);
  try {
    const vars = layers.flatMap((l) => [l.kernel, l.bias]);
    const grads = tf.tidy(() => tf.grads((...ws: Tensor[]) => meanLoss(spec, logits(spec, asLayers(ws), x), t))(vars));
    return flatten(spec, grads);
  } finally {
    disposeLayers(layers);
    x.dispose();
    t.dispose();
  }
}

/** Kernel and bias tensors, alternating, as the model's dense layers. */
export function asLayers(ws: readonly Tensor[]): DenseTensors[] {
  const out: DenseTensors[] = [];
  for (let i = 0; i + 1 < ws.length; i += 2) out.push({ kernel: ws[i] as Tensor2D, bias: ws[i + 1] as Tensor1D });
  return out;
}

/** Gradient tensors (kernel, bias per layer) into one flat vector; the tensors are disposed. */
export function flatten(spec: ModelSpec, grads: readonly Tensor[]): Float32Array {
  const out = new Float32Array(modelParamCount(spec));
  layerSlots(spec).forEach((s, i) => {
    out.set(grads[2 * i]!.dataSync() as Float32Array, s.kernelOffset);
    out.set(grads[2 * i + 1]!.dataSync() as Float32Array, s.biasOffset);
  });
  for (const g of grads) g.dispose();
  return out;
}

/** The sum of several sites' updates: all that secure aggregation lets the coordinator see. */
export function sumUpdates(updates: readonly Float32Array[]): Float32Array {
  const first = updates[0];
  if (first === undefined) throw new FedmetaError(ErrorCode.PRECONDITION, 'a sum needs at least one update');
  const acc = new Float64Array(first.length);
  for (const u of updates) {
    if (u.length !== first.length) throw new FedmetaError(ErrorCode.SHAPE, 'updates of one round must share one layout');
    for (let i = 0; i < u.length; i++) acc[i] = acc[i]! + u[i]!;
  }
  return Float32Array.from(acc);
}
