import { ErrorCode, FedmetaError } from '../errors.js';
import { registerProjectGradients } from './gradients.js';
import { loadNativeKernels } from './native.js';
import { registerWasmKernels } from './wasm-kernels.js';
import { tf } from './tf.js';

export type BackendName = 'wasm' | 'cpu' | 'tensorflow';

export interface RuntimeOptions {
  /** Which backend to use; default: env FEDMETA_BACKEND, else `wasm` (with `cpu` as fallback). */
  backend?: BackendName;
  /** Intra-op threads for the `tensorflow` backend (wasm is single-threaded in Node; cpu has no threads). */
  threads?: number;
}

export interface RuntimeInfo {
  /** The backend actually in use. */
  backend: string;
  /** What was asked for (explicitly, through FEDMETA_BACKEND, or the default). */
  requested: BackendName;
  /** True when `wasm` was asked for and could not start, so `cpu` runs instead. */
  fellBack: boolean;
}

const BACKENDS: readonly BackendName[] = ['wasm', 'cpu', 'tensorflow'];

/** The npm packages that provide the `tensorflow` backend, preferred first. */
const TENSORFLOW_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

let current: RuntimeInfo | undefined;
let pending: Promise<RuntimeInfo> | undefined;
const changeListeners: Array<() => void> = [];

/** Called whenever the active backend changes, so that caches holding tensors can drop them. */
export function onBackendChange(listener: () => void): void {
  changeListeners.push(listener);
}

/** The runtime chosen by the last successful `initRuntime`, or undefined before it ran. */
export function runtimeInfo(): RuntimeInfo | undefined {
  return current;
}

/**
 * Refuses to compute before `initRuntime` has run: without it tfjs would pick a backend on its own and the
 * project's gradients (without which full MAML is wrong) would be missing.
 */
export function requireRuntime(): void {
  if (current === undefined) {
    throw new FedmetaError(ErrorCode.PRECONDITION, 'the tensor runtime is not started; await initRuntime() once before training or scoring');
  }
}

function requestedBackend(opts: RuntimeOptions): BackendName {
  if (opts.backend !== undefined) {
    if (!BACKENDS.includes(opts.backend)) {
      throw new FedmetaError(ErrorCode.CONFIG, `unknown backend; use one of ${BACKENDS.join(', ')}`);
    }
    return opts.backend;
  }
  const fromEnv = process.env['FEDMETA_BACKEND'];
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!(BACKENDS as readonly string[]).includes(fromEnv)) {
      throw new FedmetaError(
        ErrorCode.CONFIG,
        `FEDMETA_BACKEND must be one of ${BACKENDS.join(', ')}; unset it to use the default (wasm)`,
      );
    }
    return fromEnv as BackendName;
  }
  return 'wasm';
}

/**
 * Chooses and starts the tensor backend; the one place in the project that does. Idempotent: calling it
 * again with the same request returns the same result; asking for another backend switches to it.
 * Registers the project's gradients (fast matMul gradient, second-order-correct gradients) on first use.
 */
export async function initRuntime(opts: RuntimeOptions = {}): Promise<RuntimeInfo> {
  const requested = requestedBackend(opts);
  if (opts.threads !== undefined && !(Number.isInteger(opts.threads) && opts.threads > 0)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'threads must be a positive integer');
  }
  // Serialise concurrent callers: backend switching is global state.
  while (pending !== undefined) await pending.catch(() => undefined);
  if (current !== undefined && current.requested === requested && tf.getBackend() === current.backend) {
    return current;
  }
  pending = start(requested, opts);
  try {
    return await pending;
  } finally {
    pending = undefined;
  }
}

async function start(requested: BackendName, opts: RuntimeOptions): Promise<RuntimeInfo> {
  registerProjectGradients();
  // PROD silences tfjs's console banners (for example the cpu backend's advice to install tfjs-node).
  tf.env().set('PROD', true);
  const before = current?.backend;
  let info: RuntimeInfo;
  if (requested === 'tensorflow') {
    await loadTensorflow(opts.threads);
    info = { backend: 'tensorflow', requested, fellBack: false };
  } else if (requested === 'cpu') {
    await activate('cpu');
    info = { backend: 'cpu', requested, fellBack: false };
  } else {
    const ok = await tryActivate('wasm');
    if (ok) {
      registerWasmKernels();
      loadNativeKernels();
      info = { backend: 'wasm', requested, fellBack: false };
    }
    else {
      await activate('cpu');
      info = { backend: 'cpu', requested, fellBack: true };
    }
  }
  current = info;
  if (before !== undefined && before !== info.backend) for (const l of changeListeners) l();
  return info;
}

async function tryActivate(name: string): Promise<boolean> {
  try {
    const ok = await tf.setBackend(name);
    if (!ok) return false;
    await tf.ready();
    return tf.getBackend() === name;
  } catch {
    return false;
  }
}

async function activate(name: string): Promise<void> {
  if (!(await tryActivate(name))) {
    throw new FedmetaError(ErrorCode.BACKEND_UNAVAILABLE, `the ${name} tensor backend failed to start; reinstall the project's dependencies with npm ci`);
  }
}

function isModuleNotFound(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

async function loadTensorflow(threads: number | undefined): Promise<void> {
  if (threads !== undefined) {
    // libtensorflow reads these when its first session starts, which is after the import below.
    process.env['TF_NUM_INTRAOP_THREADS'] = String(threads);
    process.env['TF_NUM_INTEROP_THREADS'] = '1';
  }
  if (tf.findBackend('tensorflow') === null) {
    let loaded = false;
    for (const specifier of TENSORFLOW_PACKAGES) {
      try {
        // A variable specifier keeps the optional package out of type-checking and bundling.
        await import(specifier);
        loaded = true;
        // The package brings tfjs's shipped gradient table; put the project's back on top of it.
        registerProjectGradients();
        break;
      } catch (e) {
        if (isModuleNotFound(e)) continue;
        throw new FedmetaError(
          ErrorCode.BACKEND_UNAVAILABLE,
          `${specifier} is installed but failed to load (for the GPU build check CUDA 11.2 and cuDNN 8.1); reinstall it or use the default wasm backend`,
          { cause: e },
        );
      }
    }
    if (!loaded) {
      throw new FedmetaError(
        ErrorCode.BACKEND_UNAVAILABLE,
        'the tensorflow backend is not installed: run `npm install @tensorflow/tfjs-node` (CPU) or `npm install @tensorflow/tfjs-node-gpu` (NVIDIA GPU, needs CUDA 11.2 and cuDNN 8.1), or use the default wasm backend',
      );
    }
  }
  if (!(await tryActivate('tensorflow'))) {
    throw new FedmetaError(
      ErrorCode.BACKEND_UNAVAILABLE,
      'the tensorflow backend is installed but did not start; check that its version matches @tensorflow/tfjs-core 4.22.0, or use the default wasm backend',
    );
  }
}
