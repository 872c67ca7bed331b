/**
 * A float64 reference implementation of the MLP, its loss, its gradient and the inner SGD loop, in plain
 * JavaScript with no tfjs. Tests difference *this* to get finite-difference meta-gradients, and compare the
 * tfjs float32 results against it. Kept deliberately naive: loops over arrays, nothing clever.
 */
import type { ModelSpec } from '@fedmeta/shared';
import { layerSlots } from '@fedmeta/shared';

export interface Batch64 {
  x: Float64Array;
  y: Int32Array;
  n: number;
  dim: number;
}

function act(a: ModelSpec['activation'], z: number): number {
  switch (a) {
    case 'relu':
      return z > 0 ? z : 0;
    case 'tanh':
      return Math.tanh(z);
    case 'sigmoid':
      return 1 / (1 + Math.exp(-z));
    case 'elu':
      return z > 0 ? z : Math.exp(z) - 1;
    case 'softplus':
      return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
  }
}

function actGrad(a: ModelSpec['activation'], z: number): number {
  switch (a) {
    case 'relu':
      return z > 0 ? 1 : 0;
    case 'tanh': {
      const t = Math.tanh(z);
      return 1 - t * t;
    }
    case 'sigmoid': {
      const s = 1 / (1 + Math.exp(-z));
      return s * (1 - s);
    }
    case 'elu':
      return z > 0 ? 1 : Math.exp(z);
    case 'softplus':
      return 1 / (1 + Math.exp(-z));
  }
}

function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

interface Trace {
  zs: Float64Array[]; // pre-activations per layer, n * width
  hs: Float64Array[]; // inputs to each layer (hs[0] = x)
}

function forward(spec: ModelSpec, p: Float64Array, b: Batch64): Trace {
  const slots = layerSlots(spec);
  const zs: Float64Array[] = [];
  const hs: Float64Array[] = [b.x];
  let h = b.x;
  slots.forEach((s, l) => {
    const z = new Float64Array(b.n * s.outDim);
    for (let i = 0; i < b.n; i++) {
      for (let o = 0; o < s.outDim; o++) {
        let v = p[s.biasOffset + o]!;
        for (let k = 0; k < s.inDim; k++) v += h[i * s.inDim + k]! * p[s.kernelOffset + k * s.outDim + o]!;
        z[i * s.outDim + o] = v;
      }
    }
    zs.push(z);
    if (l < slots.length - 1) {
      h = z.map((v) => act(spec.activation, v));
      hs.push(h);
    }
  });
  return { zs, hs };
}

/** Output probabilities: sigmoid per row (binary) or softmax rows (multiclass). */
export function probs64(spec: ModelSpec, p: Float64Array, b: Batch64): Float64Array {
  const z = forward(spec, p, b).zs.at(-1)!;
  if (spec.task.kind === 'binary') return z.map((v) => 1 / (1 + Math.exp(-v)));
  const c = spec.task.classes;
  const out = new Float64Array(z.length);
  for (let i = 0; i < b.n; i++) {
    let m = -Infinity;
    for (let j = 0; j < c; j++) m = Math.max(m, z[i * c + j]!);
    let s = 0;
    for (let j = 0; j < c; j++) s += Math.exp(z[i * c + j]! - m);
    for (let j = 0; j < c; j++) out[i * c + j] = Math.exp(z[i * c + j]! - m) / s;
  }
  return out;
}

export function loss64(spec: ModelSpec, p: Float64Array, b: Batch64): number {
  const z = forward(spec, p, b).zs.at(-1)!;
  let total = 0;
  if (spec.task.kind === 'binary') {
    for (let i = 0; i < b.n; i++) total += softplus(z[i]!) - (b.y[i] === 1 ? z[i]! : 0);
  } else {
    const c = spec.task.classes;
    for (let i = 0; i < b.n; i++) {
      let m = -Infinity;
      for (let j = 0; j < c; j++) m = Math.max(m, z[i * c + j]!);
      let s = 0;
      for (let j = 0; j < c; j++) s += Math.exp(z[i * c + j]! - m);
      total += m + Math.log(s) - z[i * c + b.y[i]!]!;
    }
  }
  return total / b.n;
}

