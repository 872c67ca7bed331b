import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { Checkpoint } from '../state/types.js';
import { pickBestVersion } from './records.js';

/**
 * The version `release` should mark. `available` are the versions whose checkpoints the store still keeps
 * (the current one always is); a version that was pruned cannot be handed to agents any more.
 */
export function chooseRelease(cp: Checkpoint, target: number | 'best', available: ReadonlySet<number>): number {
  if (target === 'best') {
    const best = pickBestVersion(cp.history, available);
    if (best === null) {
      throw new FedmetaError(
        ErrorCode.PRECONDITION,
        'no committed round has reported metrics yet, so there is no best version; run rounds first or release a version by number',
      );
    }
    return best;
  }
  if (!Number.isSafeInteger(target) || target < 0 || target > cp.version || !available.has(target)) {
    const kept = [...available].sort((a, b) => a - b);
    const shown = kept.length > 8 ? `${kept.slice(0, 3).join(', ')}, ..., ${kept.slice(-3).join(', ')}` : kept.join(', ');
    throw new FedmetaError(
      ErrorCode.UNKNOWN_VERSION,
      `version ${String(target)} is not available; the kept versions are ${shown}`,
    );
  }
  return target;
}

/** The checkpoint with `version` pushed on the release stack (unchanged when it already is the current release). */
export function withRelease(cp: Checkpoint, version: number): Checkpoint {
  if (cp.released.at(-1) === version) return cp;
  return { ...cp, released: [...cp.released, version] };
}

/** The checkpoint with the current release popped, so the one before it is current again. */
export function withRollback(cp: Checkpoint): Checkpoint {
  if (cp.released.length < 2) {
    throw new FedmetaError(
      ErrorCode.PRECONDITION,
      cp.released.length === 0
        ? 'nothing has been released yet, so there is nothing to roll back; release a version first'
        : `version ${String(cp.released[0])} is the only release, so there is no earlier one to return to; release another version by number instead`,
    );
  }
  return { ...cp, released: cp.released.slice(0, -1) };
}
