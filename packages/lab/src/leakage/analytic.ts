import { ErrorCode, FedmetaError, layerSlots } from '@fedmeta/shared';
import type { ModelSpec } from '@fedmeta/shared';

/**
 * Reading flows and labels straight out of an update, no optimisation.
 *
 * First layer: the first dense layer computes z_j = Σ_i x_i W1[i, j] + b1[j], so for one example
 * dL/dW1[i, j] = x_i · dL/db1[j]: every neuron the example activates (dL/db1[j] ≠ 0) holds x exactly, as
 * the ratio of its kernel column to its bias gradient. In a batch each ratio is the average of the examples
 * that activate the neuron, weighted by their dL/db1[j]; a neuron that exactly one example activates still
 * gives that example back exactly.
 *
 * Labels (binary, one output logit): dL/db_out = mean_i (σ(z_i) − y_i). With one example σ − y is negative
 * exactly when y = 1, whatever the model; with B examples it gives Σ y_i = Σ σ(z_i) − B · dL/db_out, where
 * the attacker estimates Σ σ(z_i) from the model's mean score on flows like the victim's.
 */

/** One candidate flow per first-layer neuron whose bias gradient is not (numerically) zero. */
export function firstLayerCandidates(spec: ModelSpec, update: Float32Array, relFloor = 1e-6): Float32Array[] {
  const s = layerSlots(spec)[0];
  if (s === undefined) throw new FedmetaError(ErrorCode.CONFIG, 'the model has no dense layer');
  let largest = 0;
  for (let j = 0; j < s.outDim; j++) largest = Math.max(largest, Math.abs(update[s.biasOffset + j]!));
  const out: Float32Array[] = [];
  if (largest === 0) return out;
  for (let j = 0; j < s.outDim; j++) {
    const gb = update[s.biasOffset + j]!;
    if (Math.abs(gb) <= relFloor * largest) continue;
    const x = new Float32Array(s.inDim);
    for (let i = 0; i < s.inDim; i++) x[i] = update[s.kernelOffset + i * s.outDim + j]! / gb;
    out.push(x);
  }
  return out;
}

/** The output bias gradient of a binary model (the last value of the flat layout). */
export function outputBiasGradient(spec: ModelSpec, update: Float32Array): number {
  if (spec.task.kind !== 'binary') throw new FedmetaError(ErrorCode.CONFIG, 'label recovery here reads a binary model with one output logit');
  const slots = layerSlots(spec);
  return update[slots[slots.length - 1]!.biasOffset]!;
}

/** The label of a single example from its update: attack (1) exactly when dL/db_out < 0. */
export function labelOfSingle(spec: ModelSpec, update: Float32Array): 0 | 1 {
  return outputBiasGradient(spec, update) < 0 ? 1 : 0;
}

/**
 * How many of B examples are attacks, from the mean update of a batch of B and the attacker's estimate of the
 * model's mean score on them; clamped to 0..B. For B = 1 it reads the sign, which is exact.
 */
export function countPositives(spec: ModelSpec, update: Float32Array, B: number, meanScore: number): number {
  if (B === 1) return labelOfSingle(spec, update);
  const est = Math.round(B * meanScore - B * outputBiasGradient(spec, update));
  return Math.min(B, Math.max(0, est));
}

/** Share of labels recovered as a multiset: 1 − |estimated − true positives| / B. */
export function labelRecovery(estimated: number, truth: number, B: number): number {
  return 1 - Math.abs(estimated - truth) / B;
}
