export { runPrivacyCost } from './run.js';
export type { LocalDpOptions, PrivacyCostOptions, PrivacyCostResults, PrivacyCostRow, Setting } from './run.js';
export { formatPrivacyCost } from './format.js';
export { dpSgdLocal, siteSamplingRate } from './site-dp.js';
