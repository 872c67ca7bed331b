import { tf } from './tf.js';
import type { Tensor, Tensor2D } from './tf.js';
import { assemble, f32Zero, forLoop, get, i32, minU, op, set, uleb } from './wasm-asm.js';
import type { FunctionDef } from './wasm-asm.js';

/**
 * Two kernels of the project's own for the wasm backend, registered under names of their own (nothing of
 * tfjs is replaced), each a few dozen bytes of WebAssembly running on the backend's memory:
 *
 * - `FedmetaTranspose2D`: the backend's Transpose walks the input row by row and scatters into the output
 *   with a stride of the row count; at 512 rows every write lands on another cache line and the L1 cache
 *   thrashes (about 9 ns per element, as long as the matMul it feeds). This one moves 16x16 tiles, which
 *   stay in L1 (about 1 ns per element). The training step transposes activations and gradients every step.
 * - `FedmetaReluGrad`: dy where y > 0, else 0, in one SIMD pass, where tfjs needs step() then mul().
 */
export const TRANSPOSE_2D = 'FedmetaTranspose2D';
export const RELU_GRAD = 'FedmetaReluGrad';

const TILE = 16;

/** transpose(src, dst, rows, cols): byte offsets of float32 [rows, cols] and [cols, rows]. */
function transposeFn(): FunctionDef {
  const [src, dst, rows, cols, i0, j0, i, j, imax, jmax, sp, dp, dstRow] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const inner = forLoop(j, get(j0), get(jmax), i32(1), [
    ...get(dp), ...get(sp), ...op.f32Load, ...op.f32Store,
    ...get(sp), ...i32(4), op.i32Add, ...set(sp),
    ...get(dp), ...get(dstRow), op.i32Add, ...set(dp),
  ]);
  const rowsOfTile = forLoop(i, get(i0), get(imax), i32(1), [
    // sp = src + (i * cols + j0) * 4; dp = dst + (j0 * rows + i) * 4
    ...get(src), ...get(i), ...get(cols), op.i32Mul, ...get(j0), op.i32Add, ...i32(4), op.i32Mul, op.i32Add, ...set(sp),
    ...get(dst), ...get(j0), ...get(rows), op.i32Mul, ...get(i), op.i32Add, ...i32(4), op.i32Mul, op.i32Add, ...set(dp),
    ...inner,
  ]);
  const tilesOfRow = forLoop(j0, i32(0), get(cols), i32(TILE), [
    ...minU([...get(j0), ...i32(TILE), op.i32Add], get(cols)), ...set(jmax),
    ...rowsOfTile,
  ]);
  const body = [
    ...get(rows), ...i32(4), op.i32Mul, ...set(dstRow),
    ...forLoop(i0, i32(0), get(rows), i32(TILE), [...minU([...get(i0), ...i32(TILE), op.i32Add], get(rows)), ...set(imax), ...tilesOfRow]),
  ];
  return { name: 'transpose', params: 4, locals: 9, body };
}

/** reluGrad(dy, y, out, n): byte offsets of n float32 each; out = y > 0 ? dy : 0. */
function reluGradFn(): FunctionDef {
  const [dy, y, out, n, at, vecEnd, end] = [0, 1, 2, 3, 4, 5, 6];
  const addr = (base: number): number[] => [...get(base), ...get(at), op.i32Add];
  const vector = forLoop(at, i32(0), get(vecEnd), i32(16), [
    ...addr(out),
    ...addr(dy), ...op.v128Load,
    ...addr(y), ...op.v128Load, ...op.v128Zero, ...op.f32x4Gt,
    ...op.v128And,
    ...op.v128Store,
  ]);
  const tail = forLoop(at, get(vecEnd), get(end), i32(4), [
    ...addr(out),
    ...addr(dy), ...op.f32Load, ...f32Zero(),
    ...addr(y), ...op.f32Load, ...f32Zero(), op.f32Gt,
    op.select,
    ...op.f32Store,
  ]);
  const body = [
    ...get(n), ...i32(4), op.i32Mul, ...set(end),
    ...get(n), ...i32(-4), op.i32And, ...i32(4), op.i32Mul, ...set(vecEnd),
    ...vector,
    ...tail,
  ];
  return { name: 'reluGrad', params: 4, locals: 3, body };
}

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
  wasm: { asm?: { memory?: WasmMemory }; wasmMemory?: WasmMemory };
  makeOutput(shape: number[], dtype: string): tf.TensorInfo;
  getMemoryOffset(dataId: object): number;
}

