import { readFileSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import {
  AGENT_DEFAULTS,
  CONFIG_FILE_ENV,
  ENV_PREFIX,
  LEAF_BY_ENV,
  LEAF_BY_KEY,
  PATH_KEYS,
  SECTIONS,
  agentConfigSchema,
  getPath,
  type AgentConfig,
  type Leaf,
} from './config-schema.js';

export { AGENT_DEFAULTS, CONFIG_FILE_ENV, ENV_PREFIX, agentConfigSchema, describeOptions } from './config-schema.js';
export type { AgentConfig, AgentConfigInput, OptionDescription, OptionType } from './config-schema.js';

/**
 * Loading the agent's configuration: defaults < config file (YAML or JSON) < environment (FEDMETA_AGENT_<KEY>)
 * < flags, validated once against a strict schema (unknown keys are errors), then frozen. Every problem is one
 * CONFIG error that names the key and where its value came from, never the value (it may be a secret).
 */
const configError = (message: string): FedmetaError => new FedmetaError(ErrorCode.CONFIG, message);

type Layer = Record<string, unknown>;

function isPlainObject(v: unknown): v is Layer {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

/** Strings from the environment or the command line become the option's type; zod reports what still does not fit. */
function coerce(leaf: Leaf, raw: unknown): unknown {
  if (leaf.type === 'list') {
    if (Array.isArray(raw)) return raw.map(String);
    if (typeof raw === 'string') return raw.trim() === '' ? [] : raw.split(',').map((p) => p.trim());
    return raw;
  }
  if (typeof raw !== 'string') return raw;
  const s = raw.trim();
  if (leaf.type === 'number') return s !== '' && Number.isFinite(Number(s)) ? Number(s) : raw;
  if (leaf.type === 'boolean') {
    const b = s.toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(b)) return true;
    if (['false', '0', 'no', 'off'].includes(b)) return false;
  }
  return raw;
}

function readConfigFile(file: string): Layer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw configError(`cannot read the config file ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'}); check the path`);
  }
  const json = extname(file).toLowerCase() === '.json';
  let value: unknown;
  // A parser message can quote a line of the file, and so a token: only the position is reported.
  try {
    value = json ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    const pos = (e as { linePos?: { line: number; col: number }[] }).linePos?.[0];
    throw configError(`the config file ${file} is not valid ${json ? 'JSON' : 'YAML'}${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}`);
  }
  if (value === null || value === undefined) return {};
  if (!isPlainObject(value)) throw configError(`the config file ${file} must hold a mapping of options at its top level`);
  return value;
}

/** A `schema` value is a built-in name unless it looks like a path. */
const looksLikePath = (v: string): boolean => /[\\/]|\.(json|ya?ml)$/i.test(v);

function resolvePaths(layer: Layer, base: string): void {
  for (const key of PATH_KEYS) {
    const p = key.split('.');
    const holder = p.length > 1 ? getPath(layer, p.slice(0, -1)) : layer;
    if (!isPlainObject(holder)) continue;
    const last = p[p.length - 1]!;
    const v = holder[last];
    if (typeof v === 'string') {
      if (key === 'schema' && !looksLikePath(v)) continue;
      holder[last] = resolve(base, v);
    } else if (Array.isArray(v)) {
      holder[last] = v.map((x) => (typeof x === 'string' ? resolve(base, x) : x));
    }
  }
}

function setPath(obj: Layer, p: readonly string[], v: unknown): void {
  let at = obj;
  for (const k of p.slice(0, -1)) {
    if (!isPlainObject(at[k])) at[k] = {};
    at = at[k] as Layer;
  }
  at[p[p.length - 1]!] = v;
}

/** Sections merge key by key; any other value replaces the one below it. */
function merge(target: Layer, layer: Layer, prefix: string[], label: string, sources: Map<string, string>): void {
  for (const [k, v] of Object.entries(layer)) {
    if (v === undefined) continue;
    const p = [...prefix, k];
    const key = p.join('.');
    const cur = target[k];
    if (SECTIONS.has(key) && isPlainObject(v) && isPlainObject(cur)) {
      merge(cur, v, p, label, sources);
      continue;
    }
    target[k] = v;
    sources.set(key, label);
  }
}

function envLayer(env: NodeJS.ProcessEnv): Layer {
  const layer: Layer = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || name === CONFIG_FILE_ENV || raw === undefined || raw === '') continue;
    const leaf = LEAF_BY_ENV.get(name);
    if (!leaf) throw configError(`unknown environment variable ${name}; --help lists the ${ENV_PREFIX} variables`);
    setPath(layer, leaf.path, coerce(leaf, raw));
  }
  return layer;
}

