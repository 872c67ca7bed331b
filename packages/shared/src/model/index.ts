export * from './spec.js';
export * from './params.js';
export * from './batch.js';
export * from './forward.js';
export { MlpTrainer } from './trainer.js';
export type { StepOptions, Gradients, Layout } from './trainer.js';
export { chooseLayout } from './backprop.js';
export { Detector, predictScores, clearPredictCache, PREDICT_CHUNK } from './predict.js';
