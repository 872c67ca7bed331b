export * from './types.js';
export { aggregate } from './aggregate.js';
export { weightedMean, normClip } from './mean.js';
export { coordinateMedian, trimmedMean } from './order-stats.js';
export { multiKrum, multiKrumSelection, pairwiseSquaredDistances, type KrumSelection } from './krum.js';
export { centeredClipping } from './centered-clipping.js';
export { l2Norm, clipToNorm } from './vector.js';
export { aggregatorPreconditions, needsIndividualUpdates, DEFAULT_CC_ITERATIONS } from './validate.js';
