import { ErrorCode, FedmetaError } from '../errors.js';
import type { BatchTensors } from '../model/batch.js';
import { disposeLayers } from '../model/forward.js';
import type { DenseTensors } from '../model/forward.js';
import { layerSlots } from '../model/params.js';
import type { ModelSpec } from '../model/spec.js';
import { MlpTrainer } from '../model/trainer.js';
import type { Gradients } from '../model/trainer.js';
import { tf } from '../runtime/tf.js';
import type { Tensor1D, Tensor2D } from '../runtime/tf.js';
import type { ResolvedInner } from './inner.js';
import type { MetaResult } from './types.js';

/** Uploaded inputs of one episode, shared by the first-order algorithms. */
export interface EpisodeTensors {
  support: BatchTensors;
  /** Absent when the episode's query batch is empty (Reptile only). */
  query: BatchTensors | undefined;
  examples: number;
}

/**
 * Reptile: update = params - adapted (so the outer step `params -= lr * update` moves toward the adapted
 * parameters). Meta-SGD step sizes are not learned by Reptile, which is refused.
 */
export function reptile(
  spec: ModelSpec,
  params: Float32Array,
  start: readonly DenseTensors[],
  ep: EpisodeTensors,
  r: ResolvedInner,
): MetaResult {
  if (r.metaSgd) {
    throw new FedmetaError(ErrorCode.CONFIG, 'Meta-SGD step sizes are learned by maml or fomaml; use one of those, or drop the step sizes for reptile');
  }
  const trainer = new MlpTrainer(spec, start);
  try {
    const adaptLast = start.length - r.first;
    let supportLoss = Number.NaN;
    for (let k = 0; k < r.steps; k++) {
      const loss = trainer.step(ep.support, r.lr, { adaptLast, withLoss: k === 0 });
      if (k === 0) supportLoss = loss!;
    }
    if (r.steps === 0) supportLoss = trainer.loss(ep.support);
    const queryLoss = trainer.loss(ep.query ?? ep.support);
    const adapted = trainer.read();
    const update = new Float32Array(params.length);
    for (let i = 0; i < r.modelSize; i++) update[i] = params[i]! - adapted[i]!;
    return { update, metrics: { supportLoss, queryLoss, examples: ep.examples } };
  } finally {
    trainer.dispose();
  }
}

/**
 * First-order MAML: update = gradient of the query loss at the adapted parameters (all layers, also under
 * ANIL). With Meta-SGD, the step sizes get the first-order gradient -gradQ ⊙ Σ_k gradS_k, the exact
 * derivative when the inner gradients are treated as constants.
 */
export function fomaml(
  spec: ModelSpec,
  params: Float32Array,
  start: readonly DenseTensors[],
  ep: EpisodeTensors,
  r: ResolvedInner,
  stepSizes: readonly DenseTensors[] | undefined,
): MetaResult {
  const query = ep.query;
  if (query === undefined) throw new FedmetaError(ErrorCode.SHAPE, 'first-order MAML needs a non-empty query batch');
  const trainer = new MlpTrainer(spec, start);
  let sumSupport: Array<Gradients | undefined> | undefined;
  let qGrads: Array<Gradients | undefined> | undefined;
  try {
    const adaptLast = start.length - r.first;
    let supportLoss = Number.NaN;
    for (let k = 0; k < r.steps; k++) {
      if (stepSizes === undefined) {
        const loss = trainer.step(ep.support, r.lr, { adaptLast, withLoss: k === 0 });
        if (k === 0) supportLoss = loss!;
        continue;
      }
      const g = trainer.gradients(ep.support, r.first, k === 0);
      if (k === 0) supportLoss = g.loss!;
      sumSupport = accumulate(sumSupport, g.grads);
      trainer.applyGradients(g.grads, stepSizes);
      disposeGrads(g.grads);
    }
    if (r.steps === 0) supportLoss = trainer.loss(ep.support);
    const q = trainer.gradients(query, 0, true);
    qGrads = q.grads;
    const queryLoss = q.loss!;
    const update = new Float32Array(params.length);
    const slots = layerSlots(spec);
    slots.forEach((s, i) => {
      const g = qGrads![i]!;
      update.set(g.kernel.dataSync() as Float32Array, s.kernelOffset);
      update.set(g.bias.dataSync() as Float32Array, s.biasOffset);
    });
    if (stepSizes !== undefined && sumSupport !== undefined) {
      const acc = sumSupport;
      const sizeGrads = tf.tidy(() =>
        slots.flatMap((_, i) => {
          const q = qGrads![i]!;
          const s = acc[i];
          if (s === undefined) return [tf.zerosLike(q.kernel), tf.zerosLike(q.bias)];
          return [tf.neg(tf.mul(q.kernel, s.kernel)), tf.neg(tf.mul(q.bias, s.bias))];
        }),
      );
      slots.forEach((s, i) => {
        update.set(sizeGrads[2 * i]!.dataSync() as Float32Array, r.modelSize + s.kernelOffset);
        update.set(sizeGrads[2 * i + 1]!.dataSync() as Float32Array, r.modelSize + s.biasOffset);
      });
      tf.dispose(sizeGrads);
    }
    return { update, metrics: { supportLoss, queryLoss, examples: ep.examples } };
  } finally {
    trainer.dispose();
    if (sumSupport) disposeGrads(sumSupport);
    if (qGrads) disposeGrads(qGrads);
  }
}

function accumulate(
  acc: Array<Gradients | undefined> | undefined,
  g: ReadonlyArray<Gradients | undefined>,
): Array<Gradients | undefined> {
  const next = g.map((gi, i): Gradients | undefined => {
    if (gi === undefined) return undefined;
    const prev = acc?.[i];
    if (prev === undefined) return { kernel: tf.clone(gi.kernel), bias: tf.clone(gi.bias) };
    return { kernel: tf.add(prev.kernel, gi.kernel) as Tensor2D, bias: tf.add(prev.bias, gi.bias) as Tensor1D };
  });
  if (acc) disposeGrads(acc);
  return next;
}

function disposeGrads(g: ReadonlyArray<Gradients | undefined>): void {
  disposeLayers(g.filter((x): x is Gradients => x !== undefined));
}
