import { tf } from './tf.js';
import type { Tensor, Tensor2D } from './tf.js';
import { transpose2d } from './wasm-kernels.js';

/**
 * The gradient table the project relies on, registered for every backend (the registry is global).
 *
 * tfjs-core's Node build ships no gradients at all (they live in its ESM-only files, which Node cannot load
 * from that package), so the project defines the ones its models and losses use, written to be correct to
 * second order and fast on wasm:
 * - BatchMatMul multiplies with explicit transposes: the wasm backend runs `transposeA/B` matMuls through a
 *   naive loop 12-15x slower than a transpose followed by a plain matMul.
 * - Exp, Sigmoid, Tanh, Elu, Softmax recompute from the saved *input*. Built from the saved *output*, as
 *   tfjs does, the second derivative through them is silently lost in nested `tf.grads` (full MAML gets
 *   relative errors of 0.3 and more).
 * - Comparison and rounding ops have zero gradients, so second order through max/min/relu masks runs.
 * Every gradient is itself made of ops listed here, so gradients of gradients exist.
 */
type GradMap = Record<string, () => Tensor>;
type Attrs = Record<string, unknown>;
type GradFn = (dy: Tensor, saved: Tensor[], attrs: Attrs) => GradMap;

function register(kernelName: string, inputsToSave: string[], gradFunc: GradFn): void {
  tf.registerGradient({
    kernelName,
    inputsToSave,
    gradFunc: (dy, saved, attrs) => gradFunc(dy as Tensor, saved as Tensor[], attrs as unknown as Attrs),
  });
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Sums a broadcast gradient back down to an input's shape. */
function unbroadcast(g: Tensor, shape: number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const axes = tf.broadcast_util.getReductionAxes(shape, g.shape);
  return tf.reshape(axes.length > 0 ? tf.sum(g, axes) : g, shape);
}

/** dy of a reduction, reshaped so it broadcasts against the reduced input. */
function expandReduced(dy: Tensor, xShape: number[], axis: unknown): { dy: Tensor; axes: number[] } {
  const axes = tf.util.parseAxisParam(axis as number | number[], xShape);
  const kept = xShape.map((d, i) => (axes.includes(i) ? 1 : d));
  return { dy: tf.reshape(dy, kept), axes };
}

const f32 = (t: Tensor): Tensor => tf.cast(t, 'float32');

function registerArithmetic(): void {
  register(tf.Add, ['a', 'b'], (dy, [a, b]) => ({ a: () => unbroadcast(dy, a!.shape), b: () => unbroadcast(dy, b!.shape) }));
  tf.registerGradient({
    kernelName: tf.AddN,
    saveAllInputs: true,
    gradFunc: (dy, saved) => {
      const grads: GradMap = {};
      saved.forEach((_, i) => (grads[i] = () => tf.clone(dy as Tensor)));
      return grads;
    },
  });
  register(tf.Sub, ['a', 'b'], (dy, [a, b]) => ({
    a: () => unbroadcast(dy, a!.shape),
    b: () => unbroadcast(tf.neg(dy), b!.shape),
  }));
  register(tf.Multiply, ['a', 'b'], (dy, [a, b]) => ({
    a: () => unbroadcast(tf.mul(dy, f32(b!)), a!.shape),
    b: () => unbroadcast(tf.mul(dy, f32(a!)), b!.shape),
  }));
  register(tf.RealDiv, ['a', 'b'], (dy, [a, b]) => ({
    a: () => unbroadcast(tf.div(dy, b!), a!.shape),
    b: () => unbroadcast(tf.neg(tf.div(tf.mul(dy, a!), tf.square(b!))), b!.shape),
  }));
  register(tf.SquaredDifference, ['a', 'b'], (dy, [a, b]) => {
    const twoDiff = (): Tensor => tf.mul(dy, tf.mul(tf.sub(a!, b!), 2));
    return { a: () => unbroadcast(twoDiff(), a!.shape), b: () => unbroadcast(tf.neg(twoDiff()), b!.shape) };
  });
  register(tf.Maximum, ['a', 'b'], (dy, [a, b]) => ({
    a: () => unbroadcast(tf.mul(dy, f32(tf.greaterEqual(a!, b!))), a!.shape),
    b: () => unbroadcast(tf.mul(dy, f32(tf.less(a!, b!))), b!.shape),
  }));
  register(tf.Minimum, ['a', 'b'], (dy, [a, b]) => ({
    a: () => unbroadcast(tf.mul(dy, f32(tf.lessEqual(a!, b!))), a!.shape),
    b: () => unbroadcast(tf.mul(dy, f32(tf.greater(a!, b!))), b!.shape),
  }));
  register(tf.Neg, [], (dy) => ({ x: () => tf.neg(dy) }));
  register(tf.Square, ['x'], (dy, [x]) => ({ x: () => tf.mul(dy, tf.mul(f32(x!), 2)) }));
  register(tf.Sqrt, ['x'], (dy, [x]) => ({ x: () => tf.div(dy, tf.mul(tf.sqrt(f32(x!)), 2)) }));
  register(tf.Reciprocal, ['x'], (dy, [x]) => ({ x: () => tf.neg(tf.div(dy, tf.square(x!))) }));
  register(tf.Abs, ['x'], (dy, [x]) => ({ x: () => tf.mul(dy, tf.sign(f32(x!))) }));
  register(tf.Exp, ['x'], (dy, [x]) => ({ x: () => tf.mul(dy, tf.exp(x!)) }));
  register(tf.Log, ['x'], (dy, [x]) => ({ x: () => tf.div(dy, f32(x!)) }));
  register(tf.Log1p, ['x'], (dy, [x]) => ({ x: () => tf.div(dy, tf.add(x!, 1)) }));
}

function registerActivations(): void {
  register(tf.Relu, ['x'], (dy, [x]) => ({ x: () => tf.mul(dy, f32(tf.step(x!))) }));
  register(tf.Elu, ['x'], (dy, [x]) => ({ x: () => tf.mul(dy, tf.exp(tf.minimum(x!, 0))) }));
  register(tf.Sigmoid, ['x'], (dy, [x]) => ({
    x: () => {
      const s = tf.sigmoid(x!);
      return tf.mul(dy, tf.mul(s, tf.sub(1, s)));
    },
  }));
  register(tf.Tanh, ['x'], (dy, [x]) => ({ x: () => tf.mul(dy, tf.sub(1, tf.square(tf.tanh(x!)))) }));
  register(tf.Softplus, ['x'], (dy, [x]) => ({ x: () => tf.mul(dy, tf.sigmoid(x!)) }));
  register(tf.Softmax, ['logits'], (dy, [logits], attrs) => ({
    logits: () => {
      const dim = attrs['dim'] as number;
      const s = tf.softmax(logits!, dim);
      return tf.mul(s, tf.sub(dy, tf.sum(tf.mul(dy, s), dim, true)));
    },
  }));
}

function registerShapes(): void {
  register(tf.Cast, [], (dy) => ({ x: () => tf.clone(dy) }));
  register(tf.Identity, [], (dy) => ({ x: () => tf.clone(dy) }));
  register(tf.Reshape, ['x'], (dy, [x]) => ({ x: () => tf.reshape(dy, x!.shape) }));
  register(tf.ExpandDims, ['input'], (dy, [input]) => ({ input: () => tf.reshape(dy, input!.shape) }));
  register(tf.Transpose, [], (dy, _saved, attrs) => {
    const perm = attrs['perm'] as number[];
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return { x: () => tf.transpose(dy, inverse) };
  });
  register(tf.Slice, ['x'], (dy, [x], attrs) => {
    const starts = tf.slice_util.parseSliceParams(x!, attrs['begin'] as number[], attrs['size'] as number[])[0]!;
    const paddings = x!.shape.map((d, i) => [starts[i]!, d - starts[i]! - dy.shape[i]!] as [number, number]);
    return { x: () => tf.pad(dy, paddings) };
  });
  register(tf.PadV2, ['x'], (dy, [x], attrs) => {
    const begin = (attrs['paddings'] as Array<[number, number]>).map((p) => p[0]);
    return { x: () => tf.slice(dy, begin, x!.shape) };
  });
  register(tf.BroadcastTo, ['x'], (dy, [x]) => ({ x: () => unbroadcast(dy, x!.shape) }));
}

function registerReductions(): void {
  register(tf.Sum, ['x'], (dy, [x], attrs) => ({
    x: () => tf.mul(expandReduced(dy, x!.shape, attrs['axis']).dy, tf.ones(x!.shape)),
  }));
  register(tf.Mean, ['x'], (dy, [x], attrs) => ({
    x: () => {
      const { dy: d, axes } = expandReduced(dy, x!.shape, attrs['axis']);
      const count = axes.reduce((n, a) => n * x!.shape[a]!, 1);
      return tf.div(tf.mul(d, tf.ones(x!.shape)), count);
    },
  }));
  // The mask of the extreme elements is constant under differentiation (its comparison has a zero gradient).
  const extreme = (pick: 'max' | 'min', axisAttr: string): GradFn => (dy, [x], attrs) => ({
    x: () => {
      const { dy: d, axes } = expandReduced(dy, x!.shape, attrs[axisAttr]);
      const m = pick === 'max' ? tf.max(x!, axes, true) : tf.min(x!, axes, true);
      return tf.mul(d, f32(tf.equal(x!, m)));
    },
  });
  register(tf.Max, ['x'], extreme('max', 'reductionIndices'));
  register(tf.Min, ['x'], extreme('min', 'axis'));
}

/** Gradient of a plain (untransposed) product with matching or broadcast batch dimensions. */
function registerMatMul(): void {
  register(tf.BatchMatMul, ['a', 'b'], (dy, [a, b], attrs) => {
    const tA = attrs['transposeA'] === true;
    const tB = attrs['transposeB'] === true;
    const T = (t: Tensor): Tensor => {
      if (t.rank === 2) return transpose2d(t as Tensor2D);
      const perm = t.shape.map((_, i) => i);
      const r = t.rank;
      perm[r - 2] = r - 1;
      perm[r - 1] = r - 2;
      return tf.transpose(t, perm);
    };
    const mm = (x: Tensor, y: Tensor): Tensor => tf.matMul(x, y);
    let da: () => Tensor;
    let db: () => Tensor;
    if (!tA && !tB) {
      da = () => mm(dy, T(b!));
      db = () => mm(T(a!), dy);
    } else if (!tA && tB) {
      da = () => mm(dy, b!);
      db = () => mm(T(dy), a!);
    } else if (tA && !tB) {
      da = () => mm(b!, T(dy));
      db = () => mm(a!, dy);
    } else {
      da = () => mm(T(b!), T(dy));
      db = () => mm(T(dy), T(a!));
    }
    return { a: () => unbroadcast(da(), a!.shape), b: () => unbroadcast(db(), b!.shape) };
  });
}

function registerZeroGradients(): void {
  const binary = [tf.Equal, tf.NotEqual, tf.Greater, tf.GreaterEqual, tf.Less, tf.LessEqual, tf.LogicalAnd, tf.LogicalOr];
  for (const name of binary) {
    register(name, ['a', 'b'], (_dy, [a, b]) => ({
      a: () => tf.zeros(a!.shape, 'float32'),
      b: () => tf.zeros(b!.shape, 'float32'),
    }));
  }
  for (const name of [tf.Step, tf.Sign, tf.Floor, tf.Ceil, tf.Round, tf.LogicalNot, tf.ZerosLike, tf.OnesLike]) {
    register(name, ['x'], (_dy, [x]) => ({ x: () => tf.zeros(x!.shape, 'float32') }));
  }
  register(tf.Select, ['condition', 't', 'e'], (dy, [condition, t, e]) => ({
    condition: () => tf.zeros(condition!.shape, 'float32'),
    t: () => unbroadcast(tf.mul(dy, f32(condition!)), t!.shape),
    e: () => unbroadcast(tf.mul(dy, f32(tf.logicalNot(condition!))), e!.shape),
  }));
}

/**
 * Registers (or re-registers, after another package loaded its own table) the project's gradients. Call
 * again after importing a backend package that brings tfjs's shipped gradients, so these win.
 */
export function registerProjectGradients(): void {
  registerArithmetic();
  registerActivations();
  registerShapes();
  registerReductions();
  registerMatMul();
  registerZeroGradients();
}
