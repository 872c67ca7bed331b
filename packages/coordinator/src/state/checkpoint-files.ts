import { readFile, readdir, mkdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, writeFileAtomic } from '@fedmeta/shared';
import type { AtomicWriteHooks } from '@fedmeta/shared';
import { ContainerKind, decodeContainer, encodeContainer } from './container.js';
import { decodeCheckpoint, encodeCheckpoint } from './checkpoint-codec.js';
import type { CheckpointFault } from './store.js';
import type { Checkpoint } from './types.js';
import { crashPoint } from '../test-hooks.js';

const CHECKPOINT_RE = /^checkpoint-(\d{12})\.fmck$/;
export const QUARANTINE_DIR = 'quarantine';

/** Zero-padded so that a directory listing sorts by version. */
export function checkpointName(version: number): string {
  return `checkpoint-${String(version).padStart(12, '0')}.fmck`;
}

export async function listCheckpointVersions(dir: string): Promise<number[]> {
  const versions: number[] = [];
  for (const name of await readdir(dir)) {
    const m = CHECKPOINT_RE.exec(name);
    if (m?.[1] !== undefined) versions.push(Number(m[1]));
  }
  return versions.sort((a, b) => a - b);
}

export type CheckpointRead =
  | { ok: true; checkpoint: Checkpoint; bytes: number }
  | { ok: false; fault: CheckpointFault; detail: string };

/** Reads and verifies one version: header, length, checksum, decoding, content, and the version it claims. */
export async function readCheckpointFile(dir: string, version: number): Promise<CheckpointRead> {
  let bytes: Buffer;
  try {
    bytes = await readFile(join(dir, checkpointName(version)));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      return { ok: false, fault: 'missing', detail: `the file for version ${version} is missing` };
    }
    throw e;
  }
  const container = decodeContainer(bytes, ContainerKind.checkpoint);
  if (!container.ok) return container;
  const decoded = decodeCheckpoint(container.payload);
  if (!decoded.ok) return decoded;
  if (decoded.checkpoint.version !== version) {
    return {
      ok: false,
      fault: 'invalid-content',
      detail: `file named for version ${version} holds version ${decoded.checkpoint.version}`,
    };
  }
  return { ok: true, checkpoint: decoded.checkpoint, bytes: bytes.length };
}

export async function writeCheckpointFile(dir: string, cp: Checkpoint, hooks?: AtomicWriteHooks): Promise<void> {
  const chunks = encodeContainer(ContainerKind.checkpoint, encodeCheckpoint(cp));
  await writeFileAtomic(join(dir, checkpointName(cp.version)), chunks, 0o600, {
    beforeRename: async (temp) => {
      await hooks?.beforeRename?.(temp);
      crashPoint('checkpoint');
    },
  });
}

/**
 * Moves a damaged checkpoint out of the way (kept for inspection, never read again), so that the versions that
 * follow the fallback can reuse its number and a later open does not report the same damage again.
 */
export async function quarantineCheckpoint(dir: string, version: number): Promise<string> {
  const qdir = join(dir, QUARANTINE_DIR);
  await mkdir(qdir, { recursive: true, mode: 0o700 });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const target = join(qdir, `${checkpointName(version)}.${stamp}`);
  await rename(join(dir, checkpointName(version)), target);
  await fsyncDir(qdir);
  await fsyncDir(dir);
  return target;
}

/** The last `keep` versions, the latest, and every version ever released; the rest may go. */
export function versionsToPrune(versions: number[], keep: number, everReleased: Iterable<number>): number[] {
  const kept = new Set(versions.slice(-Math.max(1, keep)));
  for (const v of everReleased) kept.add(v);
  return versions.filter((v) => !kept.has(v));
}

export async function pruneCheckpoints(dir: string, keep: number, everReleased: Iterable<number>): Promise<number[]> {
  const doomed = versionsToPrune(await listCheckpointVersions(dir), keep, everReleased);
  for (const v of doomed) await unlink(join(dir, checkpointName(v))).catch(() => undefined);
  if (doomed.length > 0) await fsyncDir(dir);
  return doomed;
}
