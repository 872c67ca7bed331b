import type { Checkpoint, EngineStore, RoundJournalEntry } from './engine-link.js';

/**
 * The state store of a simulated federation: checkpoints in memory, every version's parameters kept so that
 * any version can be released afterwards. Parameters are copied on the way in; the engine never mutates a
 * committed checkpoint, so the rest is kept by reference (cloning the growing history every round would make
 * a run quadratic in its rounds).
 */
export class MemoryEngineStore implements EngineStore {
  private current: Checkpoint | null = null;
  private readonly params = new Map<number, Float32Array>();
  private journal: RoundJournalEntry[] = [];

  latest(): Checkpoint | null {
    return this.current;
  }

  commit(cp: Checkpoint): void {
    const prev = this.current;
    this.current = cp;
    this.params.set(cp.version, cp.params.slice());
    if (prev !== null && cp.nextRound > prev.nextRound) this.journal = [];
  }

  listVersions(): number[] {
    return [...this.params.keys()].sort((a, b) => a - b);
  }

  appendJournal(entry: RoundJournalEntry): void {
    this.journal.push(entry);
  }

  readJournal(): readonly unknown[] {
    return [...this.journal];
  }

  /** The parameters committed as `version` (a copy). */
  paramsOf(version: number): Float32Array | undefined {
    return this.params.get(version)?.slice();
  }
}
