import { readFileSync } from 'node:fs';
import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import { coordinatorOptions } from './config-schema.js';
import type { CoordinatorConfig } from './config-schema.js';

export {
  CONFIG_FILE_ENV,
  COORDINATOR_DEFAULTS,
  ENV_PREFIX,
  coordinatorConfigSchema,
  describeOptions,
} from './config-schema.js';
export type { CoordinatorConfig, CoordinatorConfigInput, OptionDescription, OptionType } from './config-schema.js';

/**
 * Loading the coordinator's configuration: defaults < config file (YAML or JSON) < environment
 * (FEDMETA_COORDINATOR_<KEY_PATH>) < flags, validated once against a schema that rejects unknown keys, then frozen.
 */
function configError(message: string): FedmetaError {
  return new FedmetaError(ErrorCode.CONFIG, message);
}

export interface LoadConfigOptions {
  /** Config file; when absent, FEDMETA_COORDINATOR_CONFIG names one. */
  file?: string;
  env: NodeJS.ProcessEnv;
  /** Parsed command-line options: nested objects or dotted keys (`server.port`, kebab-case allowed). */
  flags: Record<string, unknown>;
  /** Base for relative paths given by environment or flags (default: the working directory). */
  cwd?: string;
}

/** adminTokenFile stands for adminToken: the token is read once, at load, so that a missing file stops start-up. */
function readAdminToken(config: CoordinatorConfig): void {
  if (!config.adminTokenFile) return;
  let token: string;
  try {
    token = readFileSync(config.adminTokenFile, 'utf8').trim();
  } catch (e) {
    throw configError(`adminTokenFile: cannot read ${config.adminTokenFile} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (token.length < 16) throw configError(`adminTokenFile: the token in ${config.adminTokenFile} must be at least 16 characters`);
  config.adminToken = token;
}

/** Loads, merges, validates and freezes the configuration; every problem is one CONFIG error naming key paths. */
export function loadCoordinatorConfig(opts: LoadConfigOptions): CoordinatorConfig {
  return coordinatorOptions.load({ ...opts, complete: readAdminToken });
}

// ---- checks at serve time ----

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/**
 * What `serve` needs beyond a valid configuration: a certificate (or an explicit opt-in to plain HTTP) and
 * readable TLS files. Throws CONFIG; returns warnings for the log.
 */
export function checkServeConfig(config: CoordinatorConfig): string[] {
  const s = config.server;
  if (!s.tlsCert && !s.allowInsecureHttp) {
    throw configError('server.tlsCert: the coordinator serves HTTPS only; give server.tlsCert and server.tlsKey, or set server.allowInsecureHttp for a loopback demo');
  }
  for (const key of ['tlsCert', 'tlsKey', 'tlsCa'] as const) {
    const path = s[key];
    if (!path) continue;
    try {
      readFileSync(path);
    } catch (e) {
      throw configError(`server.${key}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  const warnings: string[] = [];
  if (!s.tlsCert && !isLoopbackHost(s.host)) warnings.push(`serving plain HTTP on ${s.host}: site traffic and credentials cross the network unencrypted`);
  if (!config.adminToken) warnings.push('no adminToken: the admin API (status, release, rollback) is disabled');
  if (!config.schema) warnings.push('no feature schema configured: sites cannot be checked against the federation\'s schema');
  return warnings;
}

/** The configuration without secrets, for logs and `status`. */
export function redactConfig(config: CoordinatorConfig): Record<string, unknown> {
  return coordinatorOptions.redact(config);
}
