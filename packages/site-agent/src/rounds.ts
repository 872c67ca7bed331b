import { ErrorCode, isFedmetaError } from '@fedmeta/shared';
import type { AckMessage, Logger, MechanismSteps, RoundTask, SecAggOffer, SecAggServerWire, SecAggSiteWire, SecAggUpdateFields } from '@fedmeta/shared';
import type { SitePrivacyLedger } from './privacy-ledger.js';
import { SecAggParticipant } from './secagg.js';
import type { SiteData } from './site-data.js';
import { prepareUpdate, type ComputedUpdate, type TrainOffer, type TrainOptions } from './trainer.js';

/**
 * Answers round offers one at a time. Only the newest offer is kept while one is being computed; a result for
 * a round that a newer round has replaced is dropped. A computed update that was not acknowledged (the link
 * dropped) is kept and sent again, without recomputing, when the coordinator re-offers the same round after
 * the agent reconnects: that is how a site resynchronises with the round in flight.
 *
 * A securely aggregated offer is answered once per attempt (a re-issued round is a new attempt with new keys),
 * reusing the update computed for an earlier attempt of the same round; the update message then carries the
 * site's signed keys instead of the vector, and the worker answers the coordinator's phase messages.
 *
 * A round with record-level DP (the task's dp) is answered only within the site's own privacy budget: the
 * worker asks the site's ledger before training (a round that would take ε past the budget is declined: nothing
 * is computed or sent) and charges the update's mechanisms to the ledger, on disk, before sending it.
 */
export interface OfferInHand extends TrainOffer {
  deadline: number;
  secagg?: SecAggOffer;
}

export interface RoundWorkerOptions {
  logger: Logger;
  train: TrainOptions;
  /** The site's current data (reloaded by the caller when its files change). */
  data: () => Promise<SiteData>;
  /** Sends an update (with `secagg`, its keys instead of the vector) and resolves with the coordinator's ack; rejects when no ack came (link down). */
  send: (u: ComputedUpdate, secagg?: SecAggUpdateFields) => Promise<AckMessage>;
  /** Sends secure-aggregation messages in order; resolves with the last ack, or the first refusal. */
  sendSecAgg: (msgs: SecAggSiteWire[]) => Promise<AckMessage>;
  /** The site's credential, from which its secure-aggregation identity derives; undefined before enrollment. */
  credential: () => string | undefined;
  /** The site's privacy ledger (loaded once); asked only for rounds with record-level DP. */
  ledger: () => Promise<SitePrivacyLedger>;
  /** Values per message the coordinator announced (the masked update is sent in pieces of this size). */
  chunkValues: () => number;
  /** Called once per round with the coordinator's final verdict (tests and status). */
  onAnswered?: (u: ComputedUpdate, ack: AckMessage) => void;
  /** Called when an update has been computed, with the seconds that took (the agent's metrics). */
  onComputed?: (u: ComputedUpdate, seconds: number) => void;
}

const same = (a: { round: number; version: number } | null, b: { round: number; version: number }): boolean =>
  a !== null && a.round === b.round && a.version === b.version;

/** What an answer is for: the round and version, and on a secure round the attempt (its keys are per attempt). */
interface AnswerKey {
  round: number;
  version: number;
  attempt: number | null;
}
const keyOf = (o: OfferInHand): AnswerKey => ({ round: o.round, version: o.version, attempt: o.secagg?.attempt ?? null });
const sameKey = (a: AnswerKey | null, b: AnswerKey): boolean => same(a, b) && (a as AnswerKey).attempt === b.attempt;

export class RoundWorker {
  private latest: OfferInHand | null = null;
  private working = false;
  private answered: AnswerKey | null = null;
  private pending: ComputedUpdate | null = null;
  /** The last update computed, for a later attempt of the same secure round. */
  private computed: ComputedUpdate | null = null;
  /** This site's part in the secure attempt it answered last, until that attempt ends. */
  private secure: SecAggParticipant | null = null;
  /** The task of the last round offered: its inner loop is the default adaptation of `detect`. */
  lastTask: RoundTask | undefined;
  private idle: Promise<void> = Promise.resolve();
  /** DP updates whose privacy is on the ledger: sending them again costs nothing more. */
  private readonly charged = new WeakSet<ComputedUpdate>();
  /** The last round said to be without DP, so that it is said once per round. */
  private plainRound: number | null = null;

