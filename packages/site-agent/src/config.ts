import { resolve } from 'node:path';
import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import { agentOptions, type AgentConfig } from './config-schema.js';

export { AGENT_DEFAULTS, CONFIG_FILE_ENV, ENV_PREFIX, agentConfigSchema, describeOptions } from './config-schema.js';
export type { AgentConfig, AgentConfigInput, OptionDescription, OptionType } from './config-schema.js';

/**
 * Loading the agent's configuration: defaults < config file (YAML or JSON) < environment (FEDMETA_AGENT_<KEY>)
 * < flags, validated once against a strict schema (unknown keys are errors), then frozen. Every problem is one
 * CONFIG error that names the key and where its value came from, never the value (it may be a secret).
 */
export interface LoadAgentConfigOptions {
  /** Config file; when absent, FEDMETA_AGENT_CONFIG names one. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Parsed command-line options. */
  flags?: Record<string, unknown>;
  /** Flag names that are not configuration (a command's other options; yargs' own are always ignored). */
  ignoreFlags?: readonly string[];
  /** Base for relative paths from the environment or flags (default: the working directory). */
  cwd?: string;
}

/** A plain-HTTP coordinator would see the credential in the clear: only with an explicit opt-in. */
function checkCoordinatorUrl(config: AgentConfig): void {
  const url = new URL(config.coordinatorUrl);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new FedmetaError(ErrorCode.CONFIG, 'coordinatorUrl must start with https:// (or http:// with allowInsecureHttp for a loopback demo)');
  }
  if (url.protocol === 'http:' && !config.allowInsecureHttp) {
    throw new FedmetaError(ErrorCode.CONFIG, 'coordinatorUrl is http://: the credential would cross the network unencrypted; use https://, or set allowInsecureHttp for a loopback demo');
  }
}

/** Loads, merges, validates and freezes the agent's configuration. */
export function loadAgentConfig(opts: LoadAgentConfigOptions = {}): AgentConfig {
  return agentOptions.load({ ...opts, env: opts.env ?? process.env, complete: checkCoordinatorUrl });
}

/** The credential file's path: the configured one, or <stateDir>/credential. */
export function credentialPath(config: AgentConfig): string {
  return config.credentialFile ?? resolve(config.stateDir, 'credential');
}

/** The configuration without secrets, for a start-up log line. */
export function redactConfig(config: AgentConfig): Record<string, unknown> {
  return agentOptions.redact(config);
}