const camel = (s: string): string => s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** Parsed flags, nested (`{ tls: { ca } }`) or dotted (`tls.ca`), kebab-case allowed. Keys not in the table are errors. */
function flagLayer(flags: Record<string, unknown>, ignore: ReadonlySet<string>): Layer {
  const layer: Layer = {};
  const add = (p: string[], v: unknown): void => {
    if (v === undefined) return;
    const key = p.join('.');
    const leaf = LEAF_BY_KEY.get(key);
    if (leaf) {
      setPath(layer, leaf.path, coerce(leaf, v));
      return;
    }
    if (SECTIONS.has(key) && isPlainObject(v)) {
      for (const [k, child] of Object.entries(v)) add([...p, ...k.split('.').map(camel)], child);
      return;
    }
    throw configError(`unknown option --${key}; --help lists the options`);
  };
  for (const [k, v] of Object.entries(flags)) if (!ignore.has(k) && !k.includes('-')) add(k.split('.').map(camel), v);
  return layer;
}

function describeIssues(error: z.ZodError, sources: Map<string, string>): string {
  const sourceOf = (p: string[]): string | undefined => {
    for (let n = p.length; n > 0; n--) {
      const s = sources.get(p.slice(0, n).join('.'));
      if (s) return s;
    }
    return undefined;
  };
  return error.issues
    .flatMap((issue) => {
      const base = issue.path.map(String);
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((k) => {
          const src = sourceOf([...base, k]);
          return `${[...base, k].join('.')}: unknown key${src ? ` (from ${src})` : ''}`;
        });
      }
      const src = sourceOf(base);
      const message = issue.code === 'invalid_type' && issue.received === 'undefined' ? 'is required' : issue.message;
      return [`${base.join('.') || '(top level)'}: ${message}${src ? ` (from ${src})` : ''}`];
    })
    .join('; ');
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
  return v;
}

export interface LoadAgentConfigOptions {
  /** Config file; when absent, FEDMETA_AGENT_CONFIG names one. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Parsed command-line options. */
  flags?: Record<string, unknown>;
  /** Flag names that are not configuration (yargs' own, a command's other options). */
  ignoreFlags?: readonly string[];
  /** Base for relative paths from the environment or flags (default: the working directory). */
  cwd?: string;
}

const ALWAYS_IGNORED = ['_', '$0', 'config', 'help', 'version'];

/** Loads, merges, validates and freezes the agent's configuration. */
export function loadAgentConfig(opts: LoadAgentConfigOptions = {}): AgentConfig {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  const sources = new Map<string, string>();
  const merged = structuredClone(AGENT_DEFAULTS) as unknown as Layer;
  resolvePaths(merged, cwd);

  const file = opts.file ?? (env[CONFIG_FILE_ENV] || undefined);
  if (file !== undefined) {
    const abs = resolve(cwd, file);
    const layer = readConfigFile(abs);
    resolvePaths(layer, dirname(abs));
    merge(merged, layer, [], `config file ${abs}`, sources);
  }
  const fromEnv = envLayer(env);
  resolvePaths(fromEnv, cwd);
  merge(merged, fromEnv, [], 'the environment', sources);

  const flags = flagLayer(opts.flags ?? {}, new Set([...ALWAYS_IGNORED, ...(opts.ignoreFlags ?? [])]));
  resolvePaths(flags, cwd);
  merge(merged, flags, [], 'a flag', sources);

  const parsed = agentConfigSchema.safeParse(merged);
  if (!parsed.success) throw configError(`invalid agent configuration: ${describeIssues(parsed.error, sources)}`);
  const config = parsed.data;
  const url = new URL(config.coordinatorUrl);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw configError('coordinatorUrl must start with https:// (or http:// with allowInsecureHttp for a loopback demo)');
  }
  if (url.protocol === 'http:' && !config.allowInsecureHttp) {
    throw configError('coordinatorUrl is http://: the credential would cross the network unencrypted; use https://, or set allowInsecureHttp for a loopback demo');
  }
  return deepFreeze(config);
}

/** The credential file's path: the configured one, or <stateDir>/credential. */
export function credentialPath(config: AgentConfig): string {
  return config.credentialFile ?? resolve(config.stateDir, 'credential');
}

/** The configuration without secrets, for a start-up log line. */
export function redactConfig(config: AgentConfig): Record<string, unknown> {
  const copy = structuredClone(config) as Record<string, unknown>;
  for (const k of ['enrollmentToken', 'credential', 'seed']) if (copy[k] !== undefined) copy[k] = '[redacted]';
  return copy;
}
