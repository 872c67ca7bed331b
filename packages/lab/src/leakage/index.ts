export { asLayers, batchGradient, flatten, sumUpdates } from './gradient.js';
export { countPositives, firstLayerCandidates, labelOfSingle, labelRecovery, outputBiasGradient } from './analytic.js';
export { dlgReconstruct } from './dlg.js';
export type { DlgOptions, DlgResult } from './dlg.js';
export { marginalMedian, rowsOf, scoreRecovery } from './match.js';
export type { RecoveryScore } from './match.js';
export { DEFENCES, runLeakage } from './run.js';
export type { Defence, LeakageCell, LeakageOptions, LeakageResults } from './run.js';
export { formatLeakage } from './format.js';
