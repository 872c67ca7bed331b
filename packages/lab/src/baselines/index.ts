export { RandomForest } from './random-forest.js';
export type { ForestOptions } from './random-forest.js';
export { LogisticRegression } from './logistic.js';
export type { LogisticOptions } from './logistic.js';
