import { ErrorCode, FedmetaError } from '../errors.js';
import { PROTOCOL_VERSION } from './messages.js';

/**
 * Building blocks of the message schema. Decoded input is untrusted: only plain objects whose own keys
 * form exactly a declared set pass, and nothing from the input is echoed into an error beyond a short,
 * sanitised label.
 */

/** Names that must never be accepted as keys, including the form the decoder renames `__proto__` to. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', '__proto_', 'constructor', 'prototype']);

/** The fields of one object shape: required and optional names. */
export class FieldSet {
  readonly required: readonly string[];
  readonly all: ReadonlySet<string>;

  constructor(required: readonly string[], optional: readonly string[] = []) {
    this.required = required;
    this.all = new Set([...required, ...optional]);
  }
}

export function fail(path: string, what: string): never {
  throw new FedmetaError(
    ErrorCode.SCHEMA,
    `${path} ${what}; run the coordinator and the agents at the same protocol version (${PROTOCOL_VERSION})`,
  );
}

export function nonFinite(path: string): never {
  throw new FedmetaError(
    ErrorCode.NON_FINITE,
    `${path} is NaN or infinite; the sender must check its training for divergence before sending`,
  );
}

/** A label safe to put in a log line: short, and only characters that cannot forge log structure. */
export function safeLabel(s: string): string {
  const head = s.slice(0, 32);
  return /^[A-Za-z0-9_.-]+$/.test(head) ? `'${head}'${s.length > 32 ? '…' : ''}` : '(unprintable)';
}

/** Accepts only a plain object: no arrays, class instances (Map, Set, Date, RegExp, Error) or prototype games. */
export function checkPlain(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Object.getPrototypeOf(v) !== Object.prototype) {
    fail(path, 'must be a plain map');
  }
  return v as Record<string, unknown>;
}

/** A plain object whose own keys are all declared, with every required one present. */
export function checkRecord(v: unknown, path: string, fields: FieldSet): Record<string, unknown> {
  const o = checkPlain(v, path);
  const keys = Object.keys(o);
  if (keys.length > fields.all.size) fail(path, `has ${keys.length} fields but at most ${fields.all.size} are allowed`);
  for (const k of keys) {
    if (FORBIDDEN_KEYS.has(k)) fail(path, `has the forbidden field name ${safeLabel(k)}`);
    if (!fields.all.has(k)) fail(path, `has the unexpected field ${safeLabel(k)}`);
  }
  for (const k of fields.required) if (!Object.hasOwn(o, k)) fail(path, `lacks the field ${k}`);
  return o;
}
