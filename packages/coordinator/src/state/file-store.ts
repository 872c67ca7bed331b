import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ErrorCode, FedmetaError, acquireLock, removeTempFiles } from '@fedmeta/shared';
import type { AtomicWriteHooks, DirLock, LockOptions } from '@fedmeta/shared';
import { checkpointProblem } from './checkpoint-codec.js';
import {
  QUARANTINE_DIR,
  listCheckpointVersions,
  pruneCheckpoints,
  quarantineCheckpoint,
  readCheckpointFile,
  writeCheckpointFile,
} from './checkpoint-files.js';
import { readManifest, readSites, writeManifest, writeSites } from './state-files.js';
import type { StoreManifest } from './state-files.js';
import { RoundJournal } from './journal.js';
import { describeOpen, restoreCheckpoint } from './restore.js';
import type { Checkpoint, SiteRecord } from './types.js';
import type { StateStore, StoreOpenReport } from './store.js';

export const DEFAULT_KEEP_CHECKPOINTS = 20;
export const JOURNAL_NAME = 'round-journal.jsonl';

export interface FileStateStoreOptions {
  /** Checkpoints kept besides every released one (default 20, at least 1). */
  keepCheckpoints?: number;
  lock?: LockOptions;
  /** Test hook to interrupt a checkpoint write between fsync and rename. */
  writeHooks?: AtomicWriteHooks;
}

/**
 * The embedded store: one data directory holding checkpoint files, a manifest, the site registry, the round
 * journal and a lock file. Every file but the journal is replaced atomically and carries a checksum.
 */
export class FileStateStore implements StateStore {
  readonly dir: string;
  private readonly keep: number;
  private readonly journal: RoundJournal;
  private lock: DirLock | null = null;
  private current: Checkpoint | null = null;
  private manifest: StoreManifest | null = null;
  private sites = new Map<string, SiteRecord>();
  private commitChain: Promise<unknown> = Promise.resolve();
  private sitesChain: Promise<unknown> = Promise.resolve();

  constructor(
    dir: string,
    private readonly opts: FileStateStoreOptions = {},
  ) {
    this.dir = resolve(dir);
    this.keep = Math.max(1, Math.floor(opts.keepCheckpoints ?? DEFAULT_KEEP_CHECKPOINTS));
    this.journal = new RoundJournal(join(this.dir, JOURNAL_NAME));
  }

  async open(): Promise<StoreOpenReport> {
    if (this.lock) throw new FedmetaError(ErrorCode.PRECONDITION, 'the state store is already open');
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const lock = await acquireLock(this.dir, { ...this.opts.lock, role: 'coordinator' });
    try {
      const removedTempFiles = await removeTempFiles(this.dir);
      const manifestRead = await readManifest(this.dir);
      const sites = await readSites(this.dir);
      const restore = await restoreCheckpoint(this.dir, manifestRead);

      // Quarantine only once a good version was found: when none verifies, every file stays for the operator.
      for (const s of restore.skipped) {
        if (s.fault !== 'missing') s.quarantinedTo = await quarantineCheckpoint(this.dir, s.version);
      }
      const cp = restore.checkpoint;
      const known = manifestRead.state === 'ok' ? manifestRead.manifest.everReleased : [];
      const manifest: StoreManifest | null = cp
        ? {
            formatVersion: 1,
            latestVersion: cp.version,
            everReleased: union(known, cp.released),
            updatedAt: new Date().toISOString(),
          }
        : null;
      const manifestStale =
        manifest !== null &&
        (manifestRead.state !== 'ok' ||
          manifestRead.manifest.latestVersion !== manifest.latestVersion ||
          manifestRead.manifest.everReleased.length !== manifest.everReleased.length);
      if (manifest && manifestStale) await writeManifest(this.dir, manifest);

      let journal = await this.journal.recover();
      // The journal always describes the round after the newest commit; after a fallback that commit is gone,
      // so the journal belongs to a round that no longer has a starting point.
      const journalDiscarded = restore.skipped.length > 0 && journal.entries > 0;
      if (restore.skipped.length > 0) {
        await this.journal.clear();
        journal = { entries: 0, droppedTail: journal.droppedTail };
      }

      this.lock = lock;
      this.current = cp;
      this.manifest = manifest;
      this.sites = new Map(sites.map((s) => [s.name, s]));
      const report: StoreOpenReport = {
        status: cp === null ? 'fresh' : restore.skipped.length > 0 ? 'fell-back' : 'restored',
        version: cp?.version ?? null,
        skipped: restore.skipped,
        removedTempFiles,
        sites: sites.length,
        journalEntries: journal.entries,
        journalDroppedTail: journal.droppedTail,
        message: '',
      };
      if (restore.newestKnown !== null && cp && restore.newestKnown !== cp.version) {
        report.fellBackFrom = restore.newestKnown;
      }
      if (lock.tookOverFrom !== undefined) report.tookOverLockFrom = lock.tookOverFrom;
      const notes =
        manifestRead.state === 'corrupt' && cp ? [`rebuilt the damaged manifest (${manifestRead.detail})`] : [];
      report.message = describeOpen(this.dir, report, cp, journalDiscarded, join(this.dir, QUARANTINE_DIR), notes);
      return report;
    } catch (e) {
      await this.journal.close().catch(() => undefined);
      await lock.release().catch(() => undefined);
      throw e;
    }
  }

