export { createCoordinatorMetrics } from './coordinator-metrics.js';
export type { CoordinatorMetrics, CoordinatorMetricsOptions, MetricsEngine, PacketServer, PacketSocket } from './coordinator-metrics.js';
export { privacyView, PRIVACY_EXTENSION } from './privacy.js';
export type { PrivacyView } from './privacy.js';
export { attachObservability } from './attach.js';
export type { ObservabilityDeps } from './attach.js';
