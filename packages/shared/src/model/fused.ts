import { ColSum, Epilogue, nativeKernels } from '../runtime/native.js';
import type { NativeKernels } from '../runtime/native.js';
import type { Tensor, Tensor1D, Tensor2D } from '../runtime/tf.js';
import type { Gradients } from './backprop.js';
import type { BatchTensors } from './batch.js';
import type { DenseTensors } from './forward.js';
import { layerWidths } from './spec.js';
import type { ModelSpec } from './spec.js';

/**
 * The MLP's training step and forward pass on the project's compiled kernels (runtime/native.ts), for the
 * wasm backend. Per dense layer a step runs three products and one column sum, each with its elementwise
 * work folded in:
 *   forward       h' = relu(h·W + b)                     (bias and activation in the product's epilogue)
 *   input grad    g' = (g·Wᵀ) masked where h > 0         (the relu derivative in the epilogue)
 *   update        W' = W - hᵀ·g, also written as W'ᵀ     (the SGD step in the epilogue; Wᵀ feeds the next
 *                 b' = b - colsum(g)                       step's input gradient, so nothing is transposed)
 * The output layer's softmax or sigmoid gradient, over a few values per example, is computed in JavaScript
 * on the backend's memory, in double precision. Activations and gradients live in a scratch area, not in
 * tensors: a step makes only the new parameter tensors.
 *
 * Only relu networks take this path; the others keep the tfjs path of backprop.ts.
 */

/** The kernels, when the fused path applies to this model on the active backend; otherwise undefined. */
export function fusedKernels(spec: ModelSpec): NativeKernels | undefined {
  return spec.activation === 'relu' ? nativeKernels() : undefined;
}

/** Byte offsets of one pass's activations in scratch: h[0] is the input, h[L] the logits. */
interface Pass {
  h: number[];
  /** Two gradient buffers, each as wide as the widest hidden layer. */
  g: [number, number];
}

/** Lays out scratch for n rows; the input gets room there too unless it is already on the backend (xAt). */
function plan(k: NativeKernels, widths: readonly number[], n: number, xAt: number | undefined, backward: boolean): Pass {
  const L = widths.length - 1;
  const first = xAt === undefined ? 0 : 1;
  let floats = 0;
  for (let l = first; l <= L; l++) floats += n * widths[l]!;
  const gFloats = backward ? n * Math.max(1, ...widths.slice(1, L)) : 0;
  let at = k.scratch(4 * (floats + 2 * gFloats));
  const h: number[] = xAt === undefined ? [] : [xAt];
  for (let l = first; l <= L; l++) {
    h.push(at);
    at += 4 * n * widths[l]!;
  }
  return { h, g: [at, at + 4 * gFloats] };
}

function forward(k: NativeKernels, widths: readonly number[], layers: readonly DenseTensors[], pass: Pass, n: number): void {
  const L = layers.length;
  for (let l = 0; l < L; l++) {
    const { kernel, bias } = layers[l]!;
    const mode = l < L - 1 ? Epilogue.biasRelu : Epilogue.bias;
    k.gemm(pass.h[l]!, widths[l]!, 1, k.offset(kernel), pass.h[l + 1]!, n, widths[l + 1]!, widths[l]!, mode, k.offset(bias), 0, 0, 0);
  }
}

/** Per-row exponentials of the softmax (grown to the widest output seen). */
let exps = new Float64Array(16);

/**
 * Turns the logits at zAt into the output gradient scale * (p - target) in place, p the sigmoid (binary)
 * or softmax (multiclass); returns the mean loss when asked (softplus(z) - yz, or logSumExp(z) - y·z).
 */
