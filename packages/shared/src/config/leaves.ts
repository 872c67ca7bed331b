import { z } from 'zod';

/**
 * The option table of a configuration, read off its zod schema: every leaf key with its environment name, flag,
 * type, default and help text. `--help`, the environment layer and the flag layer are all built from it, so they
 * cannot disagree with the schema that validates the result.
 */
export type OptionType = 'string' | 'number' | 'boolean' | 'enum' | 'list' | 'json';

export interface OptionDescription {
  key: string;
  env: string;
  flag: string;
  type: OptionType;
  choices?: string[];
  default: unknown;
  help: string;
}

export interface ConfigLeaf extends OptionDescription {
  path: string[];
  /** For a list: the type its items are coerced to when they come as text (`64,32`, `a.csv,b.csv`). */
  items?: OptionType;
}

export type Layer = Record<string, unknown>;

export function isPlainObject(v: unknown): v is Layer {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

export function getPath(obj: unknown, path: readonly string[]): unknown {
  let at: unknown = obj;
  for (const k of path) at = typeof at === 'object' && at !== null ? (at as Layer)[k] : undefined;
  return at;
}

export function setPath(obj: Layer, path: readonly string[], v: unknown): void {
  let at = obj;
  for (const k of path.slice(0, -1)) {
    if (!isPlainObject(at[k])) at[k] = {};
    at = at[k] as Layer;
  }
  at[path[path.length - 1]!] = v;
}

/** Strips optional/default/nullable/effects wrappers (preprocess shorthands included), keeping the first description met. */
function unwrap(s: z.ZodTypeAny): { inner: z.ZodTypeAny; help: string } {
  let help = s.description;
  let inner = s;
  for (;;) {
    if (inner instanceof z.ZodOptional || inner instanceof z.ZodDefault || inner instanceof z.ZodNullable) inner = inner._def.innerType as z.ZodTypeAny;
    else if (inner instanceof z.ZodEffects) inner = inner._def.schema as z.ZodTypeAny;
    else break;
    help ??= inner.description;
  }
  return { inner, help: help ?? '' };
}

/** Anything that is not a plain scalar, enum or list (a union, a tagged object) is given as JSON text. */
function typeOf(s: z.ZodTypeAny): OptionType {
  return s instanceof z.ZodNumber ? 'number'
    : s instanceof z.ZodBoolean ? 'boolean'
    : s instanceof z.ZodString ? 'string'
    : s instanceof z.ZodEnum ? 'enum'
    : s instanceof z.ZodArray ? 'list'
    : 'json';
}

/** `perConnectionMessagesPerSecond` → `PER_CONNECTION_MESSAGES_PER_SECOND`. */
const upperSnake = (k: string): string => k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

/** Every leaf below the schema's nested objects, in schema order; nested objects themselves are sections. */
export function collectLeaves(schema: z.ZodTypeAny, envPrefix: string, defaults: unknown, prefix: string[] = [], out: ConfigLeaf[] = []): ConfigLeaf[] {
  const { inner } = unwrap(schema);
  if (!(inner instanceof z.ZodObject)) return out;
  for (const [k, child] of Object.entries(inner.shape as Record<string, z.ZodTypeAny>)) {
    const path = [...prefix, k];
    const { inner: leaf, help } = unwrap(child);
    if (leaf instanceof z.ZodObject) {
      collectLeaves(leaf, envPrefix, defaults, path, out);
      continue;
    }
    const d: ConfigLeaf = {
      path,
      key: path.join('.'),
      env: envPrefix + path.map(upperSnake).join('_'),
      flag: `--${path.join('.')}`,
      type: typeOf(leaf),
      default: getPath(defaults, path),
      help,
    };
    if (leaf instanceof z.ZodEnum) d.choices = [...(leaf.options as string[])];
    if (leaf instanceof z.ZodArray) d.items = typeOf(unwrap(leaf.element as z.ZodTypeAny).inner);
    out.push(d);
  }
  return out;
}

/** Dotted names of every nested section (`server`, `privacy`, `privacy.dp`), which layers merge key by key. */
export function sectionsOf(leaves: readonly ConfigLeaf[]): Set<string> {
  return new Set(leaves.flatMap((l) => l.path.slice(0, -1).map((_, i) => l.path.slice(0, i + 1).join('.'))));
}
