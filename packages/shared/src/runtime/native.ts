import { ErrorCode, FedmetaError } from '../errors.js';
import { KERNELS_WASM_BASE64 } from './native-module.js';
import { tf } from './tf.js';
import type { Tensor } from './tf.js';

/**
 * The project's compiled kernels (native/kernels.c) on the wasm backend: they run on the backend's own
 * memory, so they read tensors where they lie and write into tensors made for them, with no copies and no
 * tfjs kernel dispatch in between. model/fused.ts builds the MLP's training step and forward pass on them.
 *
 * Everything here is in byte offsets into that memory (what the C code sees as pointers).
 */

/** Epilogue modes of `gemm` (kept equal to the enum in kernels.c). */
export const Epilogue = {
  store: 0,
  bias: 1,
  biasRelu: 2,
  reluMask: 3,
  sub: 4,
  subMul: 5,
  /** Flag: also write the result transposed, [N, M], into `ct`. */
  transposed: 16,
} as const;

/** Modes of `colsum` (kept equal to kernels.c). */
export const ColSum = { sum: 0, sub: 1, subMul: 2 } as const;

export interface NativeKernels {
  /**
   * c[M, N] = epilogue(A·B), B [K, N] row-major, A(i, k) at a + 4 (i rsa + k csa); nothing is done
   * unless M, N and K are positive. aux and aux2 are [M, N]; ct, when the transposed flag is set, [N, M].
   * Pointers of 0 stand for unused operands. c must not overlap any operand.
   */
  gemm(a: number, rsa: number, csa: number, b: number, c: number, M: number, N: number, K: number, mode: number, bias: number, aux: number, aux2: number, ct: number): void;
  /** Column sums of g [n, N] into out (mode sum), or old - sums (sub), or old - s * sums (subMul). */
  colsum(g: number, n: number, N: number, mode: number, old: number, s: number, out: number): void;
  /** A float32 view of the whole memory (made again after the memory grows). */
  heap(): Float32Array;
  /** Where a float32 tensor's values start. */
  offset(t: Tensor): number;
  /** A new float32 tensor (contents undefined until written) and where its values start. */
  output<T extends Tensor>(shape: number[]): { tensor: T; at: number };
  /** A scratch area of at least `bytes` (valid until the next call; see releaseScratch). */
  scratch(bytes: number): number;
  /** Frees the scratch area if it grew past what is worth keeping between calls. */
  releaseScratch(): void;
}

type Gemm = NativeKernels['gemm'];
type Colsum = NativeKernels['colsum'];

/** The slice of the WebAssembly API used here (the project compiles without DOM typings). */
interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}
interface WasmApi {
  Memory: abstract new (...args: never[]) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface WasmBackendLike {
  wasm: {
    asm?: { memory?: WasmMemory };
    wasmMemory?: WasmMemory;
    _malloc(bytes: number): number;
    _free(at: number): void;
  };
  makeOutput(shape: number[], dtype: string): tf.TensorInfo;
  getMemoryOffset(dataId: object): number;
  dataIdMap: { has(dataId: object): boolean };
}

interface EngineLike {
  makeTensorFromTensorInfo(info: tf.TensorInfo, backend: unknown): Tensor;
  moveData(backend: unknown, dataId: object): void;
}

/** Scratch kept between calls up to this size; a bigger area (a very large batch) is freed after use. */
const KEEP_SCRATCH_BYTES = 16 << 20;

let loaded: { backend: WasmBackendLike; kernels: NativeKernels } | undefined;

function decode(b64: string): Uint8Array {
  const buf = Buffer.from(b64, 'base64');
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

function build(backend: WasmBackendLike, memory: WasmMemory): NativeKernels {
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  if (shared) throw new Error('shared memory'); // the module imports a plain memory; the caller falls back
  const { exports } = new WA.Instance(new WA.Module(decode(KERNELS_WASM_BASE64)), { env: { memory } });
  const gemm = exports['gemm'] as Gemm;
  const colsum = exports['colsum'] as Colsum;
  if (typeof gemm !== 'function' || typeof colsum !== 'function') throw new Error('kernels missing');
  let view = new Float32Array(memory.buffer as ArrayBuffer);
  let scratchAt = 0;
  let scratchBytes = 0;
  const engine = tf.engine() as unknown as EngineLike;
  return {
    gemm,
    colsum,
    heap: () => {
      if (view.buffer !== memory.buffer) view = new Float32Array(memory.buffer as ArrayBuffer);
      return view;
    },
    offset: (t) => {
      if (t.isDisposed) {
        throw new FedmetaError(ErrorCode.PRECONDITION, 'a tensor was disposed while still in use; keep parameters and batches alive until the trainer or detector is done');
      }
      if (t.dtype !== 'float32') throw new FedmetaError(ErrorCode.SHAPE, 'the compiled kernels take float32 tensors only');
      // A tensor made while another backend was active still lives there: bring it over, as tfjs's own ops do.
      if (!backend.dataIdMap.has(t.dataId)) engine.moveData(backend, t.dataId);
      return backend.getMemoryOffset(t.dataId);
    },
    output: <T extends Tensor>(shape: number[]) => {
      const info = backend.makeOutput(shape, 'float32');
      const tensor = engine.makeTensorFromTensorInfo(info, backend) as T;
      return { tensor, at: backend.getMemoryOffset(info.dataId) };
    },
    scratch: (bytes) => {
      if (bytes > scratchBytes) {
        if (scratchBytes > 0) backend.wasm._free(scratchAt);
        // Room to spare, so that slowly growing batches do not reallocate every time.
        scratchBytes = Math.ceil((bytes * 5) / 4 / 64) * 64;
        scratchAt = backend.wasm._malloc(scratchBytes) >>> 0;
        if (scratchAt === 0) {
          scratchBytes = 0;
          throw new FedmetaError(ErrorCode.PRECONDITION, 'the wasm backend has no memory left for a batch this large; train or score in smaller batches');
        }
      }
      return scratchAt;
    },
    releaseScratch: () => {
      if (scratchBytes > KEEP_SCRATCH_BYTES) {
        backend.wasm._free(scratchAt);
        scratchAt = 0;
        scratchBytes = 0;
      }
    },
  };
}

/**
 * Loads the kernels for the wasm backend (call once it is active). Returns false, loading nothing, when the
 * backend's memory cannot be reached or the engine lacks WebAssembly SIMD; callers then use tfjs's ops.
 */
export function loadNativeKernels(): boolean {
  if (loaded !== undefined) return true;
  const backend = tf.findBackend('wasm') as unknown as WasmBackendLike | null;
  const memory = backend?.wasm.asm?.memory ?? backend?.wasm.wasmMemory;
  if (!backend || !(memory instanceof WA.Memory) || typeof backend.wasm._malloc !== 'function') return false;
  try {
    loaded = { backend, kernels: build(backend, memory) };
  } catch {
    return false;
  }
  return true;
}

/** The kernels, when the wasm backend is the active one and they loaded; otherwise undefined. */
export function nativeKernels(): NativeKernels | undefined {
  if (loaded === undefined) return undefined;
  return tf.engine().backend === (loaded.backend as unknown) ? loaded.kernels : undefined;
}
