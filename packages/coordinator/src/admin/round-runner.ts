import { ErrorCode, FedmetaError, isFedmetaError } from '@fedmeta/shared';
import type { WireError } from '@fedmeta/shared';
import type { Logger } from 'pino';
import type { RoundRecord } from '../state/types.js';

/** The part of the round engine the runner drives. */
export interface RoundSource {
  runRound(): Promise<RoundRecord>;
}

/** One round of a job, without the per-site lists (which grow with the federation). */
export interface RoundSummary {
  round: number;
  status: RoundRecord['status'];
  fromVersion: number;
  sampled: number;
  accepted: number;
  rejected: Record<string, number>;
  meanQueryLoss?: number;
  meanValF1?: number;
  /** ε spent after the round, with differential privacy. */
  epsilon?: number;
  endedAt: string;
}

export function summarise(r: RoundRecord): RoundSummary {
  const s: RoundSummary = {
    round: r.round,
    status: r.status,
    fromVersion: r.fromVersion,
    sampled: r.sampled.length,
    accepted: r.accepted,
    rejected: { ...r.rejected },
    endedAt: r.endedAt,
  };
  if (r.meanQueryLoss !== undefined) s.meanQueryLoss = r.meanQueryLoss;
  if (r.meanValF1 !== undefined) s.meanValF1 = r.meanValF1;
  if (r.privacy !== undefined) s.epsilon = r.privacy.epsilon;
  return s;
}

/** Rounds of the current job kept in its status, newest last. */
export const JOB_RECENT_ROUNDS = 20;

export interface RoundJobStatus {
  running: boolean;
  mode: 'count' | 'continuous' | null;
  /** Rounds asked for; null in continuous mode without a limit. */
  requested: number | null;
  /** Rounds committed by this job. */
  done: number;
  startedAt: string | null;
  finishedAt: string | null;
  lastError: WireError | null;
  /** The job's latest committed rounds, newest last (at most JOB_RECENT_ROUNDS). */
  recent: RoundSummary[];
}

export interface RoundRunnerOptions {
  engine: RoundSource;
  logger: Logger;
  /** Sites online now, and the fewest a round starts with: continuous mode waits for them. */
  online: () => number;
  minOnline: number;
  /** Pause of continuous mode after a round that could not commit (default 5 s). */
  retryDelayMs?: number;
  /** How often continuous mode looks for enough sites while too few are online (default 1 s). */
  pollMs?: number;
}

/**
 * Runs rounds in the background for the admin API (`rounds run --count N`) and for continuous mode, one job
 * at a time; `status()` reports its progress.
 */
export class RoundRunner {
  private job: RoundJobStatus = { running: false, mode: null, requested: null, done: 0, startedAt: null, finishedAt: null, lastError: null, recent: [] };
  private stopping = false;
  private current: Promise<void> | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly opts: RoundRunnerOptions) {}

  status(): RoundJobStatus {
    return { ...this.job, lastError: this.job.lastError ? { ...this.job.lastError } : null, recent: [...this.job.recent] };
  }

  get running(): boolean {
    return this.job.running;
  }

  /** Starts `count` rounds; refuses with ROUND_IN_FLIGHT while a job runs. */
  start(count: number): RoundJobStatus {
    if (!Number.isSafeInteger(count) || count < 1 || count > 1_000_000) {
      throw new FedmetaError(ErrorCode.SCHEMA, 'count must be a whole number of rounds from 1 to 1000000');
    }
    this.begin('count', count, () => this.runCount(count));
    return this.status();
  }

  /** Keeps running rounds while enough sites are online, up to `maxRounds` when given. */
  startContinuous(maxRounds?: number): RoundJobStatus {
    this.begin('continuous', maxRounds ?? null, () => this.runContinuous(maxRounds));
    return this.status();
  }

  /** Stops after the round in flight (which the caller ends by closing the engine) and waits for the job. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.current;
  }

  private begin(mode: 'count' | 'continuous', requested: number | null, body: () => Promise<void>): void {
    if (this.job.running) {
      throw new FedmetaError(
        ErrorCode.ROUND_IN_FLIGHT,
        `rounds are already running (${this.job.mode}, ${this.job.done} done); wait for them to finish (see status)`,
      );
    }
    if (this.stopping) throw new FedmetaError(ErrorCode.NOT_READY, 'the coordinator is shutting down');
    this.job = { running: true, mode, requested, done: 0, startedAt: new Date().toISOString(), finishedAt: null, lastError: null, recent: [] };
    this.opts.logger.info({ mode, requested }, 'round job started');
    this.current = body()
      .catch((e: unknown) => this.fail(e))
      .finally(() => {
        this.job.running = false;
        this.job.finishedAt = new Date().toISOString();
        this.opts.logger.info({ mode, done: this.job.done, failed: this.job.lastError !== null }, 'round job ended');
      });
  }

  private fail(e: unknown): void {
    const fe = isFedmetaError(e) ? e : new FedmetaError(ErrorCode.PRECONDITION, 'a round failed inside the coordinator; see its log');
    this.job.lastError = fe.toWire();
    if (this.stopping && fe.code === ErrorCode.NOT_READY) return;
    if (fe.code === ErrorCode.PRIVACY_BUDGET) {
      // The planned end of a private federation, not a fault: say so in the operator's words.
      this.opts.logger.warn({ code: fe.code }, `rounds stopped: ${fe.message.replace(/^FEDMETA_ERR_[A-Z_]+: /, '')}`);
      return;
    }
    this.opts.logger.error({ err: e, code: fe.code }, 'rounds stopped');
  }

  private async runCount(count: number): Promise<void> {
    for (let i = 0; i < count && !this.stopping; i++) {
      this.committed(await this.opts.engine.runRound());
    }
  }

  private async runContinuous(maxRounds: number | undefined): Promise<void> {
    const retry = this.opts.retryDelayMs ?? 5000;
    const poll = this.opts.pollMs ?? 1000;
    while (!this.stopping && (maxRounds === undefined || this.job.done < maxRounds)) {
      if (this.opts.online() < this.opts.minOnline) {
        // Rounds only while sites are online: an empty federation would only abort round after round.
        await this.sleep(poll);
        continue;
      }
      try {
        this.committed(await this.opts.engine.runRound());
        this.job.lastError = null;
      } catch (e) {
        if (this.stopping) return;
        if (isFedmetaError(e, ErrorCode.NO_QUORUM)) {
          this.job.lastError = e.toWire();
          this.opts.logger.warn({ code: e.code }, 'a round found no quorum; continuous mode waits and tries again');
          await this.sleep(retry);
          continue;
        }
        throw e;
      }
    }
  }

  private committed(record: RoundRecord): void {
    this.job.done++;
    this.job.recent.push(summarise(record));
    if (this.job.recent.length > JOB_RECENT_ROUNDS) this.job.recent.shift();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }
}
