import { ErrorCode, FedmetaError } from '../errors.js';
import { onBackendChange, requireRuntime } from '../runtime/backend.js';
import { tf } from '../runtime/tf.js';
import type { Tensor2D } from '../runtime/tf.js';
import { disposeLayers, uploadLayers } from './forward.js';
import type { DenseTensors } from './forward.js';
import { modelParamCount, validateSpec } from './params.js';
import { outputDim } from './spec.js';
import type { ModelSpec } from './spec.js';
import { fastTanh } from './backprop.js';
import { fusedKernels, fusedPredict } from './fused.js';

/** Rows scored per kernel launch: large enough to amortise per-op cost, small enough to bound memory. */
export const PREDICT_CHUNK = 4096;

/**
 * A detector with its parameters held on the backend (uploaded once), for scoring many batches. On wasm a
 * relu network scores on the project's compiled kernels (fused.ts: rows go straight into scratch, nothing
 * is packed or allocated per call); elsewhere tfjs keeps its packed copy of each weight matrix while the
 * tensors live, so repeated scoring does no weight work either. Call dispose() when done.
 */
export class Detector {
  readonly spec: ModelSpec;
  private layers: DenseTensors[] | undefined;

  constructor(spec: ModelSpec, params: Float32Array) {
    requireRuntime();
    validateSpec(spec);
    const n = modelParamCount(spec);
    if (params.length !== n && params.length !== 2 * n) {
      throw new FedmetaError(ErrorCode.WRONG_LENGTH, `parameter vector has ${params.length} values but the model has ${n}`);
    }
    this.spec = spec;
    this.layers = uploadLayers(spec, params.subarray(0, n));
  }

  /**
   * Scores n rows of x (row-major, n * inputDim): for a binary task the attack probability per row (n
   * values); for a multiclass task a softmax row per example (n * classes values).
   */
  predict(x: Float32Array, n: number): Float32Array {
    const layers = this.layers;
    if (layers === undefined) throw new FedmetaError(ErrorCode.PRECONDITION, 'this detector was disposed; create a new one');
    const dim = this.spec.inputDim;
    if (!Number.isInteger(n) || n < 0 || x.length !== n * dim) {
      throw new FedmetaError(ErrorCode.SHAPE, `expected ${n} rows of ${dim} features (${n * dim} values), got ${x.length} values`);
    }
    const c = outputDim(this.spec);
    const out = new Float32Array(n * c);
    const k = fusedKernels(this.spec);
    if (k !== undefined) {
      for (let start = 0; start < n; start += PREDICT_CHUNK) {
        const rows = Math.min(PREDICT_CHUNK, n - start);
        fusedPredict(k, this.spec, layers, x.subarray(start * dim, (start + rows) * dim), rows, out, start * c);
      }
      return out;
    }
    for (let start = 0; start < n; start += PREDICT_CHUNK) {
      const rows = Math.min(PREDICT_CHUNK, n - start);
      const probs = tf.tidy(() => {
        const xs = tf.tensor2d(x.subarray(start * dim, (start + rows) * dim), [rows, dim]);
        const z = forwardFused(this.spec, layers, xs);
        return this.spec.task.kind === 'binary' ? tf.sigmoid(z) : tf.softmax(z);
      });
      // Read outside the tidy: a typed array returned through tidy gets walked element by element.
      out.set(probs.dataSync() as Float32Array, start * c);
      probs.dispose();
    }
    return out;
  }

  dispose(): void {
    if (this.layers) disposeLayers(this.layers);
    this.layers = undefined;
  }
}

/** Inference forward pass with fused matMul + bias + activation where the backend can fuse them. */
function forwardFused(spec: ModelSpec, layers: readonly DenseTensors[], x: Tensor2D): Tensor2D {
  const act = spec.activation;
  let h = x;
  layers.forEach((l, i) => {
    const last = i === layers.length - 1;
    if (last) h = tf.fused.matMul({ a: h, b: l.kernel, bias: l.bias }) as Tensor2D;
    else if (act === 'relu' || act === 'sigmoid' || act === 'elu') {
      h = tf.fused.matMul({ a: h, b: l.kernel, bias: l.bias, activation: act }) as Tensor2D;
    } else {
      const z = tf.fused.matMul({ a: h, b: l.kernel, bias: l.bias }) as Tensor2D;
      h = act === 'tanh' ? fastTanh(z) : (tf.softplus(z) as Tensor2D);
    }
  });
  return h;
}

/** FNV-1a over the raw bits: a cheap content key, so a caller that edits its vector in place is not served stale. */
function fingerprint(values: Float32Array): number {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  let h = 0x811c9dc5;
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i]!, 0x01000193);
  return h >>> 0;
}

interface CacheEntry {
  key: string;
  values: Float32Array;
  detector: Detector;
}

/** The last few detectors used by predictScores, most recent first. */
const CACHE_SIZE = 2;
const cache: CacheEntry[] = [];

onBackendChange(() => clearPredictCache());

/** Disposes the detectors predictScores keeps (for leak checks and before switching models for good). */
export function clearPredictCache(): void {
  for (const e of cache.splice(0)) e.detector.dispose();
}

/**
 * Scores rows with a detector built from `params`; see Detector.predict for the output layout. Keeps the
 * last two parameter sets on the backend, so calling it again with the same vector uploads nothing but x.
 */
export function predictScores(spec: ModelSpec, params: Float32Array, x: Float32Array, n: number): Float32Array {
  const key = `${JSON.stringify(spec)}#${params.length}#${fingerprint(params)}`;
  let idx = cache.findIndex((e) => e.key === key && e.values.length === params.length);
  if (idx < 0) {
    const detector = new Detector(spec, params);
    cache.unshift({ key, values: params, detector });
    while (cache.length > CACHE_SIZE) cache.pop()!.detector.dispose();
    idx = 0;
  } else if (idx > 0) {
    cache.unshift(cache.splice(idx, 1)[0]!);
  }
  return cache[0]!.detector.predict(x, n);
}
