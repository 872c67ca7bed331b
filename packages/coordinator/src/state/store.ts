import type { Checkpoint, SiteRecord } from './types.js';

/** Why a checkpoint file was not used when the store opened. */
export type CheckpointFault =
  | 'missing'
  | 'truncated'
  | 'bad-header'
  | 'checksum-mismatch'
  | 'undecodable'
  | 'invalid-content';

export interface SkippedCheckpoint {
  version: number;
  fault: CheckpointFault;
  /** Plain words, safe to log (sizes and versions only). */
  detail: string;
  /** Where the damaged file was moved for inspection, when there was one. */
  quarantinedTo?: string;
}

/**
 * What `open()` found and did. `message` is one sentence for the operator's log; a fallback must be logged at
 * warn level because the state the coordinator continues from is older than the last one it committed.
 */
export interface StoreOpenReport {
  status: 'fresh' | 'restored' | 'fell-back';
  /** Version now current; null when fresh. */
  version: number | null;
  /** The newest version the store knew of before opening (manifest or newest file), when it differs. */
  fellBackFrom?: number;
  skipped: SkippedCheckpoint[];
  /** Temporary files left by an interrupted write, removed. */
  removedTempFiles: number;
  /** Pid of a dead coordinator whose lock was taken over, when there was one. */
  tookOverLockFrom?: number;
  sites: number;
  /** Entries of the round in flight that survived; a torn last line is dropped and counted here. */
  journalEntries: number;
  journalDroppedTail: boolean;
  message: string;
}

/**
 * The coordinator's durable state, as the round engine and the CLI see it. Implementations: files in a data
 * directory (the embedded default); a later one may keep the same contract on a database shared by replicas.
 *
 * Nothing may be called before `open()` resolves: site traffic must wait until the restore is complete.
 */
export interface StateStore {
  open(): Promise<StoreOpenReport>;
  close(): Promise<void>;

  /** The last committed checkpoint, or null before the first. Treat it as read-only; commit a new object. */
  latest(): Checkpoint | null;
  /**
   * Durable once resolved. `cp.version` must be >= the latest version: equal rewrites that version's metadata
   * (a release), greater adds a version. When `cp.nextRound` advances, the round journal is cleared, because the
   * round it described is now part of the checkpoint.
   */
  commit(cp: Checkpoint): Promise<void>;
  /** Versions still kept, ascending: the last K and every version ever released. */
  listVersions(): Promise<number[]>;
  /** A kept version, verified; UNKNOWN_VERSION when it was pruned or never existed. */
  loadVersion(version: number): Promise<Checkpoint>;

  getSite(name: string): Promise<SiteRecord | null>;
  /** Durable once resolved; replaces the record of that name. */
  putSite(record: SiteRecord): Promise<void>;
  /**
   * Atomic read-modify-write of one site: `fn` sees the current record (or null) and returns the new one, or
   * throws to change nothing. Calls on one store are serialised, so two enrollments with one token cannot both win.
   */
  updateSite(name: string, fn: (current: SiteRecord | null) => SiteRecord): Promise<SiteRecord>;
  listSites(): Promise<SiteRecord[]>;

  /** Appends one JSON-safe entry to the journal of the round in flight; durable once resolved. */
  appendJournal(entry: object): Promise<void>;
  readJournal(): Promise<object[]>;
  clearJournal(): Promise<void>;
}