type Fn4 = (a: number, b: number, c: number, d: number) => void;
let kernels: { transpose: Fn4; reluGrad: Fn4 } | undefined;

function instantiate(memory: WasmMemory): { transpose: Fn4; reluGrad: Fn4 } {
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  // A shared memory can only be imported with a maximum; 65536 pages (4 GiB) admits any actual maximum.
  const limits = shared ? [0x03, ...uleb(0), ...uleb(65536)] : [0x00, ...uleb(0)];
  const mod = new WA.Module(assemble(limits, [transposeFn(), reluGradFn()]));
  const { exports } = new WA.Instance(mod, { env: { memory } });
  return { transpose: exports['transpose'] as Fn4, reluGrad: exports['reluGrad'] as Fn4 };
}

/**
 * Registers the kernels for the wasm backend (call once it is active). Returns false, registering nothing,
 * when the backend's memory cannot be reached or the engine has no WebAssembly SIMD; callers then use
 * tfjs's own ops.
 */
export function registerWasmKernels(): boolean {
  if (kernels !== undefined) return true;
  const backend = tf.findBackend('wasm') as unknown as WasmBackendLike | null;
  const memory = backend?.wasm.asm?.memory ?? backend?.wasm.wasmMemory;
  if (!backend || !(memory instanceof WA.Memory)) return false;
  try {
    kernels = instantiate(memory);
  } catch {
    return false;
  }
  const k = kernels;
  tf.registerKernel({
    kernelName: TRANSPOSE_2D,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend: b }) => {
      const wb = b as unknown as WasmBackendLike;
      const x = inputs['x'] as tf.TensorInfo;
      const [rows, cols] = x.shape as [number, number];
      const out = wb.makeOutput([cols, rows], 'float32');
      if (rows * cols > 0) k.transpose(wb.getMemoryOffset(x.dataId), wb.getMemoryOffset(out.dataId), rows, cols);
      return out;
    },
  });
  // Its gradient is itself, so that autodiff through it (full MAML) stays fast too.
  tf.registerGradient({ kernelName: TRANSPOSE_2D, gradFunc: (dy) => ({ x: () => transpose2d(dy as Tensor2D) }) });
  tf.registerKernel({
    kernelName: RELU_GRAD,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend: b }) => {
      const wb = b as unknown as WasmBackendLike;
      const dy = inputs['dy'] as tf.TensorInfo;
      const y = inputs['y'] as tf.TensorInfo;
      const out = wb.makeOutput(dy.shape, 'float32');
      const n = dy.shape.reduce((a, d) => a * d, 1);
      if (n > 0) k.reluGrad(wb.getMemoryOffset(dy.dataId), wb.getMemoryOffset(y.dataId), wb.getMemoryOffset(out.dataId), n);
      return out;
    },
  });
  return true;
}

const useWasm = (t: Tensor): boolean => kernels !== undefined && t.dtype === 'float32' && tf.getBackend() === 'wasm';

/** Transpose of a float32 matrix: the tiled kernel on wasm, the backend's own transpose elsewhere. */
export function transpose2d(x: Tensor2D): Tensor2D {
  return useWasm(x) ? (tf.engine().runKernel(TRANSPOSE_2D, { x }) as Tensor2D) : tf.transpose(x);
}

/** dy where y > 0, else 0 (the relu derivative applied from the relu's output y); not differentiable. */
export function reluGrad<T extends Tensor>(dy: T, y: T): T {
  if (useWasm(dy) && y.dtype === 'float32') return tf.engine().runKernel(RELU_GRAD, { dy, y }) as T;
  return tf.mul(dy, tf.step(y)) as T;
}
