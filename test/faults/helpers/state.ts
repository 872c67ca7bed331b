// What a data directory holds, read through FileStateStore exactly as a restarted coordinator reads it.
import { readdirSync } from 'node:fs';
import { FileStateStore, digestState, type StateDigest, type StoreOpenReport } from '@fedmeta/coordinator';
import type { OptimizerState } from '@fedmeta/shared';

export interface StateSnapshot {
  version: number;
  nextRound: number;
  digest: StateDigest;
  report: StoreOpenReport;
}

/** Opens `dir` (take a copy: opening removes temporary files and takes over a dead owner's lock) and digests its latest state. */
export async function snapshotState(dir: string): Promise<StateSnapshot> {
  const store = new FileStateStore(dir);
  const report = await store.open();
  try {
    const cp = store.latest();
    if (!cp) throw new Error(`${dir} holds no checkpoint`);
    return { version: cp.version, nextRound: cp.nextRound, digest: digestState(cp.version, cp.params, cp.optimizer), report };
  } finally {
    await store.close();
  }
}

export interface VersionState {
  params: Float32Array;
  optimizer: OptimizerState;
  digest: StateDigest;
}

/** Versions `from`..`to` of a data directory no process holds any more. */
export async function loadVersions(dir: string, from: number, to: number): Promise<Map<number, VersionState>> {
  const store = new FileStateStore(dir);
  await store.open();
  const out = new Map<number, VersionState>();
  try {
    for (let v = from; v <= to; v++) {
      const cp = await store.loadVersion(v);
      out.set(v, { params: cp.params, optimizer: cp.optimizer, digest: digestState(v, cp.params, cp.optimizer) });
    }
  } finally {
    await store.close();
  }
  return out;
}

/** Temporary files an interrupted atomic write left in `dir`. */
export function tempFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.startsWith('.tmp-'));
}

/** The bytes of a float vector, for an exact comparison. */
export function bytesOf(v: Float32Array | Float64Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}
