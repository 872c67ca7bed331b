export { createAdminHandler, ADMIN_PREFIX } from './admin-api.js';
export type { AdminApiOptions, AdminBackend, SiteView, ReleaseView } from './admin-api.js';
export { createAdminBackend, siteView } from './backend.js';
export type { AdminBackendDeps, HubView } from './backend.js';
export { RoundRunner, summarise, JOB_RECENT_ROUNDS } from './round-runner.js';
export type { RoundRunnerOptions, RoundJobStatus, RoundSource, RoundSummary } from './round-runner.js';
export { bearerMatches, MAX_BODY_BYTES } from './http.js';
