import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { Packr } from 'msgpackr';
import { ErrorCode, FedmetaError, checkParamsFor, validateSpec, writeFileAtomic } from '@fedmeta/shared';
import type { FeatureStats, ModelSpec, ParamManifest } from '@fedmeta/shared';

/**
 * A released detector as a file: one msgpack map with the model spec, the manifest and the flat parameters
 * (a Float32Array, byte-exact), the version and the fingerprint of the feature schema it was trained on. The
 * agent writes one per released version into its state directory; `detect` reads it. A file the agent writes
 * also carries the site's own feature statistics (the standardisation it trained with) and the round's inner
 * loop, so that `detect` adapts and scales exactly as training did.
 */
export const MODEL_FILE_FORMAT = 'fedmeta-model';

export interface ModelFile {
  format: typeof MODEL_FILE_FORMAT;
  formatVersion: 1;
  version: number;
  spec: ModelSpec;
  manifest: ParamManifest;
  params: Float32Array;
  schemaFingerprint: string;
  /** Per-feature mean and std of the site that cached the model; absent in a file from elsewhere. */
  stats?: FeatureStats;
  /** Inner-loop steps and step size of the rounds that trained these meta-parameters. */
  inner?: { steps: number; lr: number };
  createdAt: string;
}

const packr = new Packr({ moreTypes: true, useRecords: false, structuredClone: false, int64AsType: 'number', mapsAsObjects: true });

const FIELDS = new Set(['format', 'formatVersion', 'version', 'spec', 'manifest', 'params', 'schemaFingerprint', 'stats', 'inner', 'createdAt']);

export function encodeModelFile(m: ModelFile): Uint8Array {
  check(m, 'the model to write');
  return packr.pack(m);
}

function bad(source: string, what: string): never {
  throw new FedmetaError(ErrorCode.STATE_CORRUPT, `model file ${source} ${what}; use a file written by fedmeta-agent or fedmeta-coordinator`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

function finiteList(v: unknown, n: number): boolean {
  return Array.isArray(v) && v.length === n && v.every((x) => typeof x === 'number' && Number.isFinite(x));
}

/** Checks a decoded model file field by field; the messages name fields and sizes, never values. */
function check(v: unknown, source: string): ModelFile {
  if (!isRecord(v) || v['format'] !== MODEL_FILE_FORMAT) bad(source, 'is not a fedmeta model file');
  if (v['formatVersion'] !== 1) bad(source, 'has a format version this agent does not read (upgrade the agent)');
  for (const k of Object.keys(v)) if (!FIELDS.has(k)) bad(source, `has the unexpected field ${JSON.stringify(k.slice(0, 32))}`);
  const version = v['version'];
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) bad(source, 'has no valid version number');
  if (typeof v['schemaFingerprint'] !== 'string' || v['schemaFingerprint'].length === 0) bad(source, 'has no schema fingerprint');
  if (typeof v['createdAt'] !== 'string') bad(source, 'has no creation time');
  if (!isRecord(v['spec'])) bad(source, 'has no model spec');
  const spec = v['spec'] as unknown as ModelSpec;
  const params = v['params'];
  if (!(params instanceof Float32Array)) bad(source, 'has no float32 parameter vector');
  if (!Array.isArray(v['manifest'])) bad(source, 'has no parameter manifest');
  try {
    validateSpec(spec);
    checkParamsFor(spec, { manifest: v['manifest'] as ParamManifest, values: params });
  } catch {
    bad(source, 'has a spec, manifest and parameters that do not fit together');
  }
  for (let i = 0; i < params.length; i++) if (!Number.isFinite(params[i]!)) bad(source, 'holds NaN or infinite parameters');
  const stats = v['stats'];
  if (stats !== undefined) {
    if (!isRecord(stats) || !finiteList(stats['mean'], spec.inputDim) || !finiteList(stats['std'], spec.inputDim) || typeof stats['count'] !== 'number') {
      bad(source, `has feature statistics that do not cover the model's ${spec.inputDim} features`);
    }
    if ((stats['std'] as number[]).some((s) => s <= 0)) bad(source, 'has a non-positive feature std');
  }
  const inner = v['inner'];
  if (inner !== undefined) {
    const ok = isRecord(inner) && Number.isInteger(inner['steps']) && (inner['steps'] as number) >= 0 && typeof inner['lr'] === 'number' && Number.isFinite(inner['lr']);
    if (!ok) bad(source, 'has a malformed inner-loop setting');
  }
  return v as unknown as ModelFile;
}

export function decodeModelFile(bytes: Uint8Array, source = '(bytes)'): ModelFile {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch {
    bad(source, 'cannot be decoded');
  }
  return check(value, source);
}

export async function readModelFile(path: string): Promise<ModelFile> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new FedmetaError(
      ErrorCode.CONFIG,
      `cannot read the model file ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'}); run \`fedmeta-agent run\` until a version is released, or give the path of a model file`,
    );
  }
  return decodeModelFile(bytes, basename(path));
}

export async function writeModelFile(path: string, m: ModelFile): Promise<void> {
  await writeFileAtomic(path, encodeModelFile(m), 0o600);
}
