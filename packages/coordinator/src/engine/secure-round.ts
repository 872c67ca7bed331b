import { randomBytes } from 'node:crypto';
import { ErrorCode, FedmetaError, isFedmetaError, needsIndividualUpdates, SECAGG_MAX_SITES, sameRoundId, SecAggServer, secAggConfigOf } from '@fedmeta/shared';
import type { AggregatorConfig, SecAggOffer, SecAggResult } from '@fedmeta/shared';
import type { Logger } from 'pino';
import { waitUntil } from './attempt.js';
import type { BoundedWait, EngineClock } from './attempt.js';
import type { RoundOffer, SecAggFromSite, SecAggToSite, SiteHub, SiteUpdate, UpdateAck } from './hub.js';
import { crashPoint } from '../test-hooks.js';
import type { SecureDropouts, SecureRoundSummary } from '../state/types.js';

/**
 * Secure aggregation in a real round (packages/shared/src/secagg drives the cryptography; this drives the
 * phases through the hub). The round offer names the roster; a site's update carries no vector but its signed
 * fresh keys (phase 1, collected with the round's own deadline); then the coordinator runs the share, mask,
 * confirm and unmask phases, each closed when every remaining site has answered or `phaseSeconds` pass. It
 * learns the sum of the contributors' clipped, weighted updates and their total weight, nothing per site.
 * Below the threshold at any close the attempt is aborted; keys are per attempt, so nothing carries over.
 */

/** The `privacy.secureAggregation` section of the coordinator's configuration. */
export interface SecureAggregationConfig {
  enabled: boolean;
  /** Fraction (> 1/2) of each site's share holders (all sampled sites, or its neighbours plus itself) needed. */
  threshold: number;
  /** Neighbours per site (SecAgg+, even); 0 chooses: all pairs up to ALL_PAIRS_MAX_SITES, AUTO_DEGREE beyond. */
  degree: number;
  clipNorm: number;
  maxWeight: number;
  phaseSeconds: number;
}

export type ActiveSecureConfig = Readonly<SecureAggregationConfig & { enabled: true }>;

/** Per-site values the coordinator still sees in plaintext on a securely aggregated round (stated in its record). */
export const PLAINTEXT_PER_SITE = ['examples', 'episodes', 'supportLoss', 'queryLoss', 'queryAccuracy', 'valF1'] as const;

function fail(field: string, rule: string): never {
  throw new FedmetaError(ErrorCode.CONFIG, `privacy.secureAggregation.${field} must be ${rule}; fix it in the coordinator configuration`);
}

/** Checks the settings once; null when secure aggregation is off. */
export function validateSecureConfig(c: SecureAggregationConfig | undefined, aggregator: AggregatorConfig): ActiveSecureConfig | null {
  if (c === undefined || !c.enabled) return null;
  if (!(Number.isFinite(c.threshold) && c.threshold > 0.5 && c.threshold <= 1)) fail('threshold', 'a fraction above 0.5 and at most 1');
  if (!(Number.isInteger(c.degree) && c.degree >= 0 && c.degree % 2 === 0)) fail('degree', 'an even whole number (0 chooses: all pairs up to 100 sites, 32 neighbours beyond)');
  if (!(Number.isFinite(c.clipNorm) && c.clipNorm > 0)) fail('clipNorm', 'a positive number');
  if (!(Number.isFinite(c.maxWeight) && c.maxWeight >= 1)) fail('maxWeight', 'at least 1');
  if (!(Number.isFinite(c.phaseSeconds) && c.phaseSeconds > 0)) fail('phaseSeconds', 'a positive number');
  if (needsIndividualUpdates(aggregator)) {
    throw new FedmetaError(
      ErrorCode.CONFIG,
      `the ${aggregator.kind} aggregator needs individual updates, which secure aggregation hides; use mean, norm-clip or centered-clipping, or turn secure aggregation off`,
    );
  }
  return Object.freeze({ ...c, enabled: true as const });
}

/**
 * What the sites clip to and weigh by: the tighter of the secure-aggregation and norm-clip bounds; under central
 * DP its clip bound too, and weight 1 for every site (the noise is calibrated to one site's clipped update).
 */
export function secureBounds(c: ActiveSecureConfig, aggregator: AggregatorConfig, centralDpClip: number | null): { clipNorm: number; maxWeight: number } {
  let clipNorm = c.clipNorm;
  if (aggregator.kind === 'norm-clip') clipNorm = Math.min(clipNorm, aggregator.maxNorm);
  if (centralDpClip !== null) clipNorm = Math.min(clipNorm, centralDpClip);
  return { clipNorm, maxWeight: centralDpClip !== null ? 1 : c.maxWeight };
}

