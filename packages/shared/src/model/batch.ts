import { ErrorCode, FedmetaError } from '../errors.js';
import type { Batch } from '../meta/types.js';
import { tf } from '../runtime/tf.js';
import type { Tensor2D } from '../runtime/tf.js';
import { transpose2d } from '../runtime/wasm-kernels.js';
import { outputDim } from './spec.js';
import type { ModelSpec } from './spec.js';

/** Refuses a batch whose shape does not fit the model, or whose labels are outside the task's range. */
export function checkBatch(spec: ModelSpec, batch: Batch, what = 'batch'): void {
  const { x, y, n, dim } = batch;
  if (!Number.isInteger(n) || n < 1) throw new FedmetaError(ErrorCode.SHAPE, `the ${what} has no examples`);
  if (dim !== spec.inputDim) {
    throw new FedmetaError(ErrorCode.SHAPE, `the ${what} has ${dim} features but the model expects ${spec.inputDim}; use the federation's feature schema`);
  }
  if (x.length !== n * dim) throw new FedmetaError(ErrorCode.SHAPE, `the ${what} holds ${x.length} feature values, expected ${n} x ${dim}`);
  if (y.length !== n) throw new FedmetaError(ErrorCode.SHAPE, `the ${what} holds ${y.length} labels for ${n} examples`);
  const classes = spec.task.kind === 'binary' ? 2 : spec.task.classes;
  let bad = 0;
  for (let i = 0; i < n; i++) {
    const v = y[i]!;
    if (v < 0 || v >= classes) bad++;
  }
  if (bad > 0) throw new FedmetaError(ErrorCode.SHAPE, `${bad} labels of the ${what} are outside 0..${classes - 1}`);
}

/**
 * Training targets as floats: one-hot rows [n, classes] for a multiclass task, [n, 1] zeros and ones for a
 * binary one. Built on the JS side, where it costs a pass over n labels and no kernels.
 */
export function targetValues(spec: ModelSpec, y: Int32Array, n: number): Float32Array {
  const c = outputDim(spec);
  const t = new Float32Array(n * c);
  if (spec.task.kind === 'binary') {
    for (let i = 0; i < n; i++) t[i] = y[i]! === 1 ? 1 : 0;
  } else {
    for (let i = 0; i < n; i++) t[i * c + y[i]!] = 1;
  }
  return t;
}

/** A batch uploaded once and reused across steps (the inner loop runs k steps on the same support batch). */
export interface BatchTensors {
  n: number;
  /** Features [n, inputDim]. */
  x: Tensor2D;
  /** Targets as built by `targetValues`. */
  target: Tensor2D;
  /** Features transposed [inputDim, n], made on first use and kept with the batch. */
  xT(): Tensor2D;
  dispose(): void;
}

/** Uploads features and targets already laid out as tfjs wants them. */
export function batchTensors(x: Float32Array, target: Float32Array, n: number, dim: number, outputs: number): BatchTensors {
  const xt = tf.tensor2d(x, [n, dim]);
  const tt = tf.tensor2d(target, [n, outputs]);
  let transposed: Tensor2D | undefined;
  return {
    n,
    x: xt,
    target: tt,
    xT: () => (transposed ??= tf.keep(transpose2d(xt))),
    dispose: () => {
      xt.dispose();
      tt.dispose();
      transposed?.dispose();
    },
  };
}

export function uploadBatch(spec: ModelSpec, batch: Batch): BatchTensors {
  return batchTensors(batch.x, targetValues(spec, batch.y, batch.n), batch.n, batch.dim, outputDim(spec));
}

/** Rows [start, start + count) of a batch, as views (no copy). */
export function sliceBatch(batch: Batch, start: number, count: number): Batch {
  const end = Math.min(batch.n, start + count);
  return {
    x: batch.x.subarray(start * batch.dim, end * batch.dim),
    y: batch.y.subarray(start, end),
    n: end - start,
    dim: batch.dim,
  };
}