/** Gradient of the mean loss with respect to the model parameters (backprop in float64). */
export function grad64(spec: ModelSpec, p: Float64Array, b: Batch64): Float64Array {
  const slots = layerSlots(spec);
  const { zs, hs } = forward(spec, p, b);
  const g = new Float64Array(p.length);
  const L = slots.length;
  const zOut = zs[L - 1]!;
  const c = slots[L - 1]!.outDim;
  // dL/dz at the output, already divided by n.
  let dz = new Float64Array(zOut.length);
  const pr = spec.task.kind === 'binary' ? zOut.map((v) => 1 / (1 + Math.exp(-v))) : null;
  for (let i = 0; i < b.n; i++) {
    if (pr) dz[i] = (pr[i]! - (b.y[i] === 1 ? 1 : 0)) / b.n;
    else {
      let m = -Infinity;
      for (let j = 0; j < c; j++) m = Math.max(m, zOut[i * c + j]!);
      let s = 0;
      for (let j = 0; j < c; j++) s += Math.exp(zOut[i * c + j]! - m);
      for (let j = 0; j < c; j++) dz[i * c + j] = (Math.exp(zOut[i * c + j]! - m) / s - (b.y[i] === j ? 1 : 0)) / b.n;
    }
  }
  for (let l = L - 1; l >= 0; l--) {
    const s = slots[l]!;
    const h = hs[l]!;
    for (let i = 0; i < b.n; i++) {
      for (let o = 0; o < s.outDim; o++) {
        const d = dz[i * s.outDim + o]!;
        g[s.biasOffset + o]! += d;
        for (let k = 0; k < s.inDim; k++) g[s.kernelOffset + k * s.outDim + o]! += h[i * s.inDim + k]! * d;
      }
    }
    if (l === 0) break;
    const zPrev = zs[l - 1]!;
    const next = new Float64Array(b.n * s.inDim);
    for (let i = 0; i < b.n; i++) {
      for (let k = 0; k < s.inDim; k++) {
        let v = 0;
        for (let o = 0; o < s.outDim; o++) v += dz[i * s.outDim + o]! * p[s.kernelOffset + k * s.outDim + o]!;
        next[i * s.inDim + k] = v * actGrad(spec.activation, zPrev[i * s.inDim + k]!);
      }
    }
    dz = next;
  }
  return g;
}

export interface Inner64 {
  steps: number;
  lr: number;
  /** Index of the first adapted layer (ANIL); 0 adapts all. */
  first?: number;
  /** Per-parameter step sizes (Meta-SGD), same length as the model's parameters. */
  sizes?: Float64Array;
}

/** k SGD steps on the support batch, in float64. */
export function adapt64(spec: ModelSpec, p: Float64Array, support: Batch64, inner: Inner64): Float64Array {
  const from = layerSlots(spec)[inner.first ?? 0]!.kernelOffset;
  let q = Float64Array.from(p);
  for (let k = 0; k < inner.steps; k++) {
    const g = grad64(spec, q, support);
    const nq = Float64Array.from(q);
    for (let i = from; i < q.length; i++) nq[i] = q[i]! - (inner.sizes ? inner.sizes[i]! : inner.lr) * g[i]!;
    q = nq;
  }
  return q;
}

/** The query loss after adaptation, as a function of the initial parameters: what full MAML differentiates. */
export function mamlObjective64(spec: ModelSpec, p: Float64Array, support: Batch64, query: Batch64, inner: Inner64): number {
  return loss64(spec, adapt64(spec, p, support, inner), query);
}

/** Central finite differences of f at p, one coordinate at a time. */
export function finiteDiff(f: (p: Float64Array) => number, p: Float64Array, h = 1e-6): Float64Array {
  const g = new Float64Array(p.length);
  const q = Float64Array.from(p);
  for (let i = 0; i < p.length; i++) {
    const v = p[i]!;
    q[i] = v + h;
    const up = f(q);
    q[i] = v - h;
    const down = f(q);
    q[i] = v;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

/** ||a - b|| / ||b||. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

/** A seeded batch with features in [-1.5, 1.5] and labels 0..classes-1, as float32 values and their float64 twin. */
export function makeBatch(n: number, dim: number, classes: number, seed: number): { f32: { x: Float32Array; y: Int32Array; n: number; dim: number }; f64: Batch64 } {
  let s = seed >>> 0 || 1;
  const rnd = (): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
  const x = new Float32Array(n * dim).map(() => 3 * rnd() - 1.5);
  const y = new Int32Array(n).map((_, i) => (i < classes ? i : Math.floor(rnd() * classes)));
  return { f32: { x, y, n, dim }, f64: { x: Float64Array.from(x), y, n, dim } };
}