/** Rosters up to this size mask between all pairs when no degree is configured. */
export const ALL_PAIRS_MAX_SITES = 100;
/**
 * Neighbours per site beyond ALL_PAIRS_MAX_SITES when no degree is configured (SecAgg+, Bell et al. 2020): each
 * site's work and messages stay constant as the federation grows; measured at 1,024 sites it costs 1.03x the
 * plaintext bytes (npm run bench:secagg), where all pairs would put about 100 kB of shares in one message.
 */
export const AUTO_DEGREE = 32;

/** The configured degree, or with 0 (automatic) all pairs for small rosters and AUTO_DEGREE neighbours beyond. */
export function effectiveDegree(configured: number, rosterSize: number): number {
  if (configured > 0) return configured;
  return rosterSize <= ALL_PAIRS_MAX_SITES ? 0 : AUTO_DEGREE;
}

/** Holders of each site's shares: all n sites, or the site and its `degree` neighbours (SecAgg+). */
export function shareHolders(n: number, degree: number): number {
  return degree === 0 || degree >= n - 1 ? n : degree + 1;
}

/** The threshold t for a roster of n: the configured fraction of the holders, and always more than half of them. */
export function secureThreshold(fraction: number, n: number, degree: number): number {
  const h = shareHolders(n, degree);
  return Math.min(h, Math.max(Math.floor(h / 2) + 1, Math.ceil(fraction * h - 1e-9)));
}

/** What the secure phases produce: the sum for the outer step, or why the attempt ends without one. */
export type SecureOutcome =
  | { ok: true; result: SecAggResult; contributors: string[] }
  | { ok: false; reason: string; code: ErrorCode };

export interface SecureRoundOptions {
  round: number;
  attempt: number;
  /** The sampled sites, sorted: the roster is those of them with an identity key, in this order. */
  sampled: readonly string[];
  dim: number;
  config: ActiveSecureConfig;
  /** Aggregator and central DP tighten what sites clip to, and central DP weighs every site 1. */
  clipNorm: number;
  maxWeight: number;
  hub: SiteHub;
  clock: EngineClock;
  log: Logger;
  /** Counts a refused message or a dropout in the attempt's record. */
  reject: (site: string, code: ErrorCode) => void;
}

const PHASES = ['share', 'mask', 'confirm', 'unmask'] as const;

export class SecureRound {
  readonly round: number;
  readonly attempt: number;
  /** Site names in roster order: index i is roster position i + 1. */
  readonly roster: readonly string[];
  /** Sampled sites left out of the roster for want of an identity key. */
  readonly unidentified: readonly string[];
  readonly threshold: number;
  private readonly opts: SecureRoundOptions;
  private readonly index = new Map<string, number>();
  private readonly common: Omit<SecAggOffer, 'site'>;
  private readonly server: SecAggServer | null;
  private readonly dropped: SecureDropouts = { share: 0, mask: 0, confirm: 0, unmask: 0 };
  private wait: BoundedWait | null = null;
  private cancelled = false;
  private contributorCount = 0;

  constructor(opts: SecureRoundOptions) {
    this.opts = opts;
    this.round = opts.round;
    this.attempt = opts.attempt;
    const roster: string[] = [];
    const keys: Uint8Array[] = [];
    const unidentified: string[] = [];
    for (const site of opts.sampled) {
      const key = opts.hub.identity(site);
      if (key === null || key.length !== 32) unidentified.push(site);
      else {
        roster.push(site);
        keys.push(key);
        this.index.set(site, roster.length);
      }
    }
    this.roster = roster;
    this.unidentified = unidentified;
    const degree = effectiveDegree(opts.config.degree, roster.length);
    this.threshold = secureThreshold(opts.config.threshold, Math.max(roster.length, 2), degree);
    this.common = {
      attempt: opts.attempt,
      roundId: new Uint8Array(randomBytes(32)),
      roster: keys,
      threshold: this.threshold,
      degree: degree >= roster.length - 1 ? 0 : degree,
      clipNorm: opts.clipNorm,
      maxWeight: opts.maxWeight,
    };
    this.server = roster.length >= 2 && roster.length <= SECAGG_MAX_SITES ? new SecAggServer(secAggConfigOf(this.common, opts.dim)) : null;
  }

