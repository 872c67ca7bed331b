import type { Checkpoint } from '../../src/state/types.js';
import type { EngineStore, RoundJournalEntry } from '../../src/engine/store.js';

/**
 * The subset of the state store the engine uses, in memory. Every checkpoint is cloned on the way in and out,
 * as a real store encodes and decodes it, so that a test cannot pass because engine and store share objects.
 */
export class MemoryStore implements EngineStore {
  private readonly versions = new Map<number, Checkpoint>();
  private latestVersion: number | null = null;
  private journal: object[] = [];
  commits = 0;
  /** Makes the next commit fail, as a full disk would. */
  failNextCommit = false;

  latest(): Checkpoint | null {
    return this.latestVersion === null ? null : structuredClone(this.versions.get(this.latestVersion) as Checkpoint);
  }

  async commit(cp: Checkpoint): Promise<void> {
    await Promise.resolve();
    if (this.failNextCommit) {
      this.failNextCommit = false;
      throw new Error('simulated write failure');
    }
    const prev = this.latestVersion === null ? null : (this.versions.get(this.latestVersion) as Checkpoint);
    if (prev && cp.version < prev.version) throw new Error(`commit of version ${cp.version} below ${prev.version}`);
    this.versions.set(cp.version, structuredClone(cp));
    this.latestVersion = cp.version;
    this.commits++;
    // As the real store does: once the round is in the checkpoint, its journal is spent.
    if (prev && cp.nextRound > prev.nextRound) this.journal = [];
  }

  async listVersions(): Promise<number[]> {
    return [...this.versions.keys()].sort((a, b) => a - b);
  }

  /** Drops a version, as a store that prunes old checkpoints does. */
  prune(version: number): void {
    if (version !== this.latestVersion) this.versions.delete(version);
  }

  async appendJournal(entry: RoundJournalEntry): Promise<void> {
    await Promise.resolve();
    this.journal.push(JSON.parse(JSON.stringify(entry)) as object);
  }

  async readJournal(): Promise<object[]> {
    return this.journal.map((e) => JSON.parse(JSON.stringify(e)) as object);
  }

  journalEntries(): object[] {
    return this.journal;
  }
}
