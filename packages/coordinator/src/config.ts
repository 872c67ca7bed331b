import { readFileSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import {
  CONFIG_FILE_ENV,
  COORDINATOR_DEFAULTS,
  ENV_PREFIX,
  LEAF_BY_ENV,
  LEAF_BY_KEY,
  PATH_KEYS,
  SECTIONS,
  coordinatorConfigSchema,
  getPath,
} from './config-schema.js';
import type { CoordinatorConfig, Leaf } from './config-schema.js';

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

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

/** Environment variables and command-line strings become the option's type; zod reports what does not fit. */
function coerce(leaf: Leaf, raw: unknown, source: string): unknown {
  if (typeof raw !== 'string') return raw;
  const s = raw.trim();
  const num = s !== '' && Number.isFinite(Number(s)) ? Number(s) : undefined;
  switch (leaf.type) {
    case 'number':
      return num ?? raw;
    case 'boolean': {
      const b = s.toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(b)) return true;
      if (['false', '0', 'no', 'off'].includes(b)) return false;
      return raw;
    }
    case 'list':
      if (s.startsWith('[')) return parseJson(s, leaf.key, source);
      return s === '' ? [] : s.split(',').map((p) => (Number.isFinite(Number(p.trim())) ? Number(p.trim()) : p.trim()));
    case 'json':
      if (s.startsWith('{') || s.startsWith('[')) return parseJson(s, leaf.key, source);
      return num ?? s;
    default:
      return raw;
  }
}

function parseJson(s: string, key: string, source: string): unknown {
  try {
    return JSON.parse(s) as unknown;
  } catch {
    throw configError(`${key} (from ${source}) is not valid JSON; quote it as a JSON object, e.g. {"kind":"median"}`);
  }
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw configError(`cannot read the config file ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'}); check the path`);
  }
  let value: unknown;
  // Parser messages can quote the file's lines (and so a secret in it): report the position only.
  try {
    value = extname(file).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    const pos = (e as { linePos?: { line: number; col: number }[] }).linePos?.[0];
    throw configError(`the config file ${file} is not valid ${extname(file) === '.json' ? 'JSON' : 'YAML'}${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}`);
  }
  if (value === null || value === undefined) return {};
  if (!isPlainObject(value)) throw configError(`the config file ${file} must hold a mapping of options at its top level`);
  return value;
}

function resolvePaths(layer: Record<string, unknown>, base: string): void {
  for (const key of PATH_KEYS) {
    const path = key.split('.');
    const parent = getPath(layer, path.slice(0, -1));
    const last = path[path.length - 1] as string;
    if (!isPlainObject(parent) && path.length > 1) continue;
    const holder = (path.length > 1 ? parent : layer) as Record<string, unknown>;
    const v = holder[last];
    if (typeof v !== 'string') continue;
    // A schema value is a built-in name unless it looks like a path.
    if (key === 'schema' && !/[\\/]|\.(json|ya?ml)$/i.test(v)) continue;
    holder[last] = resolve(base, v);
  }
}

/** Layers set leaves; sections merge key by key; a `{kind}` leaf of the same (or no) kind is patched, else replaced. */
function mergeLayer(
  target: Record<string, unknown>,
  layer: Record<string, unknown>,
  prefix: string[],
  label: string,
  sources: Map<string, string>,
): void {
  for (const [k, v] of Object.entries(layer)) {
    if (v === undefined) continue;
    const path = [...prefix, k];
    const key = path.join('.');
    const cur = target[k];
    if (SECTIONS.has(key) && isPlainObject(v) && isPlainObject(cur)) {
      mergeLayer(cur, v, path, label, sources);
      continue;
    }
    const samekind = isPlainObject(cur) && isPlainObject(v) && (v.kind === undefined || v.kind === cur.kind);
    target[k] = samekind ? { ...(cur as object), ...v } : v;
    sources.set(key, label);
  }
}

function setPath(obj: Record<string, unknown>, path: string[], v: unknown): void {
  let at = obj;
  for (const p of path.slice(0, -1)) {
    if (!isPlainObject(at[p])) at[p] = {};
    at = at[p] as Record<string, unknown>;
  }
  at[path[path.length - 1] as string] = v;
}

function envLayer(env: NodeJS.ProcessEnv): { layer: Record<string, unknown>; labels: Map<string, string> } {
  const layer: Record<string, unknown> = {};
  const labels = new Map<string, string>();
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || name === CONFIG_FILE_ENV || raw === undefined || raw === '') continue;
    const leaf = LEAF_BY_ENV.get(name);
    if (!leaf) throw configError(`unknown environment variable ${name}; --help lists the FEDMETA_COORDINATOR_ variables`);
    setPath(layer, leaf.path, coerce(leaf, raw, `environment ${name}`));
    labels.set(leaf.key, `environment ${name}`);
  }
  return { layer, labels };
}

