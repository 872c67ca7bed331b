import { ErrorCode, FedmetaError } from '../errors.js';
import { batchTensors, checkBatch, targetValues } from '../model/batch.js';
import type { BatchTensors } from '../model/batch.js';
import { modelParamCount, validateSpec } from '../model/params.js';
import { outputDim } from '../model/spec.js';
import type { ModelSpec } from '../model/spec.js';
import { MlpTrainer } from '../model/trainer.js';
import { requireRuntime } from '../runtime/backend.js';
import type { Batch, MetaResult } from './types.js';

export interface LocalTrainConfig {
  /** Number of SGD steps (minibatches). */
  steps: number;
  lr: number;
  /** Minibatch size; default the whole batch. */
  batchSize?: number;
  /** Seed of the minibatch order; default 0. */
  seed?: number;
}

/** xorshift32: a tiny deterministic shuffle source (the order only needs to be reproducible). */
function shuffler(seed: number): (n: number) => number {
  let s = (seed ^ 0x2545f491) >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

/**
 * Plain local SGD for FedAvg-style baselines: `steps` minibatch steps over the batch (a fresh seeded
 * permutation each pass). update = params - trained, the same sign convention as the meta-gradients.
 * Metrics: supportLoss is the loss on the batch before training, queryLoss the loss on it after.
 * Meta-SGD step sizes, if the vector carries them, are not trained (their update is zero).
 */
export function localTrain(spec: ModelSpec, params: Float32Array, batch: Batch, cfg: LocalTrainConfig): MetaResult {
  requireRuntime();
  validateSpec(spec);
  checkBatch(spec, batch, 'training batch');
  const { steps, lr } = cfg;
  if (!Number.isInteger(steps) || steps < 0) throw new FedmetaError(ErrorCode.CONFIG, 'local steps must be a non-negative integer');
  if (!Number.isFinite(lr)) throw new FedmetaError(ErrorCode.CONFIG, 'the local learning rate must be a finite number');
  const bs = cfg.batchSize ?? batch.n;
  if (!Number.isInteger(bs) || bs < 1) throw new FedmetaError(ErrorCode.CONFIG, 'batchSize must be a positive integer');
  const modelSize = modelParamCount(spec);
  if (params.length !== modelSize && params.length !== 2 * modelSize) {
    throw new FedmetaError(ErrorCode.WRONG_LENGTH, `parameter vector has ${params.length} values but the model has ${modelSize}`);
  }
  const size = Math.min(bs, batch.n);
  const trainer = new MlpTrainer(spec, params.subarray(0, modelSize));
  const whole = uploadRows(spec, batch, null);
  try {
    const supportLoss = trainer.loss(whole);
    if (size === batch.n) {
      for (let k = 0; k < steps; k++) trainer.step(whole, lr);
    } else {
      const next = shuffler(cfg.seed ?? 0);
      const order = Int32Array.from({ length: batch.n }, (_, i) => i);
      let at = batch.n; // forces a shuffle before the first minibatch
      for (let k = 0; k < steps; k++) {
        if (at + size > batch.n) {
          for (let i = batch.n - 1; i > 0; i--) {
            const j = next(i + 1);
            const t = order[i]!;
            order[i] = order[j]!;
            order[j] = t;
          }
          at = 0;
        }
        const mb = uploadRows(spec, batch, order.subarray(at, at + size));
        at += size;
        try {
          trainer.step(mb, lr);
        } finally {
          mb.dispose();
        }
      }
    }
    const queryLoss = trainer.loss(whole);
    const trained = trainer.read();
    const update = new Float32Array(params.length);
    for (let i = 0; i < modelSize; i++) update[i] = params[i]! - trained[i]!;
    return { update, metrics: { supportLoss, queryLoss, examples: batch.n } };
  } finally {
    trainer.dispose();
    whole.dispose();
  }
}

/** Uploads the given rows of a batch (all rows when `rows` is null), gathering them on the JS side. */
function uploadRows(spec: ModelSpec, batch: Batch, rows: Int32Array | null): BatchTensors {
  const { dim } = batch;
  let x = batch.x;
  let y = batch.y;
  if (rows !== null) {
    x = new Float32Array(rows.length * dim);
    y = new Int32Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      x.set(batch.x.subarray(r * dim, (r + 1) * dim), i * dim);
      y[i] = batch.y[r]!;
    }
  }
  return batchTensors(x, targetValues(spec, y, y.length), y.length, dim, outputDim(spec));
}
