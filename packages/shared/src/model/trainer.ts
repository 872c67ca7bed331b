import { requireRuntime } from '../runtime/backend.js';
import { tf } from '../runtime/tf.js';
import type { Tensor1D, Tensor2D } from '../runtime/tf.js';
import { transpose2d } from '../runtime/wasm-kernels.js';
import { backwardCols, backwardRows, chooseLayout, forwardCols, forwardRows, toCols, toRows } from './backprop.js';
import type { BackwardResult, Gradients, Layout } from './backprop.js';
import type { BatchTensors } from './batch.js';
import { meanLoss, readLayers, uploadLayers } from './forward.js';
import type { DenseTensors } from './forward.js';
import { fusedGradients, fusedKernels, fusedLoss, fusedStep } from './fused.js';
import { modelParamCount } from './params.js';
import { layerWidths } from './spec.js';
import type { ModelSpec } from './spec.js';

export type { Gradients, Layout } from './backprop.js';

/**
 * The SGD step that local training, the inner loop and the first-order meta-gradients all run: an explicit
 * forward and backward pass, no tape, no optimizer object, the learning rate folded into the output
 * gradient. On the wasm backend a relu network runs on the project's compiled kernels (fused.ts), where
 * the update is part of the weight-gradient product; elsewhere on tfjs ops (backprop.ts).
 *
 * Why not tfjs autodiff: it records every op, builds its gradient from `transposeA/B` matMuls (which the wasm
 * backend runs through a naive loop) and cannot choose which operand the backend repacks; on the detector
 * MLP it is several times slower.
 */
export interface StepOptions {
  /** Only the last k dense layers are updated (ANIL); default all. */
  adaptLast?: number;
  /** Per-parameter step sizes (Meta-SGD), one tensor pair per layer; replaces the scalar learning rate. */
  stepSizes?: readonly DenseTensors[];
  /** Also return the mean loss before the step (costs no extra forward pass). */
  withLoss?: boolean;
  /**
   * Force the tfjs path in this layout (default: the compiled kernels where they apply, else the cheaper
   * layout for the batch size).
   */
  layout?: Layout;
}

export class MlpTrainer {
  readonly spec: ModelSpec;
  /** Parameters in the form of `form` (see toCols in backprop.ts); gradients come in the same form. */
  private layers: DenseTensors[];
  private form: Layout = 'rows';
  /** Meta-SGD step sizes converted to the cols form, per step-size array given. */
  private colsSizes = new WeakMap<readonly DenseTensors[], DenseTensors[]>();
  /** Tensors made for the trainer's own use besides the parameters (converted step sizes). */
  private ownedExtras: tf.Tensor[] = [];
  private readonly widths: number[];
  /** The caller's tensors this trainer started from: never disposed here (ANIL keeps some for good). */
  private readonly borrowed: Set<tf.Tensor>;
  /** Per layer, its kernel transposed (for the fused path's input gradients), while `of` is the kernel. */
  private transposed: Array<{ of: Tensor2D; t: Tensor2D } | undefined> = [];
  private disposed = false;

  /**
   * Starts from a flat vector (uploaded) or from layer tensors, which are borrowed, not copied: the caller
   * keeps them alive while the trainer runs and disposes them itself.
   */
  constructor(spec: ModelSpec, init: Float32Array | readonly DenseTensors[]) {
    requireRuntime();
    this.spec = spec;
    this.widths = layerWidths(spec);
    this.layers = init instanceof Float32Array ? uploadLayers(spec, init) : [...init];
    this.borrowed = new Set(init instanceof Float32Array ? [] : init.flatMap((l) => [l.kernel, l.bias]));
  }

  /** The current layer tensors (owned by the trainer; do not dispose). */
  current(): readonly DenseTensors[] {
    this.ensureForm('rows');
    return this.layers;
  }

