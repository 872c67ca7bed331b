export { createObservabilityRoutes, historyEntry, historyView, DASHBOARD_PATH, HISTORY_PATH, METRICS_PATH, HISTORY_DEFAULT_LIMIT } from './routes.js';
export type { HistoryView, ObservabilityRoutesOptions, RoundHistoryEntry, Route } from './routes.js';
export { DASHBOARD_HTML, DASHBOARD_HEADERS } from './page.js';
