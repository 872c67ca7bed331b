import { ErrorCode, FedmetaError } from '../errors.js';
import { checkBatch, uploadBatch } from '../model/batch.js';
import { disposeLayers, uploadLayers } from '../model/forward.js';
import type { DenseTensors } from '../model/forward.js';
import { hasMetaSgd, layerCount, modelParamCount, validateSpec } from '../model/params.js';
import type { ModelSpec } from '../model/spec.js';
import { MlpTrainer } from '../model/trainer.js';
import { requireRuntime } from '../runtime/backend.js';
import type { Batch, InnerLoopConfig } from './types.js';

/** An inner-loop configuration checked against a spec and a parameter vector. */
export interface ResolvedInner {
  steps: number;
  lr: number;
  /** Index of the first adapted layer (0 unless ANIL). */
  first: number;
  metaSgd: boolean;
  /** Length of the model's own part of the vector. */
  modelSize: number;
}

export function resolveInner(spec: ModelSpec, params: Float32Array, inner: InnerLoopConfig): ResolvedInner {
  validateSpec(spec);
  const { steps, lr } = inner;
  if (!Number.isInteger(steps) || steps < 0) throw new FedmetaError(ErrorCode.CONFIG, 'inner steps must be a non-negative integer');
  if (!Number.isFinite(lr)) throw new FedmetaError(ErrorCode.CONFIG, 'the inner learning rate must be a finite number');
  const L = layerCount(spec);
  const adaptLast = inner.adaptLast ?? L;
  if (!Number.isInteger(adaptLast) || adaptLast < 1 || adaptLast > L) {
    throw new FedmetaError(ErrorCode.CONFIG, `adaptLast must be an integer from 1 to ${L} (the number of dense layers)`);
  }
  const detected = hasMetaSgd(spec, params);
  if (inner.metaSgd !== undefined && inner.metaSgd !== detected) {
    const n = modelParamCount(spec);
    throw new FedmetaError(
      ErrorCode.WRONG_LENGTH,
      `parameter vector has ${params.length} values; with metaSgd ${inner.metaSgd ? 'on' : 'off'} it must have ${inner.metaSgd ? 2 * n : n}`,
    );
  }
  return { steps, lr, first: L - adaptLast, metaSgd: detected, modelSize: modelParamCount(spec) };
}

/** Step sizes of a Meta-SGD vector as layer tensors (caller disposes), or undefined without Meta-SGD. */
export function uploadStepSizes(spec: ModelSpec, params: Float32Array, r: ResolvedInner): DenseTensors[] | undefined {
  return r.metaSgd ? uploadLayers(spec, params.subarray(r.modelSize)) : undefined;
}

/**
 * k steps of SGD on the support batch; returns the adapted parameter vector (same layout as `params`; Meta-SGD
 * step sizes are carried over unchanged).
 */
export function adapt(spec: ModelSpec, params: Float32Array, support: Batch, inner: InnerLoopConfig): Float32Array {
  requireRuntime();
  const r = resolveInner(spec, params, inner);
  checkBatch(spec, support, 'support batch');
  const out = new Float32Array(params);
  if (r.steps === 0) return out;
  const trainer = new MlpTrainer(spec, params.subarray(0, r.modelSize));
  const s = uploadBatch(spec, support);
  const sizes = uploadStepSizes(spec, params, r);
  try {
    const opts = { adaptLast: trainer.current().length - r.first, ...(sizes ? { stepSizes: sizes } : {}) };
    for (let k = 0; k < r.steps; k++) trainer.step(s, r.lr, opts);
    trainer.read(out.subarray(0, r.modelSize));
  } finally {
    trainer.dispose();
    s.dispose();
    if (sizes) disposeLayers(sizes);
  }
  return out;
}
