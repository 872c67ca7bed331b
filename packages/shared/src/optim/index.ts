export * from './types.js';
export { createOptimizer, ADAM_DEFAULTS } from './optimizers.js';
export { checkOptimizerState, cloneOptimizerState, initialOptimizerState, OPTIMIZER_BUFFERS } from './state.js';