function outputGradient(heap: Float32Array, spec: ModelSpec, zAt: number, tAt: number, n: number, scale: number, withLoss: boolean): number | undefined {
  const z0 = zAt >>> 2;
  const t0 = tAt >>> 2;
  let loss = 0;
  if (spec.task.kind === 'binary') {
    for (let i = 0; i < n; i++) {
      const z = heap[z0 + i]!;
      const y = heap[t0 + i]!;
      if (withLoss) loss += (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z))) - y * z;
      heap[z0 + i] = (1 / (1 + Math.exp(-z)) - y) * scale;
    }
    return withLoss ? loss / n : undefined;
  }
  const C = spec.task.classes;
  for (let i = 0; i < n; i++) {
    const row = z0 + i * C;
    const trow = t0 + i * C;
    let m = -Infinity;
    for (let j = 0; j < C; j++) m = Math.max(m, heap[row + j]!);
    let sum = 0;
    let yz = 0;
    const e = exps.length >= C ? exps : (exps = new Float64Array(C));
    for (let j = 0; j < C; j++) {
      const z = heap[row + j]!;
      yz += heap[trow + j]! * z;
      e[j] = Math.exp(z - m);
      sum += e[j]!;
    }
    if (withLoss) loss += m + Math.log(sum) - yz;
    for (let j = 0; j < C; j++) heap[row + j] = (e[j]! / sum - heap[trow + j]!) * scale;
  }
  return withLoss ? loss / n : undefined;
}


export interface FusedStepInput {
  layers: readonly DenseTensors[];
  /** Layer l's kernel transposed ([out, in]), asked for l > first only. */
  kernelT: (l: number) => Tensor2D;
  batch: BatchTensors;
  /** Multiplies the mean-loss gradient: lr / n for plain SGD, 1 / n with step sizes. */
  scale: number;
  /** First layer updated (ANIL); the layers before it keep their tensors. */
  first: number;
  withLoss: boolean;
  /** Meta-SGD step sizes in the layers' own shapes; replaces the scalar step (fold none into scale). */
  sizes?: readonly DenseTensors[] | undefined;
}

export interface FusedStepResult {
  layers: DenseTensors[];
  /** New transposed kernels, for the layers above `first` (their next step's input gradient). */
  kernelT: Array<Tensor2D | undefined>;
  loss: number | undefined;
}

/** Forward pass, output gradient and backward pass; `visit(l, g, h)` consumes each layer's gradient. */
function backprop(
  k: NativeKernels,
  spec: ModelSpec,
  layers: readonly DenseTensors[],
  kernelT: (l: number) => Tensor2D,
  batch: BatchTensors,
  scale: number,
  first: number,
  withLoss: boolean,
  visit: (l: number, gAt: number, hAt: number) => void,
): number | undefined {
  const widths = layerWidths(spec);
  const L = layers.length;
  const n = batch.n;
  const pass = plan(k, widths, n, k.offset(batch.x), true);
  forward(k, widths, layers, pass, n);
  const loss = outputGradient(k.heap(), spec, pass.h[L]!, k.offset(batch.target), n, scale, withLoss);
  let g = pass.h[L]!;
  for (let l = L - 1; l >= first; l--) {
    let next = g;
    if (l > first) {
      next = g === pass.g[0] ? pass.g[1] : pass.g[0];
      k.gemm(g, widths[l + 1]!, 1, k.offset(kernelT(l)), next, n, widths[l]!, widths[l + 1]!, Epilogue.reluMask, 0, pass.h[l]!, 0, 0);
    }
    visit(l, g, pass.h[l]!);
    g = next;
  }
  k.releaseScratch();
  return loss;
}

/** Runs fn; if it throws, disposes the tensors it made so far (a failed step leaks nothing). */
function guarded<T>(made: Tensor[], fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    for (const t of made) t.dispose();
    throw e;
  }
}

