import { ErrorCode, FedmetaError } from './errors.js';

/**
 * Parameters travel and are stored as a manifest plus one flat Float32Array, in manifest order,
 * never as JSON arrays of numbers.
 */
export interface ParamEntry {
  name: string;
  shape: number[];
  dtype: 'float32';
}

export type ParamManifest = ParamEntry[];

export interface FlatParams {
  manifest: ParamManifest;
  values: Float32Array;
}

export function entrySize(entry: ParamEntry): number {
  return entry.shape.reduce((a, b) => a * b, 1);
}

export function manifestSize(manifest: ParamManifest): number {
  let n = 0;
  for (const e of manifest) n += entrySize(e);
  return n;
}

/** Offsets of each entry in the flat vector, in manifest order. */
export function manifestOffsets(manifest: ParamManifest): number[] {
  const offsets: number[] = [];
  let at = 0;
  for (const e of manifest) {
    offsets.push(at);
    at += entrySize(e);
  }
  return offsets;
}

export function checkFlat(manifest: ParamManifest, values: Float32Array): void {
  const n = manifestSize(manifest);
  if (values.length !== n) {
    throw new FedmetaError(
      ErrorCode.WRONG_LENGTH,
      `parameter vector has ${values.length} values but the manifest describes ${n}`,
    );
  }
}

/** A stable text key for comparing manifests (names and shapes, in order). */
export function manifestKey(manifest: ParamManifest): string {
  return manifest.map((e) => `${e.name}:${e.shape.join('x')}:${e.dtype}`).join(';');
}
