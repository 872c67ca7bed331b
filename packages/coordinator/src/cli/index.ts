export { runCli } from './main.js';
export type { CliIo, CommonArgs } from './context.js';
export { systemIo, ADMIN_URL_ENV, ADMIN_TOKEN_ENV, ADMIN_CA_ENV } from './context.js';
export { AdminClient } from './admin-client.js';
export type { AdminClientOptions } from './admin-client.js';
export { formatStatus, formatSites, formatRecord, formatJob, formatEnrollment } from './format.js';
export type { StatusView } from './format.js';
export { flagsFrom, serveOptions, optionHelp } from './serve-command.js';