  /**
   * One SGD step on the whole batch: params -= lr * mean-loss gradient (or stepSizes ⊙ gradient). Returns
   * the loss before the step when `withLoss` is set.
   */
  step(batch: BatchTensors, lr: number, opts: StepOptions = {}): number | undefined {
    const L = this.layers.length;
    const first = L - Math.min(L, opts.adaptLast ?? L);
    // With Meta-SGD the per-parameter sizes multiply an unscaled mean gradient; otherwise fold lr in.
    const scale = opts.stepSizes ? 1 / batch.n : lr / batch.n;
    const k = opts.layout === undefined && batch.n > 0 ? fusedKernels(this.spec) : undefined;
    if (k !== undefined) {
      this.ensureForm('rows');
      const r = fusedStep(k, this.spec, {
        layers: this.layers,
        kernelT: this.kernelT,
        batch,
        scale,
        first,
        withLoss: opts.withLoss === true,
        sizes: opts.stepSizes,
      });
      this.replaceLayers(r.layers);
      r.kernelT.forEach((t, l) => {
        if (t !== undefined) this.transposed[l] = { of: r.layers[l]!.kernel, t };
      });
      return r.loss;
    }
    const layout = opts.layout ?? chooseLayout(this.widths, batch.n);
    this.ensureForm(layout);
    const sizes = opts.stepSizes && this.sizesInForm(opts.stepSizes);
    let lossTensor: tf.Scalar | undefined;
    const next = tf.tidy(() => {
      const { grads, loss } = this.backward(batch, scale, first, opts.withLoss === true, layout);
      if (loss) lossTensor = tf.keep(loss);
      return this.layers.map((layer, i) => {
        const g = grads[i];
        // Not adapted (ANIL): the same tensors, whose packing the backend keeps.
        if (g === undefined) return { kernel: layer.kernel, bias: layer.bias };
        const size = sizes?.[i];
        const dk = size ? tf.mul(size.kernel, g.kernel) : g.kernel;
        const db = size ? tf.mul(size.bias, g.bias) : g.bias;
        return { kernel: tf.sub(layer.kernel, dk) as Tensor2D, bias: tf.sub(layer.bias, db) as Tensor1D };
      });
    });
    this.replaceLayers(next);
    return readScalar(lossTensor);
  }

  /**
   * Mean-loss gradients at the current parameters (caller disposes), for layers `first`..L-1 (earlier
   * entries undefined), and the mean loss when `withLoss` is set.
   */
  gradients(batch: BatchTensors, first = 0, withLoss = false): { grads: Array<Gradients | undefined>; loss: number | undefined } {
    const k = batch.n > 0 ? fusedKernels(this.spec) : undefined;
    if (k !== undefined) {
      this.ensureForm('rows');
      return fusedGradients(k, this.spec, this.layers, this.kernelT, batch, 1 / batch.n, first, withLoss);
    }
    let lossTensor: tf.Scalar | undefined;
    const layout = chooseLayout(this.widths, batch.n);
    this.ensureForm(layout);
    const flat = tf.tidy(() => {
      const r = this.backward(batch, 1 / batch.n, first, withLoss, layout);
      if (r.loss) lossTensor = tf.keep(r.loss);
      // Callers get gradients in the rows form (kernels [in, out], biases [out]).
      const rows = layout === 'cols' ? toRows(r.grads) : r.grads;
      return rows.map((g) => (g ? [g.kernel, g.bias] : []));
    });
    const grads = flat.map((p) => (p.length === 2 ? { kernel: p[0] as Tensor2D, bias: p[1] as Tensor1D } : undefined));
    return { grads, loss: readScalar(lossTensor) };
  }

  /** params -= sizes ⊙ grads per layer (layers whose gradient is undefined stay). Does not dispose grads. */
  applyGradients(grads: ReadonlyArray<Gradients | undefined>, sizes: readonly DenseTensors[]): void {
    this.ensureForm('rows');
    const next = tf.tidy(() =>
      this.layers.map((layer, i) => {
        const g = grads[i];
        const a = sizes[i];
        if (g === undefined || a === undefined) return { kernel: layer.kernel, bias: layer.bias };
        return {
          kernel: tf.sub(layer.kernel, tf.mul(a.kernel, g.kernel)) as Tensor2D,
          bias: tf.sub(layer.bias, tf.mul(a.bias, g.bias)) as Tensor1D,
        };
      }),
    );
    this.replaceLayers(next);
  }

