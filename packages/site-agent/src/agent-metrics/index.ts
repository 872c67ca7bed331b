export { createAgentMetrics } from './agent-metrics.js';
export type { AgentMetrics, AgentMetricsOptions } from './agent-metrics.js';
export { startMetricsServer } from './server.js';
export type { MetricsServer } from './server.js';
export { openRunMetrics } from './run-wiring.js';
export type { RunMetrics } from './run-wiring.js';