  /** Why this attempt cannot run securely at all (too few identified sites), or null. */
  problem(): string | null {
    if (this.roster.length > SECAGG_MAX_SITES) {
      return `${ErrorCode.SECAGG_ABORTED}: a secure-aggregation roster holds at most ${SECAGG_MAX_SITES} sites but ${this.roster.length} were sampled; lower rounds.sampleFraction`;
    }
    if (this.server !== null && this.roster.length >= this.threshold) return null;
    const why = this.unidentified.length > 0 ? `; ${this.unidentified.length} sampled sites have no identity key and must reconnect (or re-enroll) first` : '';
    return `${ErrorCode.SECAGG_ABORTED}: secure aggregation needs at least 2 sites and the threshold in its roster, and ${this.roster.length} sampled sites can take part${why}`;
  }

  /** The offer for one site: the round's offer plus the roster and this site's place in it. */
  offerFor(site: string, offer: RoundOffer): RoundOffer {
    const i = this.index.get(site);
    if (i === undefined) return offer;
    return { ...offer, secagg: { ...this.common, site: i } };
  }

  inRoster(site: string): boolean {
    return this.index.has(site);
  }

  /**
   * Phase 1, inside the collection: an update on a secure round carries the site's signed keys, and it is
   * accepted only when they verify for this attempt. Returns the refusal, or null.
   */
  receiveUpdate(site: string, update: SiteUpdate): FedmetaError | null {
    const i = this.index.get(site);
    const s = update.secagg;
    if (i === undefined || this.server === null) {
      return new FedmetaError(ErrorCode.UNAUTHENTICATED, 'this site has no identity key for secure aggregation; reconnect the agent so the coordinator records it, or re-enroll the site');
    }
    if (!s || update.update !== null) {
      return new FedmetaError(ErrorCode.SCHEMA, 'this round is securely aggregated: the update must carry its signed keys in secagg and no vector; upgrade the site agent');
    }
    const stale = this.stale({ round: update.round, attempt: s.attempt, roundId: s.roundId });
    if (stale) return stale;
    if (s.advertise.site !== i) return this.impersonation(i);
    try {
      this.server.receiveAdvertise({ type: 'secagg-advertise', ...s.advertise });
      return null;
    } catch (e) {
      return asError(e);
    }
  }

  /** A phase message from a site: checked, handed to the protocol's server, and answered with a verdict. */
  receive(site: string, msg: SecAggFromSite): UpdateAck {
    const err = this.judge(site, msg);
    if (err) {
      this.opts.reject(site, err.code);
      this.opts.log.child({ site }).warn({ code: err.code, type: msg?.type }, 'secure-aggregation message rejected');
      return { round: this.round, accepted: false, error: err.toWire() };
    }
    this.wait?.poke();
    return { round: this.round, accepted: true };
  }

  /**
   * Phases 2 to 5 after the collection closed, then the unmasking. Never throws: an abort (too few sites, a
   * share that does not check) comes back as { ok: false } with its coded reason.
   */
  async run(): Promise<SecureOutcome> {
    const server = this.server as SecAggServer;
    try {
      const keys = server.closeAdvertise();
      for (const [i, m] of keys) this.send(i, { ...m, round: this.round, attempt: this.attempt });
      if (!(await this.phase('share'))) return this.cancelledOutcome();
      const delivery = server.closeShares();
      for (const [i, m] of delivery) this.send(i, { ...m, round: this.round, attempt: this.attempt });
      if (!(await this.phase('mask'))) return this.cancelledOutcome();
      const survivors = server.closeMasked();
      this.contributorCount = survivors.survivors.length;
      for (const i of survivors.survivors) this.send(i, { ...survivors, round: this.round, attempt: this.attempt });
      if (!(await this.phase('confirm'))) return this.cancelledOutcome();
      const confirmations = server.closeConfirm();
      for (const i of server.pending()) this.send(i, { ...confirmations, round: this.round, attempt: this.attempt });
      if (!(await this.phase('unmask'))) return this.cancelledOutcome();
      const result = server.finish();
      return { ok: true, result, contributors: result.contributors.map((i) => this.roster[i - 1] as string) };
    } catch (e) {
      server.abort();
      const err = asError(e);
      if (!isFedmetaError(e)) this.opts.log.error({ err: e }, 'secure aggregation failed unexpectedly');
      return { ok: false, reason: err.message, code: err.code };
    }
  }

