import { dirname, resolve } from 'node:path';
import type { z } from 'zod';
import { configError, envLayer, flagLayer, readConfigFile, resolvePaths } from './layers.js';
import { collectLeaves, getPath, isPlainObject, sectionsOf } from './leaves.js';
import type { ConfigLeaf, Layer, OptionDescription } from './leaves.js';

/**
 * One layered configuration loader for every fedmeta program: defaults < config file (YAML or JSON) < environment
 * (<PREFIX><KEY_PATH>) < flags, validated once against a strict schema, then frozen. Every problem is one CONFIG
 * error naming the key and where its value came from, never the value itself (it may be a secret).
 */
export interface ConfigDefinition<S extends z.ZodTypeAny> {
  /** Names the configuration in errors: "invalid <name> configuration: …". */
  name: string;
  /** Strict zod schema with help text (`.describe`) on every leaf; nested objects are sections. */
  schema: S;
  /** Defaults (schema input), the bottom layer; --help shows them. */
  defaults: object;
  /** Prefix of the environment variables, e.g. FEDMETA_AGENT_; <prefix>CONFIG names the config file. */
  envPrefix: string;
  /** Keys holding file system paths (strings or lists of them): relative ones resolve against the config file's folder, or the cwd. */
  pathKeys?: readonly string[];
  /** Path keys whose value may instead be a built-in name: resolved only when it looks like a path. */
  nameOrPathKeys?: readonly string[];
  /** Keys that `redact` hides. */
  secretKeys?: readonly string[];
  /**
   * How errors name a value's origin besides the config file: 'exact' names the variable or flag
   * ("environment FEDMETA_X_PORT", "flag --port"); 'layer' only the layer ("the environment", "a flag").
   */
  sourceDetail?: 'exact' | 'layer';
}

export interface ConfigLoadOptions<T> {
  /** Config file; when absent, the <prefix>CONFIG environment variable names one. */
  file?: string;
  env: NodeJS.ProcessEnv;
  /** Parsed command-line options: nested objects or dotted keys (`server.port`), kebab-case allowed. */
  flags?: Record<string, unknown>;
  /** Flag names that are not configuration (a command's other options); yargs' own and `config` always are. */
  ignoreFlags?: readonly string[];
  /** Base for relative paths given by the environment or flags (default: the working directory). */
  cwd?: string;
  /** Checks and additions that need more than the schema (files it names, URL rules); runs before freezing. */
  complete?: (config: T) => void;
}

export interface ConfigLoader<T> {
  envPrefix: string;
  /** <prefix>CONFIG: the environment variable that names the config file. */
  configFileEnv: string;
  leaves: readonly ConfigLeaf[];
  leafByKey: ReadonlyMap<string, ConfigLeaf>;
  leafByEnv: ReadonlyMap<string, ConfigLeaf>;
  /** Dotted names of the nested sections, which merge key by key across layers. */
  sections: ReadonlySet<string>;
  /** Every option, for `--help`: the config file option first, then each leaf. */
  describeOptions(): OptionDescription[];
  /** Loads, merges, validates and deep-freezes the configuration. */
  load(opts: ConfigLoadOptions<T>): T;
  /** A copy without the secret keys' values, for logs. */
  redact(config: T): Record<string, unknown>;
}

const ALWAYS_IGNORED_FLAGS = ['_', '$0', 'config', 'help', 'version'];

/**
 * Layers merge leaf by leaf: sections recurse, other values replace the one below, except that an object leaf
 * (a `kind`-tagged union such as an optimizer) given with the same kind, or none, is patched key by key.
 */
function merge(target: Layer, layer: Layer, prefix: string[], label: (key: string) => string, sections: ReadonlySet<string>, sources: Map<string, string>): void {
  for (const [k, v] of Object.entries(layer)) {
    if (v === undefined) continue;
    const path = [...prefix, k];
    const key = path.join('.');
    const cur = target[k];
    if (sections.has(key) && isPlainObject(v) && isPlainObject(cur)) {
      merge(cur, v, path, label, sections, sources);
      continue;
    }
    const sameKind = isPlainObject(cur) && isPlainObject(v) && (v['kind'] === undefined || v['kind'] === cur['kind']);
    target[k] = sameKind ? { ...cur, ...v } : v;
    sources.set(key, label(key));
  }
}

