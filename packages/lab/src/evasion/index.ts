export { CONTROLLED_FEATURES, controlledColumns, controlledMask, lowerBounds, numericIndex, transformRaw } from './features.js';
export { logitGradient, pgdAttack, project } from './pgd.js';
export type { PgdNorm, PgdOptions } from './pgd.js';
export { adversarialEpisode, adversarialLocal } from './adversarial.js';
export type { AdversarialTraining } from './adversarial.js';
export { runEvasion } from './run.js';
export type { EvasionOptions, EvasionResults, EvasionStart } from './run.js';
export { formatEvasion } from './format.js';
