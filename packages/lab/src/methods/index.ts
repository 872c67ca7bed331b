export { BASE_METHODS, parseMethod } from './names.js';
export type { MethodKind, MethodName, MethodSpec } from './names.js';
export { trainFederated } from './federated.js';
export { trainCentralized } from './centralized.js';
export { bestVersion, innerFor } from './training.js';
export type { TrainedStart, TrainingHooks, TrainingSetup } from './training.js';
export { metaLocal, pooledBatch, prepareSite, sgdLocal, siteEpisodes, siteValidation } from './site.js';
export type { LabSite, LocalResult, LocalWork } from './site.js';
export { MemoryEngineStore } from './memory-store.js';