  constructor(private readonly opts: RoundWorkerOptions) {}

  offer(o: OfferInHand): void {
    // A new round or attempt ends this site's part in the previous secure attempt.
    if (this.secure !== null && (this.secure.round !== o.round || this.secure.attempt !== o.secagg?.attempt)) this.secure = null;
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
    const key = keyOf(o);
    if (sameKey(this.answered, key)) {
      log.debug('round already answered; ignoring the re-offer');
      return;
    }
    let u = this.pending !== null && same(this.pending, o) ? this.pending : null;
    if (u === null && o.secagg && this.computed !== null && same(this.computed, o)) {
      log.info({ attempt: o.secagg.attempt }, 'a new attempt of a securely aggregated round: reusing the update computed for it');
      u = this.computed;
    }
    if (u === null) {
      const started = performance.now();
      u = await this.compute(o, log);
      if (u === null) return;
      const latest = this.latest as OfferInHand | null;
      if (latest !== null && (latest.round !== o.round || (o.secagg && latest.secagg?.attempt !== o.secagg.attempt))) {
        log.info('a newer round was offered while computing; this update was dropped');
        return;
      }
      log.info(
        { episodes: u.counts.episodes, examples: u.counts.examples, ms: Math.round(performance.now() - started), valF1: u.metrics.valF1 },
        'update computed',
      );
      this.opts.onComputed?.(u, (performance.now() - started) / 1000);
      this.pending = u;
      this.computed = u;
    } else {
      log.info('resending the update kept from before the reconnect');
    }
    const secagg = o.secagg ? this.joinSecure(o, u, log) : undefined;
    if (secagg === null) return;
    // Charge, then send: the charge is on disk before anything computed from the update leaves the site.
    if (u.accounting !== undefined && !this.charged.has(u) && !(await this.charge(u, u.accounting, log))) {
      this.secure = null;
      return;
    }
    let ack: AckMessage;
    try {
      ack = await this.opts.send(u, secagg);
    } catch (e) {
      log.warn({ code: isFedmetaError(e) ? e.code : undefined }, 'no acknowledgement from the coordinator; the update is kept and sent again when the round is re-offered');
      return;
    }
    this.pending = null;
    this.answered = key;
    if (ack.accepted) log.info('update accepted by the coordinator');
    else if (ack.error?.code === ErrorCode.DUPLICATE_UPDATE) log.info('the coordinator already had this update');
    else log.warn({ code: ack.error?.code }, `the coordinator rejected the update: ${ack.error?.message ?? 'no reason given'}`);
    this.opts.onAnswered?.(u, ack);
  }

  /**
   * Trains this site's update for an offer, or returns null when it cannot (logged): not enough data, a diverged
   * inner loop, a model this site cannot build, or a DP round past the site's budget. The round goes on without it.
   */
  private async compute(o: OfferInHand, log: Logger): Promise<ComputedUpdate | null> {
    try {
      const prepared = prepareUpdate(o, await this.opts.data(), this.opts.train);
      if (prepared.dpPlan === null) this.notPrivate(o.round, log);
      else if (!(await this.affords(prepared.dpPlan, log))) return null;
      return await prepared.run();
    } catch (e) {
      const code = isFedmetaError(e) ? e.code : undefined;
      log.error({ code, err: isFedmetaError(e) ? undefined : e }, `could not compute an update for this round: ${isFedmetaError(e) ? e.message : 'internal error'}`);
      return null;
    }
  }

  private notPrivate(round: number, log: Logger): void {
    if (this.plainRound === round) return;
    this.plainRound = round;
    log.info("this round is not differentially private: its task asks for no DP-SGD, so this site's privacy budget is neither checked nor charged");
  }

