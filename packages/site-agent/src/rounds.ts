import { ErrorCode, isFedmetaError } from '@fedmeta/shared';
import type { AckMessage, Logger, RoundTask } from '@fedmeta/shared';
import type { SiteData } from './site-data.js';
import { computeUpdate, type ComputedUpdate, type TrainOffer, type TrainOptions } from './trainer.js';

/**
 * Answers round offers one at a time. Only the newest offer is kept while one is being computed; a result for
 * a round that a newer round has replaced is dropped. A computed update that was not acknowledged (the link
 * dropped) is kept and sent again, without recomputing, when the coordinator re-offers the same round after
 * the agent reconnects: that is how a site resynchronises with the round in flight.
 */
export interface OfferInHand extends TrainOffer {
  deadline: number;
}

export interface RoundWorkerOptions {
  logger: Logger;
  train: TrainOptions;
  /** The site's current data (reloaded by the caller when its files change). */
  data: () => Promise<SiteData>;
  /** Sends an update and resolves with the coordinator's ack; rejects when no ack came (link down). */
  send: (u: ComputedUpdate) => Promise<AckMessage>;
  /** Called once per round with the coordinator's final verdict (tests and status). */
  onAnswered?: (u: ComputedUpdate, ack: AckMessage) => void;
  /** Called when an update has been computed, with the seconds that took (the agent's metrics). */
  onComputed?: (u: ComputedUpdate, seconds: number) => void;
}

const same = (a: { round: number; version: number } | null, b: { round: number; version: number }): boolean =>
  a !== null && a.round === b.round && a.version === b.version;

export class RoundWorker {
  private latest: OfferInHand | null = null;
  private working = false;
  private answered: { round: number; version: number } | null = null;
  private pending: ComputedUpdate | null = null;
  /** The task of the last round offered: its inner loop is the default adaptation of `detect`. */
  lastTask: RoundTask | undefined;
  private idle: Promise<void> = Promise.resolve();

  constructor(private readonly opts: RoundWorkerOptions) {}

  offer(o: OfferInHand): void {
    this.latest = o;
    this.lastTask = o.task;
    if (!this.working) this.idle = this.loop();
  }

  /**
   * A (re)connection, with the round the coordinator has in flight. What this site answered before no longer
   * counts: a coordinator that restarted lost the updates of the round it was collecting and re-offers that
   * round, and one that did not restart answers a second copy with DUPLICATE_UPDATE. An unacknowledged update
   * is kept for a re-offer of its round, and dropped when the coordinator has moved past it.
   */
  welcomed(round: number | null): void {
    this.answered = null;
    if (this.pending !== null && this.pending.round !== round) {
      this.opts.logger.info({ round: this.pending.round }, 'the coordinator has moved past the round of an unacknowledged update; dropped it');
      this.pending = null;
    }
  }

  /** Resolves when no offer is being worked on. */
  settled(): Promise<void> {
    return this.idle;
  }

  private async loop(): Promise<void> {
    this.working = true;
    try {
      while (this.latest !== null) {
        const o = this.latest;
        this.latest = null;
        await this.answer(o);
      }
    } finally {
      this.working = false;
    }
  }

  private async answer(o: OfferInHand): Promise<void> {
    const log = this.opts.logger.child({ round: o.round, version: o.version });
    if (same(this.answered, o)) {
      log.debug('round already answered; ignoring the re-offer');
      return;
    }
    let u = this.pending !== null && same(this.pending, o) ? this.pending : null;
    if (u === null) {
      const started = performance.now();
      try {
        u = await computeUpdate(o, await this.opts.data(), this.opts.train);
      } catch (e) {
        // Not enough data, a diverged inner loop, a model this site cannot build: the round goes on without it.
        const code = isFedmetaError(e) ? e.code : undefined;
        log.error({ code, err: isFedmetaError(e) ? undefined : e }, `could not compute an update for this round: ${isFedmetaError(e) ? e.message : 'internal error'}`);
        return;
      }
      const latest = this.latest as OfferInHand | null;
      if (latest !== null && latest.round !== o.round) {
        log.info('a newer round was offered while computing; this update was dropped');
        return;
      }
      log.info(
        { episodes: u.counts.episodes, examples: u.counts.examples, ms: Math.round(performance.now() - started), valF1: u.metrics.valF1 },
        'update computed',
      );
      this.opts.onComputed?.(u, (performance.now() - started) / 1000);
      this.pending = u;
    } else {
      log.info('resending the update kept from before the reconnect');
    }
    let ack: AckMessage;
    try {
      ack = await this.opts.send(u);
    } catch (e) {
      log.warn({ code: isFedmetaError(e) ? e.code : undefined }, 'no acknowledgement from the coordinator; the update is kept and sent again when the round is re-offered');
      return;
    }
    this.pending = null;
    this.answered = { round: u.round, version: u.version };
    if (ack.accepted) log.info('update accepted by the coordinator');
    else if (ack.error?.code === ErrorCode.DUPLICATE_UPDATE) log.info('the coordinator already had this update');
    else log.warn({ code: ack.error?.code }, `the coordinator rejected the update: ${ack.error?.message ?? 'no reason given'}`);
    this.opts.onAnswered?.(u, ack);
  }
}