  async close(): Promise<void> {
    const lock = this.lock;
    if (!lock) return;
    await Promise.allSettled([this.commitChain, this.sitesChain]);
    await this.journal.close();
    this.lock = null;
    await lock.release();
  }

  latest(): Checkpoint | null {
    this.ensureOpen();
    return this.current;
  }

  async commit(cp: Checkpoint): Promise<void> {
    this.ensureOpen();
    const problem = checkpointProblem(cp);
    if (problem) throw new FedmetaError(ErrorCode.PRECONDITION, `refusing to commit: ${problem}`);
    return this.serialised('commit', async () => {
      const prev = this.current;
      if (prev && cp.version < prev.version) {
        throw new FedmetaError(
          ErrorCode.PRECONDITION,
          `refusing to commit version ${cp.version} over the newer version ${prev.version}; to go back, commit the ` +
            'older parameters as a new version',
        );
      }
      await writeCheckpointFile(this.dir, cp, this.opts.writeHooks);
      const manifest: StoreManifest = {
        formatVersion: 1,
        latestVersion: cp.version,
        everReleased: union(this.manifest?.everReleased ?? [], cp.released),
        updatedAt: new Date().toISOString(),
      };
      await writeManifest(this.dir, manifest);
      this.current = cp;
      this.manifest = manifest;
      if (prev === null || cp.nextRound > prev.nextRound) await this.journal.clear();
      // The commit is durable at this point; pruning is housekeeping that the next commit retries.
      await pruneCheckpoints(this.dir, this.keep, manifest.everReleased).catch(() => undefined);
    });
  }

  async listVersions(): Promise<number[]> {
    this.ensureOpen();
    return listCheckpointVersions(this.dir);
  }

  async loadVersion(version: number): Promise<Checkpoint> {
    this.ensureOpen();
    const read = await readCheckpointFile(this.dir, version);
    if (read.ok) return read.checkpoint;
    if (read.fault === 'missing') {
      const kept = await listCheckpointVersions(this.dir);
      throw new FedmetaError(
        ErrorCode.UNKNOWN_VERSION,
        `version ${version} is not kept (pruned or never committed); kept versions: ${summariseVersions(kept)}`,
      );
    }
    throw new FedmetaError(ErrorCode.STATE_CORRUPT, `the checkpoint of version ${version} is damaged: ${read.detail}`);
  }

  async getSite(name: string): Promise<SiteRecord | null> {
    this.ensureOpen();
    const r = this.sites.get(name);
    return r ? structuredClone(r) : null;
  }

  async listSites(): Promise<SiteRecord[]> {
    this.ensureOpen();
    return [...this.sites.values()].sort((a, b) => a.name.localeCompare(b.name)).map((r) => structuredClone(r));
  }

  async putSite(record: SiteRecord): Promise<void> {
    await this.updateSite(record.name, () => record);
  }

  async updateSite(name: string, fn: (current: SiteRecord | null) => SiteRecord): Promise<SiteRecord> {
    this.ensureOpen();
    return this.serialised('sites', async () => {
      const cur = this.sites.get(name);
      const next = structuredClone(fn(cur ? structuredClone(cur) : null));
      if (next.name !== name) {
        throw new FedmetaError(ErrorCode.PRECONDITION, `a site update for ${name} returned a record named ${next.name}`);
      }
      const all = new Map(this.sites);
      all.set(name, next);
      await writeSites(this.dir, [...all.values()]);
      this.sites = all;
      return structuredClone(next);
    });
  }

  async appendJournal(entry: object): Promise<void> {
    this.ensureOpen();
    await this.journal.append(entry);
  }

  async readJournal(): Promise<object[]> {
    this.ensureOpen();
    return this.journal.read();
  }

  async clearJournal(): Promise<void> {
    this.ensureOpen();
    await this.journal.clear();
  }

  private ensureOpen(): void {
    if (!this.lock) {
      throw new FedmetaError(
        ErrorCode.NOT_READY,
        'the state store is not open; wait for open() to finish restoring before using it',
      );
    }
  }

  private serialised<T>(which: 'commit' | 'sites', fn: () => Promise<T>): Promise<T> {
    const chain = which === 'commit' ? this.commitChain : this.sitesChain;
    const run = chain.then(fn, fn);
    if (which === 'commit') this.commitChain = run.catch(() => undefined);
    else this.sitesChain = run.catch(() => undefined);
    return run;
  }
}

function union(a: number[], b: number[]): number[] {
  return [...new Set([...a, ...b])].sort((x, y) => x - y);
}

function summariseVersions(versions: number[]): string {
  if (versions.length === 0) return 'none';
  if (versions.length <= 12) return versions.join(', ');
  return `${versions.slice(0, 6).join(', ')}, … ${versions.slice(-6).join(', ')} (${versions.length} in all)`;
}