/** One line per zod issue, naming the key and the layer that set it (or the nearest section that did). */
function describeIssues(error: z.ZodError, sources: ReadonlyMap<string, string>): string {
  const from = (p: string[]): string => {
    for (let n = p.length; n > 0; n--) {
      const s = sources.get(p.slice(0, n).join('.'));
      if (s) return ` (from ${s})`;
    }
    return '';
  };
  return error.issues
    .flatMap((issue) => {
      const base = issue.path.map(String);
      if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => `${[...base, k].join('.')}: unknown key${from([...base, k])}`);
      const message = issue.code === 'invalid_type' && issue.received === 'undefined' ? 'is required' : issue.message;
      return [`${base.join('.') || '(top level)'}: ${message}${from(base)}`];
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

export function defineConfig<S extends z.ZodTypeAny>(def: ConfigDefinition<S>): ConfigLoader<z.output<S>> {
  type T = z.output<S>;
  const { envPrefix, pathKeys = [], secretKeys = [] } = def;
  const configFileEnv = `${envPrefix}CONFIG`;
  const nameOrPath = new Set(def.nameOrPathKeys ?? []);
  const exact = (def.sourceDetail ?? 'exact') === 'exact';
  const leaves = collectLeaves(def.schema, envPrefix, def.defaults);
  const leafByKey = new Map(leaves.map((l) => [l.key, l]));
  const leafByEnv = new Map(leaves.map((l) => [l.env, l]));
  const sections = sectionsOf(leaves);

  const describeOptions = (): OptionDescription[] => [
    {
      key: 'config',
      env: configFileEnv,
      flag: '--config',
      type: 'string',
      default: undefined,
      help: 'YAML or JSON configuration file; environment variables override it and flags override both.',
    },
    ...leaves.map(({ path: _path, items: _items, choices, ...d }) => (choices ? { ...d, choices: [...choices] } : { ...d })),
  ];

  const load = (opts: ConfigLoadOptions<T>): T => {
    const cwd = opts.cwd ?? process.cwd();
    const sources = new Map<string, string>();
    const merged = structuredClone(def.defaults) as Layer;
    resolvePaths(merged, cwd, pathKeys, nameOrPath);

    const file = opts.file ?? (opts.env[configFileEnv] || undefined);
    if (file !== undefined) {
      const abs = resolve(cwd, file);
      const layer = readConfigFile(abs);
      resolvePaths(layer, dirname(abs), pathKeys, nameOrPath);
      merge(merged, layer, [], () => `config file ${abs}`, sections, sources);
    }
    const env = envLayer(opts.env, envPrefix, configFileEnv, leafByEnv, (name) => (exact ? `environment ${name}` : 'the environment'));
    const ignore = new Set([...ALWAYS_IGNORED_FLAGS, ...(opts.ignoreFlags ?? [])]);
    const flags = flagLayer(opts.flags ?? {}, ignore, leafByKey, sections, (leaf) => (exact ? `flag ${leaf.flag}` : 'a flag'));
    for (const { layer, labels } of [env, flags]) {
      resolvePaths(layer, cwd, pathKeys, nameOrPath);
      merge(merged, layer, [], (key) => labels.get(key) ?? '', sections, sources);
    }

    const parsed = def.schema.safeParse(merged);
    if (!parsed.success) throw configError(`invalid ${def.name} configuration: ${describeIssues(parsed.error, sources)}`);
    const config = parsed.data as T;
    opts.complete?.(config);
    return deepFreeze(config);
  };

  const redact = (config: T): Record<string, unknown> => {
    const copy = structuredClone(config) as Layer;
    for (const key of secretKeys) {
      const p = key.split('.');
      const holder = getPath(copy, p.slice(0, -1));
      const last = p[p.length - 1]!;
      if (isPlainObject(holder) && holder[last] !== undefined) holder[last] = '[redacted]';
    }
    return copy;
  };

  return { envPrefix, configFileEnv, leaves, leafByKey, leafByEnv, sections, describeOptions, load, redact };
}
