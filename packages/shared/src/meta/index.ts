export * from './types.js';
export { adapt } from './inner.js';
export { metaGradient, metaGradientMean } from './meta-gradient.js';
export { localTrain } from './local.js';
export type { LocalTrainConfig } from './local.js';
