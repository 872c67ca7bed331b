/**
 * The single import point of TensorFlow.js for the whole project. Every module reaches tfjs through this file
 * (directly or via `@fedmeta/shared`), so that all of them talk to one tfjs-core engine, one kernel registry and
 * one gradient registry, whatever backend `initRuntime` picks.
 */
import * as tf from '@tensorflow/tfjs-core';
// Side-effect imports: each registers its backend with the engine above.
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';

export { tf };
export type { Tensor, Tensor1D, Tensor2D, Scalar, Rank } from '@tensorflow/tfjs-core';
