import { ErrorCode, FedmetaError } from '../errors.js';
import type { BatchTensors } from '../model/batch.js';
import { logits, meanLoss } from '../model/forward.js';
import type { DenseTensors } from '../model/forward.js';
import { layerSlots } from '../model/params.js';
import type { ModelSpec } from '../model/spec.js';
import { tf } from '../runtime/tf.js';
import type { Scalar, Tensor, Tensor1D, Tensor2D } from '../runtime/tf.js';
import type { EpisodeTensors } from './first-order.js';
import type { ResolvedInner } from './inner.js';
import type { MetaResult } from './types.js';

function toLayers(flat: readonly Tensor[]): DenseTensors[] {
  const layers: DenseTensors[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) layers.push({ kernel: flat[i] as Tensor2D, bias: flat[i + 1] as Tensor1D });
  return layers;
}

function batchLoss(spec: ModelSpec, layers: readonly DenseTensors[], b: BatchTensors): Scalar {
  return meanLoss(spec, logits(spec, layers, b.x), b.target);
}

/**
 * Full second-order MAML: the exact gradient of the query loss at the adapted parameters with respect to the
 * initial parameters (and Meta-SGD step sizes), differentiating through every inner SGD step with nested
 * `tf.grads`. Correct only because the runtime re-registers the gradients that tfjs builds from saved outputs
 * (see runtime/gradients.ts) and the losses are written from twice-differentiable pieces; the test suite
 * checks it against float64 finite differences.
 */
export function maml(
  spec: ModelSpec,
  params: Float32Array,
  start: readonly DenseTensors[],
  ep: EpisodeTensors,
  r: ResolvedInner,
  stepSizes: readonly DenseTensors[] | undefined,
): MetaResult {
  const query = ep.query;
  if (query === undefined) throw new FedmetaError(ErrorCode.SHAPE, 'MAML needs a non-empty query batch');
  const L = start.length;
  const theta0: Tensor[] = start.flatMap((l) => [l.kernel, l.bias]);
  const sizes0: Tensor[] = stepSizes ? stepSizes.flatMap((l) => [l.kernel, l.bias]) : [];
  const adaptedFrom = 2 * r.first; // index of the first adapted tensor in theta
  let supportLoss = Number.NaN;

  const queryLossOf = (...args: Tensor[]): Scalar => {
    let theta = args.slice(0, theta0.length);
    const sizes = args.slice(theta0.length);
    for (let k = 0; k < r.steps; k++) {
      const frozen = theta.slice(0, adaptedFrom);
      const inner = (...adapted: Tensor[]): Scalar => batchLoss(spec, toLayers([...frozen, ...adapted]), ep.support);
      const { value, grads } = tf.valueAndGrads(inner)(theta.slice(adaptedFrom));
      if (k === 0) supportLoss = value.dataSync()[0]!;
      const stepped = theta.slice(adaptedFrom).map((t, j) => {
        const g = grads[j]!;
        const size = sizes[adaptedFrom + j];
        return tf.sub(t, size ? tf.mul(size, g) : tf.mul(g, r.lr));
      });
      theta = [...frozen, ...stepped];
    }
    return batchLoss(spec, toLayers(theta), query);
  };

  // With no inner step the step sizes do not reach the loss (their gradient is zero); tfjs refuses to
  // differentiate with respect to an input that is not connected, so they are left out then.
  const all = r.steps === 0 ? theta0 : [...theta0, ...sizes0];
  const { value, grads } = tf.tidy(() => tf.valueAndGrads(queryLossOf)(all));
  try {
    const queryLoss = value.dataSync()[0]!;
    if (r.steps === 0) supportLoss = measure(spec, start, ep.support);
    const update = new Float32Array(params.length);
    const slots = layerSlots(spec);
    for (let i = 0; i < L; i++) {
      const s = slots[i]!;
      update.set(grads[2 * i]!.dataSync() as Float32Array, s.kernelOffset);
      update.set(grads[2 * i + 1]!.dataSync() as Float32Array, s.biasOffset);
      if (stepSizes && r.steps > 0) {
        update.set(grads[theta0.length + 2 * i]!.dataSync() as Float32Array, r.modelSize + s.kernelOffset);
        update.set(grads[theta0.length + 2 * i + 1]!.dataSync() as Float32Array, r.modelSize + s.biasOffset);
      }
    }
    return { update, metrics: { supportLoss, queryLoss, examples: ep.examples } };
  } finally {
    value.dispose();
    tf.dispose(grads);
  }
}

function measure(spec: ModelSpec, layers: readonly DenseTensors[], b: BatchTensors): number {
  const t = tf.tidy(() => batchLoss(spec, layers, b));
  const v = t.dataSync()[0]!;
  t.dispose();
  return v;
}
