import { ErrorCode, FedmetaError } from '../errors.js';
import { PROTOCOL_LIMITS as L, PROTOCOL_VERSION, SITE_NAME_PATTERN } from './messages.js';

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

// ---------------------------------------------------------------------------------------------- field checks

/** Secrets, tokens, names and version strings: visible ASCII without spaces. */
export const PRINTABLE = /^[\x21-\x7e]+$/;

export function siteName(v: unknown, path: string): string {
  const s = str(v, path, L.siteNameChars);
  if (!SITE_NAME_PATTERN.test(s)) fail(path, 'must be letters, digits, dot, underscore or dash, starting with a letter or digit');
  return s;
}

export function str(v: unknown, path: string, maxChars: number, pattern?: RegExp): string {
  if (typeof v !== 'string') fail(path, 'must be a string');
  if (v.length === 0 || v.length > maxChars) fail(path, `must have 1 to ${maxChars} characters`);
  if (pattern !== undefined && !pattern.test(v)) fail(path, 'contains characters that are not allowed');
  return v;
}

export function int(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number') fail(path, 'must be an integer');
  if (!Number.isInteger(v)) {
    if (!Number.isFinite(v)) nonFinite(path);
    fail(path, 'must be an integer');
  }
  if (v < min || v > max) fail(path, `must be from ${min} to ${max}`);
  return v;
}

export function num(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number') fail(path, 'must be a number');
  if (!Number.isFinite(v)) nonFinite(path);
  if (v < min || v > max) fail(path, `must be from ${min} to ${max}`);
  return v;
}

/**
 * Only a genuine Float32Array is accepted: raw bytes (Buffer, Uint8Array) are refused rather than
 * reinterpreted, because the codec always writes float32 vectors as the typed-array extension and a
 * byte string would need alignment and length rules of its own.
 */
export function floats(v: unknown, path: string): Float32Array {
  if (typeof v !== 'object' || v === null || Object.getPrototypeOf(v) !== Float32Array.prototype) {
    fail(path, 'must be a Float32Array');
  }
  const a = v as Float32Array;
  if (a.length > L.vectorValues) fail(path, `must have at most ${L.vectorValues} values`);
  return a;
}

export function finite(a: Float32Array, path: string): void {
  // x * 0 is 0 for every finite x and NaN for NaN and both infinities, and a NaN survives any sum: one
  // branch per vector. Two accumulators over eight values keep the loop from waiting on a single sum.
  const n = a.length;
  let s0 = 0;
  let s1 = 0;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    s0 += (a[i] as number) * 0 + (a[i + 1] as number) * 0 + (a[i + 2] as number) * 0 + (a[i + 3] as number) * 0;
    s1 += (a[i + 4] as number) * 0 + (a[i + 5] as number) * 0 + (a[i + 6] as number) * 0 + (a[i + 7] as number) * 0;
  }
  for (; i < n; i++) s0 += (a[i] as number) * 0;
  if (s0 + s1 === 0) return;
  for (let j = 0; j < n; j++) {
    const x = a[j] as number;
    if (x - x !== 0) nonFinite(`${path}[${j}]`);
  }
}
