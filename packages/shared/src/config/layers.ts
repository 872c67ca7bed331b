import { readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ErrorCode, FedmetaError } from '../errors.js';
import { isPlainObject, setPath } from './leaves.js';
import type { ConfigLeaf, Layer, OptionType } from './leaves.js';

/**
 * The layers a configuration is read from: the config file, the environment and the flags. Each yields a nested
 * object of the schema's shape, with text coerced to each leaf's type, plus the label of where each key came from
 * (error messages name it, never the value: the value may be a secret).
 */
export const configError = (message: string): FedmetaError => new FedmetaError(ErrorCode.CONFIG, message);

const TRUE = ['true', '1', 'yes', 'on'];
const FALSE = ['false', '0', 'no', 'off'];

/** Text that does not fit is returned unchanged, for zod to report against the key. */
function coerceScalar(type: OptionType | undefined, raw: unknown): unknown {
  if (typeof raw !== 'string') {
    // A flag parser may hand over `--data.files 2024` as a number.
    return type === 'string' && (typeof raw === 'number' || typeof raw === 'boolean') ? String(raw) : raw;
  }
  const s = raw.trim();
  if (type === 'number') return s !== '' && Number.isFinite(Number(s)) ? Number(s) : raw;
  if (type === 'boolean') {
    const b = s.toLowerCase();
    if (TRUE.includes(b)) return true;
    if (FALSE.includes(b)) return false;
  }
  return raw;
}

function parseJson(s: string, leaf: ConfigLeaf, source: string): unknown {
  try {
    return JSON.parse(s) as unknown;
  } catch {
    const example = leaf.type === 'list' ? 'write it as a JSON array, e.g. [64,32], or comma-separated' : 'quote it as a JSON object, e.g. {"kind":"median"}';
    throw configError(`${leaf.key} (from ${source}) is not valid JSON; ${example}`);
  }
}

/**
 * Environment variables and command-line strings become the leaf's type: numbers, booleans (true/1/yes/on),
 * lists (comma-separated or a JSON array, items coerced to the list's item type) and JSON for structured leaves
 * (`{"kind":"median"}`; a bare word or number is left for the schema's shorthands).
 */
export function coerce(leaf: ConfigLeaf, raw: unknown, source: string): unknown {
  if (leaf.type === 'list') {
    const item = (v: unknown): unknown => coerceScalar(leaf.items, v);
    if (Array.isArray(raw)) return raw.map(item);
    if (typeof raw !== 'string') return raw;
    const s = raw.trim();
    if (s.startsWith('[')) {
      const v = parseJson(s, leaf, source);
      return Array.isArray(v) ? v.map(item) : v;
    }
    return s === '' ? [] : s.split(',').map((part) => item(part.trim()));
  }
  if (leaf.type === 'json' && typeof raw === 'string') {
    const s = raw.trim();
    if (s.startsWith('{') || s.startsWith('[')) return parseJson(s, leaf, source);
    return s !== '' && Number.isFinite(Number(s)) ? Number(s) : s;
  }
  return coerceScalar(leaf.type, raw);
}

/** Reads a YAML or JSON (by extension) file of options; an empty file is no options. */
export function readConfigFile(file: string): Layer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw configError(`cannot read the config file ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'}); check the path`);
  }
  const json = extname(file).toLowerCase() === '.json';
  let value: unknown;
  // A parser message can quote a line of the file, and so a secret in it: only the position is reported.
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

/** A value of a name-or-path key (a built-in schema name, or a schema file) is a path when it has a slash or a file extension. */
export const looksLikePath = (v: string): boolean => /[\\/]|\.(json|ya?ml)$/i.test(v);

/** Resolves the relative paths a layer gives, in place, against `base` (the config file's folder, or the cwd). */
export function resolvePaths(layer: Layer, base: string, pathKeys: readonly string[], nameOrPathKeys: ReadonlySet<string>): void {
  for (const key of pathKeys) {
    const p = key.split('.');
    let holder: unknown = layer;
    for (const k of p.slice(0, -1)) holder = isPlainObject(holder) ? holder[k] : undefined;
    if (!isPlainObject(holder)) continue;
    const last = p[p.length - 1]!;
    const v = holder[last];
    if (typeof v === 'string') {
      if (nameOrPathKeys.has(key) && !looksLikePath(v)) continue;
      holder[last] = resolve(base, v);
    } else if (Array.isArray(v)) {
      holder[last] = v.map((x) => (typeof x === 'string' ? resolve(base, x) : x));
    }
  }
}

export interface LabelledLayer {
  layer: Layer;
  /** Where each leaf key set by this layer came from, for error messages. */
  labels: Map<string, string>;
}

/** The variables under `prefix` (empty ones ignored); one that names no option is an error, as a typo would be. */
export function envLayer(env: NodeJS.ProcessEnv, prefix: string, skip: string, leafByEnv: ReadonlyMap<string, ConfigLeaf>, label: (name: string) => string): LabelledLayer {
  const layer: Layer = {};
  const labels = new Map<string, string>();
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(prefix) || name === skip || raw === undefined || raw === '') continue;
    const leaf = leafByEnv.get(name);
    if (!leaf) throw configError(`unknown environment variable ${name}; --help lists the ${prefix} variables`);
    setPath(layer, leaf.path, coerce(leaf, raw, label(name)));
    labels.set(leaf.key, label(name));
  }
  return { layer, labels };
}

const camel = (s: string): string => s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/**
 * Parsed flags, nested (`{ server: { port } }`) or dotted (`server.port`), kebab-case allowed. A flag that names
 * no option is an error unless `ignore` lists it (in either spelling: yargs hands over both).
 */
export function flagLayer(
  flags: Record<string, unknown>,
  ignore: ReadonlySet<string>,
  leafByKey: ReadonlyMap<string, ConfigLeaf>,
  sections: ReadonlySet<string>,
  label: (leaf: ConfigLeaf) => string,
): LabelledLayer {
  const layer: Layer = {};
  const labels = new Map<string, string>();
  const add = (p: string[], v: unknown): void => {
    if (v === undefined) return;
    const key = p.join('.');
    const leaf = leafByKey.get(key);
    if (leaf) {
      setPath(layer, leaf.path, coerce(leaf, v, label(leaf)));
      labels.set(leaf.key, label(leaf));
      return;
    }
    if (sections.has(key) && isPlainObject(v)) {
      for (const [k, child] of Object.entries(v)) add([...p, ...k.split('.').map(camel)], child);
      return;
    }
    throw configError(`unknown option --${key}; --help lists the options`);
  };
  for (const [k, v] of Object.entries(flags)) {
    const p = k.split('.').map(camel);
    if (!ignore.has(k) && !ignore.has(p.join('.'))) add(p, v);
  }
  return { layer, labels };
}
