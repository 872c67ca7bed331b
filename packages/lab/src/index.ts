export { applyOverrides, evalConfigSchema, loadEvalConfig, parseEvalConfig } from './config.js';
export type { EvalConfig, EvalConfigInput, EvalOverrides } from './config.js';
export * from './eval/index.js';
export * from './methods/index.js';
export * from './metrics/index.js';
export * from './baselines/index.js';
