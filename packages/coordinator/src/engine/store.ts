import type { Checkpoint, RoundRecord } from '../state/types.js';

type MaybePromise<T> = T | Promise<T>;

/**
 * The part of the coordinator's state store the round engine uses (same names and signatures, so the real
 * store satisfies it as it is). The engine neither opens nor closes the store: its owner does.
 */
export interface EngineStore {
  /** The newest committed checkpoint, or null for an empty data directory. */
  latest(): MaybePromise<Checkpoint | null>;
  /**
   * Writes a checkpoint atomically. The engine commits version + 1 after each round and re-commits the
   * current version with a changed release stack on `release` and `rollback`.
   */
  commit(cp: Checkpoint): MaybePromise<void>;
  /** Versions whose checkpoints are still kept (a store may prune old ones). */
  listVersions(): MaybePromise<number[]>;
  appendJournal(entry: RoundJournalEntry): MaybePromise<void>;
  /** Entries in the order written; entries the engine did not write are ignored. */
  readJournal(): MaybePromise<readonly unknown[]>;
}

/**
 * The journal holds the round in flight only (the store clears it when a commit advances the round), so a
 * commit needs no entry of its own: the checkpoint is the record.
 *
 * Written before the offers go out, so a restart knows which round was in flight and how it was sampled. */
export interface RoundStartedEntry {
  type: 'round-started';
  round: number;
  attempt: number;
  fromVersion: number;
  sampled: string[];
  taskSeed: number;
  deadline: number;
  at: string;
}

export interface RoundAbortedEntry {
  type: 'round-aborted';
  round: number;
  attempt: number;
  record: RoundRecord;
  at: string;
}

export type RoundJournalEntry = RoundStartedEntry | RoundAbortedEntry;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/** What the journal says about the round a restored engine is about to run. */
export interface JournalReplay {
  /** Attempts of the round that were aborted before the restart; the next attempt number. */
  attempts: number;
  /** Their records, kept so the history shows them once the round commits. */
  aborted: RoundRecord[];
  /** The attempt that was in flight when the coordinator stopped, if any. */
  interrupted: RoundStartedEntry | null;
}

export function replayJournal(entries: readonly unknown[], round: number): JournalReplay {
  const aborted: RoundRecord[] = [];
  let open: RoundStartedEntry | null = null;
  let attempts = 0;
  for (const e of entries) {
    if (!isObject(e) || e['round'] !== round || typeof e['attempt'] !== 'number') continue;
    if (e['type'] === 'round-started') {
      open = e as unknown as RoundStartedEntry;
    } else if (e['type'] === 'round-aborted') {
      attempts = Math.max(attempts, (e['attempt'] as number) + 1);
      if (isObject(e['record'])) aborted.push(e['record'] as unknown as RoundRecord);
      if (open?.attempt === e['attempt']) open = null;
    }
  }
  return { attempts, aborted, interrupted: open };
}