  /** Mean loss on a batch at the current parameters (forward pass only). */
  loss(batch: BatchTensors): number {
    const k = this.form === 'rows' && batch.n > 0 ? fusedKernels(this.spec) : undefined;
    if (k !== undefined) return fusedLoss(k, this.spec, this.layers, batch);
    const logits = (): Tensor2D =>
      this.form === 'cols' ? forwardCols(this.spec, this.layers, batch).logits : forwardRows(this.spec, this.layers, batch.x).logits;
    return readScalar(tf.tidy(() => meanLoss(this.spec, logits(), batch.target)))!;
  }

  /** The current parameters as a flat vector in manifest order. */
  read(out = new Float32Array(modelParamCount(this.spec))): Float32Array {
    this.ensureForm('rows');
    return readLayers(this.spec, this.layers, out);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.release(this.layers, new Set());
    for (const e of this.transposed) e?.t.dispose();
    this.transposed = [];
    tf.dispose(this.ownedExtras);
    this.ownedExtras = [];
  }

  /** Converts the parameters to the given form (new tensors only for the entries that change). */
  private ensureForm(form: Layout): void {
    if (form === this.form) return;
    const next = tidyLayers(() => (form === 'cols' ? toCols(this.layers) : toRows(this.layers)));
    this.replaceLayers(next);
    this.form = form;
  }

  private sizesInForm(sizes: readonly DenseTensors[]): readonly DenseTensors[] {
    if (this.form === 'rows') return sizes;
    let converted = this.colsSizes.get(sizes);
    if (converted === undefined) {
      const made = tidyLayers(() => toCols(sizes));
      // Only what the conversion made is the trainer's to dispose; the rest are the caller's tensors.
      const given = new Set(sizes.flatMap((l) => [l.kernel, l.bias]));
      this.ownedExtras.push(...made.flatMap((l) => [l.kernel, l.bias]).filter((t) => !given.has(t)));
      converted = made;
      this.colsSizes.set(sizes, converted);
    }
    return converted;
  }

  private replaceLayers(next: DenseTensors[]): void {
    this.release(this.layers, new Set(next.flatMap((l) => [l.kernel, l.bias])));
    this.layers = next;
    this.transposed.forEach((e, l) => {
      if (e !== undefined && e.of !== next[l]?.kernel) {
        e.t.dispose();
        this.transposed[l] = undefined;
      }
    });
  }

  /** Layer l's kernel transposed, made on first need and kept while the kernel stays. */
  private readonly kernelT = (l: number): Tensor2D => {
    const kernel = this.layers[l]!.kernel;
    const e = this.transposed[l];
    if (e !== undefined && e.of === kernel) return e.t;
    e?.t.dispose();
    const t = transpose2d(kernel);
    this.transposed[l] = { of: kernel, t };
    return t;
  };

  /** Disposes the trainer's own tensors among `layers`, except those still in use. */
  private release(layers: readonly DenseTensors[], inUse: ReadonlySet<tf.Tensor>): void {
    for (const l of layers) {
      for (const t of [l.kernel, l.bias]) if (!inUse.has(t) && !this.borrowed.has(t)) t.dispose();
    }
  }

  private backward(batch: BatchTensors, scale: number, first: number, withLoss: boolean, layout?: Layout): BackwardResult {
    const chosen = layout ?? chooseLayout(this.widths, batch.n);
    const run = chosen === 'cols' ? backwardCols : backwardRows;
    return run(this.spec, this.layers, batch, scale, first, withLoss);
  }
}

function readScalar(t: tf.Scalar | undefined): number | undefined {
  if (t === undefined) return undefined;
  const v = t.dataSync()[0]!;
  t.dispose();
  return v;
}


/** tf.tidy for a list of layers (the layer interface is not a TensorContainer to the type checker). */
function tidyLayers(fn: () => DenseTensors[]): DenseTensors[] {
  return tf.tidy(() => fn() as unknown as tf.TensorContainer) as unknown as DenseTensors[];
}
