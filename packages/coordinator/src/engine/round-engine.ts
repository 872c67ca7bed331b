import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { cryptoNoise, ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { NoiseSource, OptimizerState } from '@fedmeta/shared';
import type { Logger } from 'pino';
import type { Checkpoint, RoundRecord } from '../state/types.js';
import { RejectionCounts, RoundAttempt, systemClock, waitUntil } from './attempt.js';
import type { BoundedWait, EngineClock } from './attempt.js';
import { judgeUpdate } from './check-update.js';
import { DEFAULT_MAX_CONSECUTIVE_ABORTS, quorumFor, roundTask, sitesToStart, validateEngineConfig } from './config.js';
import type { ValidEngineConfig } from './config.js';
import { DigestCache } from './digest.js';
import type { StateDigest } from './digest.js';
import type { EngineEvents } from './events.js';
import type { EngineStatus, RoundEngineOptions, RoundInFlight, RunRoundsOptions, SubmitResult } from './types.js';
import type { SecAggFromSite, SiteHub, SiteUpdate, UpdateAck } from './hub.js';
import { buildRecord, millis, roundOffer } from './records.js';
import type { RecordInput } from './records.js';
import { nextCheckpoint, outerStep } from './outer-step.js';
import type { SecureSum } from './outer-step.js';
import { PRIVACY_EXTENSION, roundSamplingRate, validateDpConfig, withTaskDp } from './privacy.js';
import type { ActiveDpConfig, PrivacyLedger } from './privacy.js';
import { chooseRelease, withRelease, withRollback } from './releases.js';
import { restoreState } from './restore.js';
import { SecureRound, secureBounds, validateSecureConfig } from './secure-round.js';
import type { ActiveSecureConfig } from './secure-round.js';
import { sampleCount, sampleSites, taskSeed } from './seeds.js';
import type { EngineStore } from './store.js';
import { crashPoint } from '../test-hooks.js';

/**
 * Owns the meta-parameters and runs rounds against whatever sites the hub reaches. It commits through the
 * store before it changes its own state, so what it holds in memory is always a committed checkpoint.
 */
export class RoundEngine extends EventEmitter<EngineEvents> {
  private readonly config: Readonly<ValidEngineConfig>;
  private readonly store: EngineStore;
  private readonly hub: SiteHub;
  private readonly log: Logger;
  private readonly clock: EngineClock;
  private readonly dp: Readonly<ActiveDpConfig> | null;
  private readonly noise: NoiseSource;
  private readonly secure: ActiveSecureConfig | null;
  /** The secure-aggregation phases of the attempt in flight, from its offers until the sum is unmasked. */
  private secureRound: SecureRound | null = null;

  private cp: Checkpoint | null = null;
  private optState: OptimizerState | null = null;
  private lastAggregate: Float32Array | null = null;
  /** Privacy spent so far (null with DP off); replaced only by a committed round's. */
  private privacy: PrivacyLedger | null = null;
  /** The sampling of the attempt in flight, for central DP's accountant and divisor. */
  private sampling: { rate: number; sites: number } | null = null;
  /**
   * Local DP: updates accepted in this round's aborted attempts. The coordinator has seen each of them, so each
   * is spent even if its site is not in the attempt that commits. Kept in memory only: a coordinator restarted
   * mid-round does not account what its aborted attempts saw.
   */
  private readonly seenUncommitted = new Map<SiteUpdate, string>();
  private seed = 0;
  private nextAttempt = 0;
  private pendingAborted: RoundRecord[] = [];
  /**
   * What the last aborted attempt was given, for the re-issue of the same round on the same version: a site
   * answers a round once (the agent ignores a second offer of a round it answered), and its update is as good
   * for the next attempt, which has the same task.
   */
  private carried: { round: number; version: number; accepted: Map<string, SiteUpdate>; answered: Set<string> } | null = null;
  /** Rejections that arrived while no round was open; counted in the next round's record. */
  private readonly between = new RejectionCounts();

  private running = false;
  private closed = false;
  private attempt: RoundAttempt | null = null;
  private inFlight: RoundInFlight | null = null;
  private gathering: BoundedWait | null = null;
  private writes: Promise<unknown> = Promise.resolve();
  private readonly digests = new DigestCache();

  constructor(options: RoundEngineOptions) {
    super();
    this.config = validateEngineConfig(options.config);
    this.store = options.store;
    this.hub = options.hub;
    this.log = options.logger;
    this.clock = options.clock ?? systemClock;
    this.dp = validateDpConfig(options.config.privacy, this.config.aggregator, this.config.rounds.algorithm);
    this.noise = options.noise ?? cryptoNoise();
    this.hub.onUpdate((site, update) => {
      this.submit(site, update);
    });
    this.hub.onPresence((site, online) => this.presence(site, online));
    this.secure = validateSecureConfig(options.config.secureAggregation, this.config.aggregator);
    this.hub.onSecAgg((site, msg) => this.secAggMessage(site, msg));
  }

  /** Sites that must be online before a round is sampled (rounds.minSites, and at least a count quorum). */
  get sitesToStart(): number {
    return sitesToStart(this.config.rounds);
  }

  /** False until `init` has restored (or created) the state; until then every update is refused. */
  get ready(): boolean {
    return this.cp !== null && !this.closed;
  }

  /**
   * Restores from the store's latest checkpoint, or commits `initial` when the store is empty. A round that was
   * in flight when the coordinator stopped is re-issued by the next `runRound`, sampled as it was.
   */
  async init(initial?: Checkpoint): Promise<{ restored: boolean; version: number; nextRound: number }> {
    if (this.cp) throw new FedmetaError(ErrorCode.PRECONDITION, 'the round engine is already initialised; create a new engine to restore again');
    const s = await restoreState(this.store, this.config, initial, this.clock.now(), this.log, this.dp);
    this.optState = s.optimizer;
    this.privacy = s.privacy;
    this.seed = s.seed;
    this.lastAggregate = s.lastAggregate;
    this.nextAttempt = s.replay.attempts;
    this.pendingAborted = s.replay.aborted;
    this.cp = s.checkpoint;
    const { version, nextRound } = s.checkpoint;
    this.log.info(
      { version, round: nextRound, restored: s.restored, abortedBefore: s.replay.attempts, interrupted: s.replay.interrupted !== null },
      s.restored ? 'restored the federation state' : 'initialised the federation state',
    );
    return { restored: s.restored, version, nextRound };
  }

  /** Runs one round to a commit, re-issuing it after each abort, up to the configured number in a row. */
  async runRound(): Promise<RoundRecord> {
    this.requireReady();
    if (this.running) {
      throw new FedmetaError(ErrorCode.ROUND_IN_FLIGHT, 'a round is already running; wait for it to finish before starting another');
    }
    // No round can sample a smaller fraction than rounds.sampleFraction: if even that does not fit, stop now.
    this.privacy?.requireRoom(this.config.rounds.sampleFraction);
    this.running = true;
    try {
      const max = this.config.rounds.maxConsecutiveAborts ?? DEFAULT_MAX_CONSECUTIVE_ABORTS;
      for (let aborts = 0; ; ) {
        const record = await this.runAttempt();
        if (record.status === 'committed') return record;
        aborts++;
        if (aborts >= max) {
          throw new FedmetaError(
            ErrorCode.NO_QUORUM,
            `round ${record.round} was aborted ${aborts} times in a row (last: ${record.reason ?? 'no reason'}); ` +
              `check that at least ${sitesToStart(this.config.rounds)} sites are online and can finish within ${this.config.rounds.deadlineSeconds} s, or lower rounds.quorum`,
          );
        }
      }
    } finally {
      this.running = false;
      this.inFlight = null;
    }
  }

  async runRounds(n: number, options: RunRoundsOptions = {}): Promise<RoundRecord[]> {
    const out: RoundRecord[] = [];
    for (let i = 0; i < n; i++) {
      const record = await this.runRound();
      out.push(record);
      options.onProgress?.(record, i + 1, n);
    }
    return out;
  }

  /**
   * Judges one update; the transport calls this through the hub. Every refusal carries a code, is counted in
   * the round's record and acknowledged to the site, and the round goes on.
   */
  submit(site: string, update: SiteUpdate): SubmitResult {
    const claimed = typeof update?.round === 'number' ? update.round : null;
    const rec = this.attempt;
    let err = judgeUpdate(site, update, rec, this.ready ? (this.cp as Checkpoint).params.length : null);
    if (!err && rec?.secure) {
      // Phase 1 of secure aggregation: the update's signed keys must verify for this attempt.
      err = rec.secure.receiveUpdate(site, update);
      if (err) rec.answered.add(site);
    }
    if (err) {
      (rec?.rejections ?? this.between).add(err.code);
      (rec?.log ?? this.log).child({ site }).warn({ code: err.code, claimedRound: claimed }, 'update rejected');
      this.hub.sendAck(site, { round: claimed ?? -1, accepted: false, error: err.toWire() });
      this.notify('update-rejected', { round: claimed, site, code: err.code });
      return { accepted: false, error: err.toWire() };
    }
    const r = rec as RoundAttempt;
    r.accepted.set(site, update);
    r.answered.add(site);
    r.log.child({ site }).debug({ examples: update.counts.examples }, 'update accepted');
    this.hub.sendAck(site, { round: r.round, accepted: true });
    this.notify('update-accepted', { round: r.round, attempt: r.attempt, site, examples: update.counts.examples });
    crashPoint('collect');
    r.wait?.poke();
    return { accepted: true };
  }

  /**
   * Counts a message the transport refused before it became an update (oversize, undecodable, wrong length,
   * NaN, rate-limited): in the open attempt's record, or between rounds in the next round's. The transport has
   * already logged and acknowledged it; `round` is the round it was about, when known.
   */
  recordRejection(site: string, round: number | null, code: ErrorCode): void {
    (this.attempt?.rejections ?? this.between).add(code);
    this.notify('update-rejected', { round, site, code });
  }

  /** Marks a version for agents to use in `detect`: a number, or 'best' by the sites' own validation. */
  async release(target: number | 'best'): Promise<number> {
    this.requireReady();
    return this.serialWrite(async () => {
      const cp = this.cp as Checkpoint;
      const available = new Set(await this.store.listVersions());
      available.add(cp.version);
      const version = chooseRelease(cp, target, available);
      const next = withRelease(cp, version);
      if (next !== cp) {
        await this.store.commit(next);
        this.cp = next;
      }
      this.announceRelease(version, target === 'best' ? 'best' : 'by number');
      return version;
    });
  }

  /** Returns to the previous release and tells the sites. */
  async rollback(): Promise<number> {
    this.requireReady();
    return this.serialWrite(async () => {
      const next = withRollback(this.cp as Checkpoint);
      await this.store.commit(next);
      this.cp = next;
      const version = next.released.at(-1) as number;
      this.announceRelease(version, 'rollback');
      return version;
    });
  }

  status(): EngineStatus {
    const cp = this.cp;
    const last = this.pendingAborted.at(-1) ?? cp?.history.at(-1) ?? null;
    const rec = this.attempt;
    const inFlight = this.inFlight && rec ? { ...this.inFlight, answered: rec.answered.size, accepted: rec.accepted.size } : this.inFlight;
    return {
      ready: this.ready,
      version: cp?.version ?? null,
      nextRound: cp?.nextRound ?? null,
      roundInFlight: inFlight ? { ...inFlight } : null,
      sitesOnline: this.hub.online(),
      lastRound: last,
      released: cp?.released.at(-1) ?? null,
      releases: cp ? [...cp.released] : [],
    };
  }

  /** The committed meta-parameters (a copy). */
  params(): Float32Array {
    this.requireReady();
    return (this.cp as Checkpoint).params.slice();
  }

  /** The last committed checkpoint; treat it as read-only. */
  checkpoint(): Checkpoint | null {
    return this.cp;
  }

  /**
   * SHA-256 of the meta-parameters and of the optimizer state the engine holds, as the admin status shows them:
   * after a restart they must equal those of the checkpoint it restored from (`digestState` of that checkpoint).
   */
  stateDigest(): StateDigest | null {
    if (!this.cp || !this.optState) return null;
    return this.digests.of(this.cp.version, this.cp.params, this.optState);
  }

  /** Stops taking updates and ends the round in flight without committing it; `runRound` then rejects. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.gathering?.cancel();
    this.attempt?.wait?.cancel();
    this.secureRound?.cancel();
  }

  private requireReady(): void {
    if (this.closed) throw new FedmetaError(ErrorCode.NOT_READY, 'the round engine was closed; restart the coordinator to continue');
    if (!this.cp) throw new FedmetaError(ErrorCode.NOT_READY, 'the round engine has not restored its state yet; call init() first');
  }

  private presence(site: string, online: boolean): void {
    this.log.debug({ site, online }, online ? 'site online' : 'site offline');
    if (this.closed) return;
    const rec = this.attempt;
    const waiting = rec !== null && rec.sampledSet.has(site) && !rec.answered.has(site);
    if (!online) {
      if (waiting) rec.dropped.add(site);
      return;
    }
    this.gathering?.poke();
    if (waiting && rec.dropped.delete(site)) {
      // A sampled site that lost its connection mid-round gets the offer again, so it can still make the deadline.
      rec.log.child({ site }).info('re-sending the round offer to a site that reconnected');
      this.hub.sendOffer(site, rec.offerFor(site));
    }
  }

  /** A secure-aggregation message: judged by the open secure round, or stale when there is none. */
  private secAggMessage(site: string, msg: SecAggFromSite): UpdateAck {
    if (this.secureRound) return this.secureRound.receive(site, msg);
    const err = new FedmetaError(ErrorCode.STALE_ROUND, 'no securely aggregated round is in its phases now; wait for the next offer');
    this.recordRejection(site, typeof msg?.round === 'number' ? msg.round : null, err.code);
    return { round: typeof msg?.round === 'number' ? msg.round : -1, accepted: false, error: err.toWire() };
  }

  private async runAttempt(): Promise<RoundRecord> {
    const cp = this.cp as Checkpoint;
    const { rounds } = this.config;
    const round = cp.nextRound;
    const attempt = this.nextAttempt;
    const log = this.log.child({ round, attempt, version: cp.version });
    const startedAt = new Date(this.clock.now()).toISOString();
    const deadlineMs = rounds.deadlineSeconds * 1000;

    const base = { round, attempt, fromVersion: cp.version, sampled: 0, answered: 0, accepted: 0 };
    this.inFlight = { ...base, phase: 'waiting-for-sites', deadline: this.clock.now() + deadlineMs };
    const needed = sitesToStart(rounds);
    const enough = (): boolean => this.hub.online().length >= needed;
    if (!enough()) {
      log.info({ online: this.hub.online().length, needed }, 'waiting for enough sites to come online');
      this.gathering = waitUntil(this.clock, deadlineMs, enough);
      const ok = await this.gathering.promise;
      this.gathering = null;
      this.throwIfClosed(round);
      if (!ok) {
        const online = this.hub.online().length;
        return this.abort(log, { round, attempt, fromVersion: cp.version, startedAt, sampled: [], accepted: new Map(), rejected: this.between.take() },
          `only ${online} sites were online within the deadline; a round starts with ${needed}`);
      }
    }

    const online = this.hub.online();
    const sampled = sampleSites(online, sampleCount(online.length, rounds.sampleFraction, rounds.minSites), this.seed, round, attempt);
    const rate = roundSamplingRate(sampled.length, online.length);
    // Before anything is journaled or offered: a round that does not fit the privacy budget never starts.
    this.privacy?.requireRoom(rate);
    this.sampling = { rate, sites: sampled.length };
    const seed = taskSeed(this.seed, round);
    const deadline = this.clock.now() + deadlineMs;
    const offer = roundOffer(cp, round, withTaskDp(roundTask(rounds, seed), this.dp), deadline);
    await this.store.appendJournal({ type: 'round-started', round, attempt, fromVersion: cp.version, sampled, taskSeed: seed, deadline, at: startedAt });
    this.throwIfClosed(round);

    const rec = new RoundAttempt(round, attempt, offer, sampled, startedAt, log, this.between.take());
    if (this.secure) {
      rec.secure = this.openSecureRound(rec, cp.params.length);
      const why = rec.secure.problem();
      if (why !== null) return this.abort(log, { round, attempt, fromVersion: cp.version, startedAt, sampled, accepted: new Map(), rejected: rec.rejections.current }, why);
      this.secureRound = rec.secure;
    }
    const carried = this.carried;
    this.carried = null;
    if (carried && carried.round === round && carried.version === cp.version) {
      for (const site of sampled) {
        const u = carried.accepted.get(site);
        if (u) rec.accepted.set(site, u);
        if (u || carried.answered.has(site)) rec.answered.add(site);
      }
    }
    this.attempt = rec;
    this.inFlight = { ...base, phase: 'collecting', sampled: sampled.length, deadline };
    log.info({ sampled: sampled.length, online: online.length, carried: rec.accepted.size, deadline: new Date(deadline).toISOString() }, 'round started');
    this.notify('round-started', { round, attempt, version: cp.version, sampled: [...sampled], deadline });
    for (const [i, site] of sampled.entries()) {
      this.hub.sendOffer(site, rec.offerFor(site));
      if (i === 0) crashPoint('broadcast');
    }

    rec.wait = waitUntil(this.clock, deadline - this.clock.now(), () => rec.allAnswered());
    const everyone = await rec.wait.promise;
    this.attempt = null;
    this.throwIfClosed(round);
    this.inFlight = { ...base, phase: 'committing', sampled: sampled.length, answered: rec.answered.size, accepted: rec.accepted.size, deadline };
    log.info({ answered: rec.answered.size, accepted: rec.accepted.size, sampled: sampled.length, byDeadline: !everyone }, 'collection closed');

    const input = { round, attempt, fromVersion: cp.version, startedAt, sampled, accepted: rec.accepted, rejected: rec.rejections.current };
    const quorum = quorumFor(rounds.quorum, sampled.length);
    if (rec.accepted.size < quorum) {
      this.secureRound = null;
      // Keys are per attempt: what a secure attempt was given cannot count in the next.
      if (!rec.secure) this.carried = { round, version: cp.version, accepted: new Map(rec.accepted), answered: new Set(rec.answered) };
      return this.abort(log, input, `${rec.accepted.size} of ${sampled.length} sampled sites sent an acceptable update in time; the quorum is ${quorum}`);
    }
    if (rec.secure) return this.finishSecure(log, rec.secure, input, quorum);
    return this.commitRound(log, input);
  }

  private openSecureRound(rec: RoundAttempt, dim: number): SecureRound {
    const config = this.secure as ActiveSecureConfig;
    const bounds = secureBounds(config, this.config.aggregator, this.dp?.mode === 'central' ? this.dp.clipNorm : null);
    return new SecureRound({
      round: rec.round,
      attempt: rec.attempt,
      sampled: rec.sampled,
      dim,
      config,
      ...bounds,
      hub: this.hub,
      clock: this.clock,
      log: rec.log,
      reject: (site, code) => {
        rec.rejections.add(code);
        this.notify('update-rejected', { round: rec.round, site, code });
      },
    });
  }

  /** Runs the secure phases after the collection, then commits the unmasked sum (or aborts, with the reason). */
  private async finishSecure(log: Logger, secure: SecureRound, input: AttemptOutcome, quorum: number): Promise<RoundRecord> {
    const inFlight = this.inFlight;
    if (inFlight) this.inFlight = { ...inFlight, phase: 'secure-aggregation' };
    const outcome = await secure.run();
    this.secureRound = null;
    this.throwIfClosed(input.round);
    if (inFlight) this.inFlight = { ...inFlight, phase: 'committing' };
    const sum = outcome.ok ? outcome.result : null;
    const contributors = new Map([...input.accepted].filter(([site]) => outcome.ok && outcome.contributors.includes(site)));
    const done: AttemptOutcome = { ...input, accepted: contributors, secureAggregation: secure.summary() };
    if (!outcome.ok) return this.abort(log, done, outcome.reason);
    if (contributors.size < quorum) {
      return this.abort(log, done, `${contributors.size} of ${input.sampled.length} sampled sites are in the secure sum; the quorum is ${quorum}`);
    }
    const total = sum as NonNullable<typeof sum>;
    return this.commitRound(log, { ...done, secureSum: { kind: 'secure-sum', sum: total.sum, totalWeight: total.weightSum, sites: contributors.size } });
  }

  private async commitRound(log: Logger, input: AttemptOutcome): Promise<RoundRecord> {
    const cp = this.cp as Checkpoint;
    const { aggregator, optimizer } = this.config;
    const sampling = this.sampling as { rate: number; sites: number };
    const central = this.dp?.mode === 'central' ? { clipNorm: this.dp.clipNorm, noiseMultiplier: this.dp.noiseMultiplier, sites: sampling.sites, noise: this.noise } : undefined;
    const t0 = performance.now();
    const step = outerStep(aggregator, optimizer, cp.params, this.optState as OptimizerState, input.secureSum ?? input.accepted, this.lastAggregate, central);
    const t1 = performance.now();
    if (!step.ok) {
      if (step.cause) log.error({ err: step.cause }, 'aggregation failed');
      return this.abort(log, input, step.reason);
    }
    crashPoint('aggregate');
    const record = buildRecord({ ...input, status: 'committed', endedAt: this.nowIso() });
    const privacy = this.spendPrivacy(input.accepted, sampling.rate, log);
    if (privacy) record.privacy = privacy.report();
    const version = await this.serialWrite(async () => {
      const cfg = { aggregator, optimizer, seed: this.seed };
      const features = privacy ? { [PRIVACY_EXTENSION]: privacy.toExtension() } : {};
      const next = nextCheckpoint(this.cp as Checkpoint, step, input.round, cfg, [...this.pendingAborted, record], record.endedAt, features);
      await this.store.commit(next);
      crashPoint('commit');
      // Only a durable commit moves the engine on; a failed one leaves the round to be run again.
      this.cp = next;
      this.optState = step.optimizer;
      this.lastAggregate = aggregator.kind === 'centered-clipping' ? step.gradient : null;
      this.privacy = privacy ?? this.privacy;
      this.seenUncommitted.clear();
      this.pendingAborted = [];
      this.nextAttempt = 0;
      return next.version;
    });
    // Aggregation and optimizer step, then the durable write: what a round costs once its updates are in.
    const timings = { aggregateMs: millis(t1 - t0), commitMs: millis(performance.now() - t1) };
    log.info({ newVersion: version, accepted: record.accepted, meanQueryLoss: record.meanQueryLoss, rejected: record.rejected, ...timings, ...(record.privacy ? { privacy: record.privacy } : {}) }, 'round committed');
    this.notify('round-committed', { record, version, timings });
    return record;
  }

  /** The privacy ledger after this round (not yet adopted), or null with DP off. */
  private spendPrivacy(accepted: ReadonlyMap<string, SiteUpdate>, rate: number, log: Logger): PrivacyLedger | null {
    if (!this.privacy) return null;
    if (this.privacy.config.mode === 'central') return this.privacy.afterCentralRound(rate);
    // Each update once: one carried over from an aborted attempt is the same object in the committing one.
    const seen = new Map(this.seenUncommitted);
    for (const [site, u] of accepted) seen.set(u, site);
    return this.privacy.afterLocalRound(this.config.rounds, [...seen].map(([u, site]) => [site, u] as const), log);
  }

  private async abort(log: Logger, input: AttemptOutcome, reason: string): Promise<RoundRecord> {
    const record = buildRecord({ ...input, status: 'aborted', endedAt: this.nowIso(), reason });
    this.pendingAborted.push(record);
    if (this.dp?.mode === 'local') for (const [site, u] of input.accepted) this.seenUncommitted.set(u, site);
    this.nextAttempt = input.attempt + 1;
    log.warn({ reason, accepted: record.accepted, rejected: record.rejected }, 'round aborted; it will be re-issued');
    try {
      await this.store.appendJournal({ type: 'round-aborted', round: input.round, attempt: input.attempt, record, at: record.endedAt });
    } catch (e) {
      // The abort changes nothing durable; losing its journal line only loses it from the history.
      log.warn({ err: e }, 'could not journal the aborted round');
    }
    this.notify('round-aborted', { record, attempt: input.attempt });
    return record;
  }

  private announceRelease(version: number, how: string): void {
    const releases = [...(this.cp as Checkpoint).released];
    this.log.info({ version, how }, 'release changed');
    this.hub.broadcastRelease(version);
    this.notify('released', { version, releases });
  }

  private throwIfClosed(round: number): void {
    if (this.closed) {
      this.attempt = null;
      throw new FedmetaError(ErrorCode.NOT_READY, `the round engine was closed during round ${round}; restart the coordinator to resume it`);
    }
  }

  private nowIso(): string {
    return new Date(this.clock.now()).toISOString();
  }

  /** Checkpoint writes (round commits, releases) one at a time, each building on the last. */
  private serialWrite<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writes.then(fn, fn);
    this.writes = run.catch(() => undefined);
    return run;
  }

  /** An observer that throws must not break the round. */
  private notify<K extends keyof EngineEvents>(event: K, ...args: EngineEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: EngineEvents[K]) => boolean)(event, ...args);
    } catch (e) {
      this.log.error({ err: e, event }, 'an engine event listener threw');
    }
  }
}

interface AttemptOutcome extends Omit<RecordInput, 'status' | 'endedAt' | 'reason'> {
  attempt: number;
  /** A securely aggregated round's unmasked sum, which the outer step takes instead of `accepted`. */
  secureSum?: SecureSum;
}