  /** Ends the phase in progress (the engine is closing). */
  cancel(): void {
    this.cancelled = true;
    this.wait?.cancel();
    this.server?.abort();
  }

  summary(): SecureRoundSummary {
    return {
      roster: this.roster.length,
      threshold: this.threshold,
      degree: this.common.degree,
      clipNorm: this.common.clipNorm,
      maxWeight: this.common.maxWeight,
      contributors: this.contributorCount,
      dropped: { ...this.dropped },
      plaintextPerSite: [...PLAINTEXT_PER_SITE],
    };
  }

  /** Waits for the open phase; the sites still pending at its deadline have dropped out. */
  private async phase(name: (typeof PHASES)[number]): Promise<boolean> {
    const server = this.server as SecAggServer;
    crashPoint(`secure-${name}`);
    this.wait = waitUntil(this.opts.clock, this.opts.config.phaseSeconds * 1000, () => server.pending().length === 0);
    await this.wait.promise;
    this.wait = null;
    if (this.cancelled) return false;
    const late = server.pending();
    this.dropped[name] += late.length;
    for (const i of late) this.opts.reject(this.roster[i - 1] as string, ErrorCode.SECAGG_DROPPED);
    if (late.length > 0) this.opts.log.info({ phase: name, dropped: late.length }, 'sites dropped out of secure aggregation');
    return true;
  }

  private cancelledOutcome(): SecureOutcome {
    return { ok: false, reason: 'the round engine was closed during secure aggregation', code: ErrorCode.NOT_READY };
  }

  private send(i: number, msg: SecAggToSite): void {
    this.opts.hub.sendSecAgg(this.roster[i - 1] as string, msg);
  }

  private judge(site: string, msg: SecAggFromSite): FedmetaError | null {
    if (typeof msg !== 'object' || msg === null) return new FedmetaError(ErrorCode.SCHEMA, 'a secure-aggregation message must be an object');
    const stale = this.stale(msg);
    if (stale) return stale;
    const i = this.index.get(site);
    if (i === undefined || this.server === null) {
      return new FedmetaError(ErrorCode.UNKNOWN_SITE, `this site is not in the roster of round ${this.round}; wait for an offer`);
    }
    if (msg.site !== i) return this.impersonation(i);
    try {
      switch (msg.type) {
        case 'secagg-shares':
          this.server.receiveShares(msg);
          break;
        case 'secagg-masked':
          if (msg.index !== 0 || msg.count !== 1) throw new FedmetaError(ErrorCode.CHUNK, 'the masked update must reach the engine whole');
          this.server.receiveMasked(msg);
          break;
        case 'secagg-confirm':
          this.server.receiveConfirm(msg);
          break;
        case 'secagg-unmask':
          this.server.receiveUnmask(msg);
          break;
        default:
          throw new FedmetaError(ErrorCode.SCHEMA, 'not a secure-aggregation message a site sends');
      }
      return null;
    } catch (e) {
      return asError(e);
    }
  }

  /**
   * The one check that what a site sent (its keys in the update, or a phase message) belongs to the attempt
   * open now, made before the protocol's server sees it. The numbers alone do not suffice: a restarted
   * coordinator re-issues the attempt it was running under the same number, and only the fresh round id tells
   * that issue from the old one, whose masked vector nothing else would refuse.
   */
  private stale(m: { round: unknown; attempt: unknown; roundId: unknown }): FedmetaError | null {
    const numbered = m.round === this.round && m.attempt === this.attempt;
    if (numbered && sameRoundId(m.roundId, this.common.roundId)) return null;
    const what = numbered
      ? `an earlier issue of round ${this.round} attempt ${this.attempt} (another round id: the coordinator restarted and re-issued it)`
      : `round ${String(m.round)} attempt ${String(m.attempt)} but round ${this.round} attempt ${this.attempt} is open`;
    return new FedmetaError(ErrorCode.STALE_ROUND, `the message is for ${what}; secure-aggregation keys are per attempt, so it cannot count: answer the current offer`);
  }

  private impersonation(i: number): FedmetaError {
    return new FedmetaError(ErrorCode.SECAGG_AUTH, `this site is number ${i} in the roster and may send only its own secure-aggregation messages`);
  }
}

function asError(e: unknown): FedmetaError {
  if (isFedmetaError(e)) return e;
  return new FedmetaError(ErrorCode.SECAGG_AUTH, 'a secure-aggregation message could not be processed');
}
