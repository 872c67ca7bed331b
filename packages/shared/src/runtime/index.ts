export { tf } from './tf.js';
export type { Tensor, Tensor1D, Tensor2D, Scalar, Rank } from './tf.js';
export { initRuntime, runtimeInfo, requireRuntime, onBackendChange } from './backend.js';
export type { BackendName, RuntimeOptions, RuntimeInfo } from './backend.js';
export { transpose2d } from './wasm-kernels.js';