  /** Whether the site's budget has room for a DP round that runs these mechanisms; warns when it has not. */
  private async affords(plan: readonly MechanismSteps[], log: Logger): Promise<boolean> {
    const q = (await this.opts.ledger()).quote(plan);
    if (q.fits) return true;
    log.warn(
      { epsilon: q.epsilon, epsilonAfter: q.epsilonAfter, epsilonBudget: q.epsilonBudget, delta: q.delta },
      `declined this differentially private round: this site has spent ε = ${q.epsilon.toFixed(3)} of its budget of ${q.epsilonBudget} (δ = ${q.delta}) and the round would take it to ${q.epsilonAfter.toFixed(3)}; nothing was computed or sent. Raise privacy.epsilonBudget only if the data owner accepts the extra privacy loss`,
    );
    return false;
  }

  /**
   * Charges an update's privacy to the ledger (on disk); false, and logged, when it cannot be charged. The
   * update's privacy report then carries the ledger's ε after this charge, and its δ, so that the coordinator
   * can check its own account of this site against the site's; a resend carries the same figures.
   */
  private async charge(u: ComputedUpdate, used: readonly MechanismSteps[], log: Logger): Promise<boolean> {
    try {
      const q = await (await this.opts.ledger()).charge(used);
      this.charged.add(u);
      u.privacy = { ...u.privacy, epsilon: q.epsilonAfter, delta: q.delta };
      log.info({ epsilon: q.epsilonAfter, epsilonBudget: q.epsilonBudget, delta: q.delta }, "the update's privacy is charged to this site's ledger; sending it");
      return true;
    } catch (e) {
      if (isFedmetaError(e, ErrorCode.PRIVACY_BUDGET)) {
        // It will never fit: forget it rather than try again on a re-offer.
        if (this.pending === u) this.pending = null;
        if (this.computed === u) this.computed = null;
        log.warn(`declined this differentially private round: ${e.message}`);
      } else {
        log.error({ code: isFedmetaError(e) ? e.code : undefined }, `the privacy of this update could not be recorded, so it was not sent: ${isFedmetaError(e) ? e.message : (e as Error).message}; make the state directory writable`);
      }
      return false;
    }
  }

  /**
   * Starts this site's part in a secure attempt: the keys its update message carries (undefined on a plain
   * round), or null when it cannot take part (no credential yet, or the roster lists another key for it).
   */
  private joinSecure(o: OfferInHand, u: ComputedUpdate, log: Logger): SecAggUpdateFields | null {
    const offer = o.secagg as SecAggOffer;
    const credential = this.opts.credential();
    if (credential === undefined) {
      log.error('this round is securely aggregated but the site holds no credential yet; it sits this round out');
      return null;
    }
    try {
      this.secure = new SecAggParticipant(o.round, offer, credential, u.update, u.counts.examples);
      return this.secure.advertise();
    } catch (e) {
      this.secure = null;
      log.error({ code: isFedmetaError(e) ? e.code : undefined }, `cannot take part in secure aggregation: ${isFedmetaError(e) ? e.message : 'internal error'}`);
      return null;
    }
  }

  /**
   * A phase message of secure aggregation: answered by the site's part in that attempt, or ignored when the
   * site holds no keys for it (it restarted mid-round, or the attempt is over): the coordinator counts it dropped.
   */
  async secagg(msg: SecAggServerWire): Promise<void> {
    const log = this.opts.logger.child({ round: msg.round, attempt: msg.attempt });
    const p = this.secure;
    if (p === null || !p.owns(msg)) {
      log.info({ type: msg.type }, 'a secure-aggregation message for an attempt this site holds no keys for; ignored (the site counts as dropped from it)');
      return;
    }
    let replies: SecAggSiteWire[];
    try {
      replies = p.answer(msg, this.opts.chunkValues());
    } catch (e) {
      this.secure = null;
      log.warn({ code: isFedmetaError(e) ? e.code : undefined }, `left the secure aggregation of this attempt: ${isFedmetaError(e) ? e.message : 'internal error'}`);
      return;
    }
    if (p.done && this.secure === p) this.secure = null;
    try {
      const ack = await this.opts.sendSecAgg(replies);
      if (ack.accepted) log.debug({ type: msg.type }, 'secure-aggregation answer accepted');
      else log.warn({ code: ack.error?.code }, `the coordinator refused a secure-aggregation message: ${ack.error?.message ?? 'no reason given'}`);
    } catch (e) {
      log.warn({ code: isFedmetaError(e) ? e.code : undefined }, 'no acknowledgement for a secure-aggregation message; this site may count as dropped from the attempt');
    }
  }
}
