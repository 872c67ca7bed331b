import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import { listCheckpointVersions, readCheckpointFile } from './checkpoint-files.js';
import type { ManifestRead } from './state-files.js';
import type { SkippedCheckpoint, StoreOpenReport } from './store.js';
import type { Checkpoint } from './types.js';

export interface RestoreResult {
  checkpoint: Checkpoint | null;
  /** Newer versions that could not be used, newest first. */
  skipped: SkippedCheckpoint[];
  /** The newest version the directory claims to have (manifest or file names), or null when it claims none. */
  newestKnown: number | null;
}

/**
 * Finds the newest checkpoint that verifies, newest first. Refuses with STATE_CORRUPT rather than starting fresh
 * when the directory says state existed (a manifest, or checkpoint files) but nothing usable is left: a silent
 * fresh start would throw away the federation's training and re-run rounds on a model nobody released.
 */
export async function restoreCheckpoint(dir: string, manifest: ManifestRead): Promise<RestoreResult> {
  const versions = (await listCheckpointVersions(dir)).reverse();
  const newestFile = versions[0] ?? null;
  const recorded = manifest.state === 'ok' ? manifest.manifest.latestVersion : null;
  const newestKnown = recorded !== null && (newestFile === null || recorded > newestFile) ? recorded : newestFile;
  const skipped: SkippedCheckpoint[] = [];

  if (versions.length === 0) {
    if (manifest.state === 'absent') return { checkpoint: null, skipped, newestKnown: null };
    const why =
      manifest.state === 'ok'
        ? `its manifest records version ${manifest.manifest.latestVersion} but no checkpoint file is left`
        : `its manifest is damaged (${manifest.detail}) and no checkpoint file is left`;
    throw new FedmetaError(
      ErrorCode.STATE_CORRUPT,
      `the data directory ${dir} held a federation, but ${why}; restore the directory from a backup, or move it ` +
        'away to start a new federation on purpose',
    );
  }

  if (recorded !== null && newestFile !== null && recorded > newestFile) {
    skipped.push({
      version: recorded,
      fault: 'missing',
      detail: `the manifest records version ${recorded} but its file is missing`,
    });
  }
  for (const v of versions) {
    const read = await readCheckpointFile(dir, v);
    if (read.ok) return { checkpoint: read.checkpoint, skipped, newestKnown };
    skipped.push({ version: v, fault: read.fault, detail: read.detail });
  }
  const listed = skipped.map((s) => `version ${s.version}: ${s.detail}`).join('; ');
  throw new FedmetaError(
    ErrorCode.STATE_CORRUPT,
    `no checkpoint in ${dir} verifies (${listed}); restore the directory from a backup, or move it away to start ` +
      'a new federation on purpose',
  );
}

/** One sentence (or a few) for the operator's log: what was restored and anything that needs their attention. */
export function describeOpen(
  dir: string,
  report: StoreOpenReport,
  cp: Checkpoint | null,
  journalDiscarded: boolean,
  quarantineDir: string,
  notes: string[] = [],
): string {
  const parts: string[] = [];
  if (cp === null) {
    parts.push(`no federation state in ${dir} yet: starting fresh`);
  } else if (report.status === 'restored') {
    parts.push(`restored version ${cp.version} (next round ${cp.nextRound}) from ${dir}`);
  } else {
    const reasons = report.skipped.map((s) => `version ${s.version} ${s.fault}: ${s.detail}`).join('; ');
    const moved = report.skipped.some((s) => s.quarantinedTo) ? `; damaged files moved to ${quarantineDir}` : '';
    parts.push(
      `FELL BACK to version ${cp.version} (next round ${cp.nextRound}) from ${dir} because newer state could not be ` +
        `used (${reasons})${moved}; the rounds after version ${cp.version} will run again`,
    );
  }
  parts.push(`${report.sites} site(s) registered`);
  if (report.removedTempFiles > 0) {
    parts.push(`removed ${report.removedTempFiles} temporary file(s) left by an interrupted write`);
  }
  if (report.tookOverLockFrom !== undefined) {
    parts.push(`took over the lock of process ${report.tookOverLockFrom}, which is no longer running`);
  }
  if (journalDiscarded) parts.push('discarded the journal of a round that started from the lost version');
  else if (report.journalEntries > 0) parts.push(`${report.journalEntries} journal entries of the round in flight`);
  if (report.journalDroppedTail) parts.push('dropped a torn last entry of the round journal');
  parts.push(...notes);
  return parts.join('; ');
}
