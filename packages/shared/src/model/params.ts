import { ErrorCode, FedmetaError } from '../errors.js';
import { checkFlat, manifestKey, manifestSize } from '../params.js';
import type { FlatParams, ParamManifest } from '../params.js';
import { layerWidths } from './spec.js';
import type { ModelSpec } from './spec.js';

const ACTIVATIONS = new Set(['relu', 'tanh', 'sigmoid', 'elu', 'softplus']);

/** Name prefix of the Meta-SGD per-parameter inner step sizes, which follow the model's own entries. */
export const META_SGD_PREFIX = 'metasgd/';

export interface ManifestOptions {
  /** Append one learned inner step size per model parameter (Meta-SGD), named `metasgd/<name>`. */
  metaSgd?: boolean;
}

export interface InitOptions extends ManifestOptions {
  /** Initial Meta-SGD step size for every parameter (default 0.01). */
  metaSgdLr?: number;
}

function isPositiveInt(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n > 0;
}

/** Refuses a spec that no network can be built from, with a message naming the field. */
export function validateSpec(spec: ModelSpec): void {
  if (!isPositiveInt(spec.inputDim)) throw new FedmetaError(ErrorCode.CONFIG, 'model inputDim must be a positive integer');
  if (!Array.isArray(spec.hidden) || !spec.hidden.every(isPositiveInt)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'model hidden must be a list of positive integer layer widths');
  }
  if (!ACTIVATIONS.has(spec.activation)) {
    throw new FedmetaError(ErrorCode.CONFIG, `model activation must be one of ${[...ACTIVATIONS].join(', ')}`);
  }
  const task = spec.task;
  if (task.kind === 'multiclass') {
    if (!Number.isInteger(task.classes) || task.classes < 2) {
      throw new FedmetaError(ErrorCode.CONFIG, 'a multiclass model needs an integer number of classes >= 2');
    }
  } else if (task.kind !== 'binary') {
    throw new FedmetaError(ErrorCode.CONFIG, 'model task must be binary or multiclass');
  }
}

/** Number of dense layers (hidden layers plus the output layer). */
export function layerCount(spec: ModelSpec): number {
  return spec.hidden.length + 1;
}

/** The model's own entries, in flat order: dense0/kernel, dense0/bias, dense1/kernel, ... */
function modelManifest(spec: ModelSpec): ParamManifest {
  const widths = layerWidths(spec);
  const m: ParamManifest = [];
  for (let i = 0; i + 1 < widths.length; i++) {
    m.push({ name: `dense${i}/kernel`, shape: [widths[i]!, widths[i + 1]!], dtype: 'float32' });
    m.push({ name: `dense${i}/bias`, shape: [widths[i + 1]!], dtype: 'float32' });
  }
  return m;
}

export function manifestFor(spec: ModelSpec, opts: ManifestOptions = {}): ParamManifest {
  validateSpec(spec);
  const m = modelManifest(spec);
  if (!opts.metaSgd) return m;
  return [...m, ...m.map((e) => ({ ...e, name: META_SGD_PREFIX + e.name }))];
}

/** Number of values of the model's own parameters (without any Meta-SGD step sizes). */
export function modelParamCount(spec: ModelSpec): number {
  return manifestSize(modelManifest(spec));
}

/** Where layer i's kernel and bias sit in the flat vector. */
export interface LayerSlots {
  inDim: number;
  outDim: number;
  kernelOffset: number;
  biasOffset: number;
}

export function layerSlots(spec: ModelSpec): LayerSlots[] {
  const widths = layerWidths(spec);
  const slots: LayerSlots[] = [];
  let at = 0;
  for (let i = 0; i + 1 < widths.length; i++) {
    const inDim = widths[i]!;
    const outDim = widths[i + 1]!;
    slots.push({ inDim, outDim, kernelOffset: at, biasOffset: at + inDim * outDim });
    at += inDim * outDim + outDim;
  }
  return slots;
}

/**
 * Whether a parameter vector carries Meta-SGD step sizes: its length is twice the model's. Anything else
 * than once or twice the model's size is refused.
 */
export function hasMetaSgd(spec: ModelSpec, values: Float32Array): boolean {
  const n = modelParamCount(spec);
  if (values.length === n) return false;
  if (values.length === 2 * n) return true;
  checkFlat(modelManifest(spec), values);
  return false;
}

/** sfc32 seeded through splitmix32: deterministic across platforms, independent of Math.random. */
function seededUniform(seed: number): () => number {
  let s = seed >>> 0;
  const mix = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = mix();
  let b = mix();
  let c = mix();
  let d = mix();
  return () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
}

/**
 * Seeded initialisation: He-uniform for relu/elu hidden layers, Glorot-uniform for tanh/sigmoid/softplus and
 * for the (linear) output layer; biases zero. The same spec and seed always give the same bytes.
 */
export function initParams(spec: ModelSpec, seed: number, opts: InitOptions = {}): FlatParams {
  if (!Number.isInteger(seed)) throw new FedmetaError(ErrorCode.CONFIG, 'the initialisation seed must be an integer');
  const manifest = manifestFor(spec, opts);
  const values = new Float32Array(manifestSize(manifest));
  const rand = seededUniform(seed);
  const slots = layerSlots(spec);
  const he = spec.activation === 'relu' || spec.activation === 'elu';
  slots.forEach((s, i) => {
    const isOutput = i === slots.length - 1;
    const limit = he && !isOutput ? Math.sqrt(6 / s.inDim) : Math.sqrt(6 / (s.inDim + s.outDim));
    for (let k = 0; k < s.inDim * s.outDim; k++) values[s.kernelOffset + k] = (2 * rand() - 1) * limit;
  });
  if (opts.metaSgd) {
    const lr = opts.metaSgdLr ?? 0.01;
    if (!(Number.isFinite(lr) && lr > 0)) throw new FedmetaError(ErrorCode.CONFIG, 'metaSgdLr must be a positive number');
    values.fill(lr, modelParamCount(spec));
  }
  return { manifest, values };
}

/** Refuses a flat parameter set whose manifest is not the one this spec builds. */
export function checkParamsFor(spec: ModelSpec, params: FlatParams): void {
  const expected = manifestFor(spec, { metaSgd: params.manifest.length === 4 * layerCount(spec) });
  if (manifestKey(expected) !== manifestKey(params.manifest)) {
    throw new FedmetaError(ErrorCode.SHAPE, 'parameter manifest does not match the model spec; start from initParams(spec) or the federation checkpoint');
  }
  checkFlat(params.manifest, params.values);
}