/** One SGD step (or Meta-SGD step) on the batch; returns new tensors for the updated layers. */
export function fusedStep(k: NativeKernels, spec: ModelSpec, input: FusedStepInput): FusedStepResult {
  const { layers, batch, first, sizes } = input;
  const widths = layerWidths(spec);
  const n = batch.n;
  const next: DenseTensors[] = layers.map((l) => ({ kernel: l.kernel, bias: l.bias }));
  const kernelT: Array<Tensor2D | undefined> = layers.map(() => undefined);
  const made: Tensor[] = [];
  const loss = guarded(made, () => backprop(k, spec, layers, input.kernelT, batch, input.scale, first, input.withLoss, (l, gAt, hAt) => {
    const inW = widths[l]!;
    const outW = widths[l + 1]!;
    const { kernel, bias } = layers[l]!;
    const size = sizes?.[l];
    const w = k.output<Tensor2D>([inW, outW]);
    const b = k.output<Tensor1D>([outW]);
    made.push(w.tensor, b.tensor);
    let mode: number = size ? Epilogue.subMul : Epilogue.sub;
    let tAt = 0;
    if (l > first) {
      const t = k.output<Tensor2D>([outW, inW]);
      made.push(t.tensor);
      kernelT[l] = t.tensor;
      tAt = t.at;
      mode |= Epilogue.transposed;
    }
    k.gemm(hAt, 1, inW, gAt, w.at, inW, outW, n, mode, 0, k.offset(kernel), size ? k.offset(size.kernel) : 0, tAt);
    k.colsum(gAt, n, outW, size ? ColSum.subMul : ColSum.sub, k.offset(bias), size ? k.offset(size.bias) : 0, b.at);
    next[l] = { kernel: w.tensor, bias: b.tensor };
  }));
  return { layers: next, kernelT, loss };
}

/** Mean-loss gradients times `scale` for layers first..L-1 (earlier entries undefined); caller disposes. */
export function fusedGradients(
  k: NativeKernels,
  spec: ModelSpec,
  layers: readonly DenseTensors[],
  kernelT: (l: number) => Tensor2D,
  batch: BatchTensors,
  scale: number,
  first: number,
  withLoss: boolean,
): { grads: Array<Gradients | undefined>; loss: number | undefined } {
  const widths = layerWidths(spec);
  const n = batch.n;
  const grads: Array<Gradients | undefined> = layers.map(() => undefined);
  const made: Tensor[] = [];
  const loss = guarded(made, () => backprop(k, spec, layers, kernelT, batch, scale, first, withLoss, (l, gAt, hAt) => {
    const inW = widths[l]!;
    const outW = widths[l + 1]!;
    const w = k.output<Tensor2D>([inW, outW]);
    const b = k.output<Tensor1D>([outW]);
    made.push(w.tensor, b.tensor);
    k.gemm(hAt, 1, inW, gAt, w.at, inW, outW, n, Epilogue.store, 0, 0, 0, 0);
    k.colsum(gAt, n, outW, ColSum.sum, 0, 0, b.at);
    grads[l] = { kernel: w.tensor, bias: b.tensor };
  }));
  return { grads, loss };
}

/** Mean loss on a batch (forward pass only). */
export function fusedLoss(k: NativeKernels, spec: ModelSpec, layers: readonly DenseTensors[], batch: BatchTensors): number {
  const widths = layerWidths(spec);
  const L = layers.length;
  const pass = plan(k, widths, batch.n, k.offset(batch.x), false);
  forward(k, widths, layers, pass, batch.n);
  const loss = outputGradient(k.heap(), spec, pass.h[L]!, k.offset(batch.target), batch.n, 0, true)!;
  k.releaseScratch();
  return loss;
}

/**
 * Scores n rows of x into out (from index outAt): attack probabilities (binary) or softmax rows. The rows
 * are copied into scratch, not into a tensor; nothing is allocated on the tfjs side.
 */
export function fusedPredict(k: NativeKernels, spec: ModelSpec, layers: readonly DenseTensors[], x: Float32Array, n: number, out: Float32Array, outAt: number): void {
  const widths = layerWidths(spec);
  const L = layers.length;
  const pass = plan(k, widths, n, undefined, false);
  k.heap().set(x, pass.h[0]! >>> 2);
  forward(k, widths, layers, pass, n);
  const heap = k.heap();
  const z0 = pass.h[L]! >>> 2;
  if (spec.task.kind === 'binary') {
    for (let i = 0; i < n; i++) out[outAt + i] = 1 / (1 + Math.exp(-heap[z0 + i]!));
  } else {
    const C = spec.task.classes;
    for (let i = 0; i < n; i++) {
      const row = z0 + i * C;
      let m = -Infinity;
      for (let j = 0; j < C; j++) m = Math.max(m, heap[row + j]!);
      let sum = 0;
      for (let j = 0; j < C; j++) sum += Math.exp(heap[row + j]! - m);
      for (let j = 0; j < C; j++) out[outAt + i * C + j] = Math.exp(heap[row + j]! - m) / sum;
    }
  }
  k.releaseScratch();
}
