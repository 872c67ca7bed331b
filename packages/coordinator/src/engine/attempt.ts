import type { Logger } from 'pino';
import type { RoundOffer, SiteUpdate } from './hub.js';
import type { SecureRound } from './secure-round.js';

/** The engine's source of time; tests inject one they control. */
export interface EngineClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: EngineClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * A wait that always ends: true as soon as `check` holds when poked, false when `ms` pass or it is
 * cancelled. Every wait in a round goes through one of these, which is why a round cannot hang.
 */
export interface BoundedWait {
  readonly promise: Promise<boolean>;
  poke(): void;
  cancel(): void;
}

export function waitUntil(clock: EngineClock, ms: number, check: () => boolean): BoundedWait {
  let settle: (ok: boolean) => void = () => {};
  let settled = false;
  const promise = new Promise<boolean>((resolve) => {
    settle = resolve;
  });
  const finish = (ok: boolean): void => {
    if (settled) return;
    settled = true;
    clock.clearTimeout(timer);
    settle(ok);
  };
  const timer = clock.setTimeout(() => finish(false), Math.max(0, ms));
  if (check()) finish(true);
  return {
    promise,
    poke: () => {
      if (!settled && check()) finish(true);
    },
    cancel: () => finish(false),
  };
}

/** Refusals by code: those of an attempt, or those that arrived between attempts (taken by the next one). */
export class RejectionCounts {
  private counts: Record<string, number> = {};

  constructor(start: Record<string, number> = {}) {
    this.counts = { ...start };
  }

  add(code: string): void {
    this.counts[code] = (this.counts[code] ?? 0) + 1;
  }

  /** The counts so far, leaving none behind. */
  take(): Record<string, number> {
    const out = this.counts;
    this.counts = {};
    return out;
  }

  get current(): Record<string, number> {
    return this.counts;
  }
}

/** One attempt at one round: who was asked, who answered, what was accepted, what was refused and why. */
export class RoundAttempt {
  readonly sampledSet: ReadonlySet<string>;
  readonly answered = new Set<string>();
  readonly accepted = new Map<string, SiteUpdate>();
  /** Sampled sites that went offline before answering; they get the offer again when they come back. */
  readonly dropped = new Set<string>();
  readonly rejections: RejectionCounts;
  wait: BoundedWait | null = null;
  /** The secure-aggregation phases of this attempt, when the round is securely aggregated. */
  secure: SecureRound | null = null;

  constructor(
    readonly round: number,
    readonly attempt: number,
    readonly offer: RoundOffer,
    readonly sampled: readonly string[],
    readonly startedAt: string,
    readonly log: Logger,
    rejectedBefore: Record<string, number>,
  ) {
    this.sampledSet = new Set(sampled);
    this.rejections = new RejectionCounts(rejectedBefore);
  }

  get version(): number {
    return this.offer.version;
  }

  /** The offer a site receives: on a secure round, with the roster and the site's place in it. */
  offerFor(site: string): RoundOffer {
    return this.secure ? this.secure.offerFor(site, this.offer) : this.offer;
  }

  allAnswered(): boolean {
    return this.answered.size >= this.sampled.length;
  }
}