const camel = (s: string) => s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const IGNORED_FLAGS = new Set(['_', '$0', 'config']);

function flagLayer(flags: Record<string, unknown>): Record<string, unknown> {
  const layer: Record<string, unknown> = {};
  const add = (path: string[], v: unknown): void => {
    if (v === undefined) return;
    const key = path.join('.');
    const leaf = LEAF_BY_KEY.get(key);
    if (leaf) {
      setPath(layer, leaf.path, coerce(leaf, v, `flag ${leaf.flag}`));
      return;
    }
    if (SECTIONS.has(key) && isPlainObject(v)) {
      for (const [k, child] of Object.entries(v)) add([...path, ...k.split('.').map(camel)], child);
      return;
    }
    throw configError(`unknown option --${key}; --help lists the options`);
  };
  for (const [k, v] of Object.entries(flags)) if (!IGNORED_FLAGS.has(k)) add(k.split('.').map(camel), v);
  return layer;
}

function formatIssues(error: z.ZodError, sources: Map<string, string>): string {
  const sourceOf = (path: string[]) => {
    for (let n = path.length; n > 0; n--) {
      const s = sources.get(path.slice(0, n).join('.'));
      if (s) return s;
    }
    return undefined;
  };
  return error.issues
    .flatMap((issue) => {
      const base = issue.path.map(String);
      if (issue.code === z.ZodIssueCode.unrecognized_keys) {
        return issue.keys.map((k) => {
          const src = sourceOf([...base, k]);
          return `${[...base, k].join('.')}: unknown key${src ? ` (from ${src})` : ''}`;
        });
      }
      const src = sourceOf(base);
      return [`${base.join('.') || '(root)'}: ${issue.message}${src ? ` (from ${src})` : ''}`];
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

export interface LoadConfigOptions {
  /** Config file; when absent, FEDMETA_COORDINATOR_CONFIG names one. */
  file?: string;
  env: NodeJS.ProcessEnv;
  /** Parsed command-line options: nested objects or dotted keys (`server.port`, kebab-case allowed). */
  flags: Record<string, unknown>;
  /** Base for relative paths given by environment or flags (default: the working directory). */
  cwd?: string;
}

/** Loads, merges, validates and freezes the configuration; every problem is one CONFIG error naming key paths. */
export function loadCoordinatorConfig(opts: LoadConfigOptions): CoordinatorConfig {
  const cwd = opts.cwd ?? process.cwd();
  const sources = new Map<string, string>();
  const merged = structuredClone(COORDINATOR_DEFAULTS) as unknown as Record<string, unknown>;
  resolvePaths(merged, cwd);

  const file = opts.file ?? (opts.env[CONFIG_FILE_ENV] || undefined);
  if (file !== undefined) {
    const path = resolve(cwd, file);
    const layer = readConfigFile(path);
    resolvePaths(layer, dirname(path));
    mergeLayer(merged, layer, [], `config file ${path}`, sources);
  }
  const env = envLayer(opts.env);
  resolvePaths(env.layer, cwd);
  mergeLayer(merged, env.layer, [], 'environment', sources);
  for (const [k, label] of env.labels) sources.set(k, label);

  const flags = flagLayer(opts.flags);
  resolvePaths(flags, cwd);
  mergeLayer(merged, flags, [], 'flags', sources);
  for (const k of LEAF_BY_KEY.keys()) if (getPath(flags, k.split('.')) !== undefined) sources.set(k, `flag --${k}`);

  const parsed = coordinatorConfigSchema.safeParse(merged);
  if (!parsed.success) {
    throw configError(`invalid coordinator configuration: ${formatIssues(parsed.error, sources)}`);
  }
  const config = parsed.data;
  if (config.adminTokenFile) {
    let token: string;
    try {
      token = readFileSync(config.adminTokenFile, 'utf8').trim();
    } catch (e) {
      throw configError(`adminTokenFile: cannot read ${config.adminTokenFile} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (token.length < 16) throw configError(`adminTokenFile: the token in ${config.adminTokenFile} must be at least 16 characters`);
    config.adminToken = token;
  }
  return deepFreeze(config);
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
  const copy = structuredClone(config) as Record<string, unknown>;
  if (copy.adminToken !== undefined) copy.adminToken = '[redacted]';
  return copy;
}
