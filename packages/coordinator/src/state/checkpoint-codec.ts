import { Packr } from 'msgpackr';
import { manifestSize } from '@fedmeta/shared';
import type { ParamManifest } from '@fedmeta/shared';
import type { Checkpoint } from './types.js';

/**
 * moreTypes brings Float32Array and Float64Array back as typed arrays (fresh, aligned copies, byte-exact including
 * NaN payloads and -0); useRecords off keeps the bytes plain MessagePack so other tools can read a checkpoint.
 */
const packr = new Packr({ moreTypes: true, useRecords: false });

export function packState(value: unknown): Buffer {
  return packr.pack(value);
}

export function unpackState(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function checkManifest(m: unknown): string | null {
  if (!Array.isArray(m)) return 'manifest is not a list';
  for (const [i, e] of m.entries()) {
    if (!isRecord(e) || typeof e.name !== 'string' || e.dtype !== 'float32') return `manifest entry ${i} is malformed`;
    if (!Array.isArray(e.shape) || !e.shape.every(isNonNegInt)) return `manifest entry ${i} has a malformed shape`;
  }
  return null;
}

/**
 * Returns what is wrong with a checkpoint, or null. Used on what `commit` is given (a bug caught before it is
 * made durable) and on what a file decodes to (a file that verifies but holds something else is not used).
 * Messages carry field names and lengths only.
 */
export function checkpointProblem(cp: unknown): string | null {
  if (!isRecord(cp)) return 'checkpoint is not an object';
  if (cp.formatVersion !== 1) return 'checkpoint formatVersion is not 1';
  if (!isNonNegInt(cp.version)) return 'checkpoint version is not a non-negative integer';
  if (!isNonNegInt(cp.nextRound)) return 'checkpoint nextRound is not a non-negative integer';
  if (!isRecord(cp.spec)) return 'checkpoint spec is missing';
  const manifestIssue = checkManifest(cp.manifest);
  if (manifestIssue) return manifestIssue;
  if (!(cp.params instanceof Float32Array)) return 'checkpoint params are not a Float32Array';
  const n = manifestSize(cp.manifest as ParamManifest);
  if (cp.params.length !== n) return `checkpoint has ${cp.params.length} parameters but its manifest describes ${n}`;
  if (!isRecord(cp.optimizerConfig) || typeof cp.optimizerConfig.kind !== 'string') {
    return 'checkpoint optimizerConfig is malformed';
  }
  const opt = cp.optimizer;
  if (!isRecord(opt) || typeof opt.kind !== 'string' || !isNonNegInt(opt.step) || !isRecord(opt.buffers)) {
    return 'checkpoint optimizer state is malformed';
  }
  for (const [name, buf] of Object.entries(opt.buffers)) {
    if (!(buf instanceof Float64Array)) return `optimizer buffer ${name} is not a Float64Array`;
    if (buf.length !== n) return `optimizer buffer ${name} has ${buf.length} values, expected ${n}`;
  }
  if (!isRecord(cp.aggregator) || typeof cp.aggregator.kind !== 'string') return 'checkpoint aggregator is malformed';
  if (!Array.isArray(cp.rngState) || !cp.rngState.every((x) => typeof x === 'number')) {
    return 'checkpoint rngState is not a list of numbers';
  }
  if (typeof cp.schemaFingerprint !== 'string') return 'checkpoint schemaFingerprint is missing';
  if (!Array.isArray(cp.history)) return 'checkpoint history is not a list';
  if (!Array.isArray(cp.released) || !cp.released.every(isNonNegInt)) return 'checkpoint released is not a list of versions';
  if (typeof cp.createdAt !== 'string') return 'checkpoint createdAt is missing';
  if (cp.extensions !== undefined && !isRecord(cp.extensions)) return 'checkpoint extensions is not an object';
  return null;
}

export function encodeCheckpoint(cp: Checkpoint): Buffer {
  return packState(cp);
}

export type DecodedCheckpoint =
  | { ok: true; checkpoint: Checkpoint }
  | { ok: false; fault: 'undecodable' | 'invalid-content'; detail: string };

export function decodeCheckpoint(payload: Uint8Array): DecodedCheckpoint {
  let value: unknown;
  try {
    value = unpackState(payload);
  } catch (e) {
    return { ok: false, fault: 'undecodable', detail: `payload does not decode (${(e as Error).name})` };
  }
  const problem = checkpointProblem(value);
  if (problem) return { ok: false, fault: 'invalid-content', detail: problem };
  return { ok: true, checkpoint: value as Checkpoint };
}
