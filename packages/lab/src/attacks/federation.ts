import { ErrorCode, FedmetaError, createLogger, l2Norm, manifestFor, seededNoise } from '@fedmeta/shared';
import type { AggregatorConfig, ModelSpec, OptimizerConfig, PrivacyReport, TaskDp } from '@fedmeta/shared';
import { RoundEngine, createMemoryHub } from '../methods/engine-link.js';
import type { Checkpoint, DpConfig, PrivacySpent, RoundOffer, SiteUpdate } from '../methods/engine-link.js';
import { MemoryEngineStore } from '../methods/memory-store.js';
import type { LabSite, LocalResult } from '../methods/site.js';

/**
 * A federation with misbehaving sites, on the real round engine over the in-memory hub: the engine samples,
 * checks every update, aggregates with the configured (robust) aggregator and steps its outer optimizer as in
 * production. Honest sites answer with their local work; a malicious site answers with whatever its attack
 * crafts.
 *
 * Omniscience: a malicious site may wait for every honest update of the round before answering (the strongest
 * attacker the robustness literature considers, e.g. for "a little is enough" and inner-product manipulation).
 * Honest sites post their update to a board the colluding attackers read; nothing of this reaches the engine,
 * which sees one update per site as usual. Malicious sites report the same counts as honest ones, so that the
 * example-weighted mean gives them no extra weight: the matrix measures the update attack alone.
 */

/** What a site's local computation returns: with record-level DP, also what its DP-SGD ran (sent with the update). */
export interface LocalAnswer extends LocalResult {
  privacy?: PrivacyReport;
}

/**
 * A site's local computation on the offered parameters. `dp` is the round task's record-level DP (present only
 * when the coordinator runs privacy.dp mode local): a site that honours it trains with DP-SGD.
 */
export type LocalFn = (site: LabSite, params: Float32Array, round: number, taskSeed: number, dp?: TaskDp) => LocalAnswer;

export interface MaliciousContext {
  site: LabSite;
  params: Float32Array;
  round: number;
  taskSeed: number;
  /** Sites in the round, and how many of them are malicious. */
  n: number;
  f: number;
  /** What this site would send if it were honest. */
  honestLocal(): LocalResult;
  /** Every honest site's update of this round, once all have been computed (omniscient attackers). */
  honestUpdates(): Promise<Float32Array[]>;
}

/** What a malicious site sends: an update vector (its counts and losses mimic an honest site's). */
export type MaliciousFn = (ctx: MaliciousContext) => Promise<Float32Array> | Float32Array;

export interface FederationRun {
  spec: ModelSpec;
  sites: readonly LabSite[];
  rounds: number;
  init: Float32Array;
  optimizer: OptimizerConfig;
  aggregator: AggregatorConfig;
  /** Seeds the engine's sampling and round tasks. */
  seed: number;
  /** What a round task names (the lab's sites compute what `local` says whatever it names). */
  task: { algorithm: 'reptile' | 'fomaml' | 'maml'; innerSteps: number; innerLr: number; shots: number; queryShots: number; episodes: number };
  local: LocalFn;
  /** Malicious sites by name, each with its attack. */
  malicious?: ReadonlyMap<string, MaliciousFn>;
  /** Sites the engine samples per round, uniformly (default all of them, every round). */
  sampled?: number;
  /** Differential privacy, as the coordinator's privacy.dp configures it (off when absent). */
  privacy?: DpConfig;
  /** Seeds the engine's central-DP noise, so that a run can be repeated (default the operating system's generator). */
  noiseSeed?: number;
  onRound?: (done: number, total: number) => void;
}

export interface FederationOutcome {
  /** The last committed version's parameters (what the matrix releases). */
  params: Float32Array;
  /** Median L2 norm of the honest updates, per round. */
  honestNorms: number[];
  /** With differential privacy: ε spent by the last committed round, at its δ; null without. */
  privacy: PrivacySpent | null;
  wallSeconds: number;
}

function initialCheckpoint(run: FederationRun): Checkpoint {
  return {
    formatVersion: 1,
    version: 0,
    nextRound: 0,
    spec: run.spec,
    manifest: manifestFor(run.spec),
    params: run.init.slice(),
    optimizerConfig: run.optimizer,
    optimizer: { kind: run.optimizer.kind, step: 0, buffers: {} },
    aggregator: run.aggregator,
    rngState: [],
    schemaFingerprint: 'lab',
    history: [],
    released: [],
    createdAt: new Date().toISOString(),
  };
}

interface Waiter {
  resolve: (v: Float32Array[]) => void;
  reject: (e: unknown) => void;
}

/** Honest updates of one round, and the attackers waiting for all of them. */
class RoundBoard {
  private readonly rounds = new Map<number, { got: Float32Array[]; waiters: Waiter[] }>();
  private failure: unknown = null;

  constructor(private readonly honestCount: number) {}

  private entry(round: number): { got: Float32Array[]; waiters: Waiter[] } {
    let e = this.rounds.get(round);
    if (e === undefined) {
      e = { got: [], waiters: [] };
      this.rounds.set(round, e);
      // Only the open round matters; older ones are dropped to keep memory flat.
      for (const r of this.rounds.keys()) if (r < round) this.rounds.delete(r);
    }
    return e;
  }

  post(round: number, update: Float32Array): void {
    const e = this.entry(round);
    e.got.push(update);
    if (e.got.length === this.honestCount) for (const w of e.waiters.splice(0)) w.resolve([...e.got]);
  }

  wait(round: number): Promise<Float32Array[]> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const e = this.entry(round);
    if (e.got.length === this.honestCount) return Promise.resolve([...e.got]);
    return new Promise((resolve, reject) => e.waiters.push({ resolve, reject }));
  }

  fail(err: unknown): void {
    this.failure = err;
    for (const e of this.rounds.values()) for (const w of e.waiters.splice(0)) w.reject(err);
  }
}

export async function runFederation(run: FederationRun): Promise<FederationOutcome> {
  const started = performance.now();
  const n = run.sites.length;
  const malicious = run.malicious ?? new Map<string, MaliciousFn>();
  for (const name of malicious.keys()) {
    if (!run.sites.some((s) => s.name === name)) throw new FedmetaError(ErrorCode.CONFIG, `malicious site ${name} is not one of the federation's sites`);
  }
  const f = malicious.size;
  if (f >= n) throw new FedmetaError(ErrorCode.CONFIG, 'at least one site must be honest');
  const sampled = run.sampled ?? n;
  if (!(Number.isInteger(sampled) && sampled >= 1 && sampled <= n)) throw new FedmetaError(ErrorCode.CONFIG, `cannot sample ${sampled} of ${n} sites per round; sample between 1 and ${n}`);
  if (sampled < n && f > 0) throw new FedmetaError(ErrorCode.CONFIG, 'malicious sites wait for every honest update of a round, so every site must be sampled every round');
  const board = new RoundBoard(n - f);
  const memory = createMemoryHub();
  const engine = new RoundEngine({
    store: new MemoryEngineStore(),
    hub: memory.hub,
    logger: createLogger('lab-attack-engine', { level: 'silent' }),
    ...(run.noiseSeed !== undefined ? { noise: seededNoise(run.noiseSeed) } : {}),
    config: {
      rounds: { sampleFraction: sampled / n, minSites: sampled, quorum: sampled, deadlineSeconds: 3600, maxConsecutiveAborts: 1, ...run.task },
      aggregator: run.aggregator,
      optimizer: run.optimizer,
      seed: run.seed,
      ...(run.privacy !== undefined ? { privacy: run.privacy } : {}),
    },
  });
  const honestNorms: number[] = [];
  const roundNorms = new Map<number, number[]>();
  const errors: unknown[] = [];

  const reply = (offer: RoundOffer, local: Pick<LocalAnswer, 'examples' | 'supportLoss' | 'queryLoss' | 'privacy'>, vector: Float32Array): SiteUpdate => ({
    round: offer.round,
    version: offer.version,
    counts: { episodes: run.task.episodes, examples: local.examples },
    metrics: { supportLoss: local.supportLoss, queryLoss: local.queryLoss },
    update: vector,
    ...(local.privacy !== undefined ? { privacy: local.privacy } : {}),
  });

  const answer = async (site: LabSite, offer: RoundOffer): Promise<SiteUpdate> => {
    const attack = malicious.get(site.name);
    if (attack === undefined) {
      const local = run.local(site, offer.params, offer.round, offer.task.seed, offer.task.dp);
      const norms = roundNorms.get(offer.round) ?? [];
      norms.push(l2Norm(local.update));
      roundNorms.set(offer.round, norms);
      board.post(offer.round, local.update);
      return reply(offer, local, local.update);
    }
    let own: LocalAnswer | undefined;
    const honestLocal = (): LocalAnswer => (own ??= run.local(site, offer.params, offer.round, offer.task.seed, offer.task.dp));
    const vector = await attack({ site, params: offer.params, round: offer.round, taskSeed: offer.task.seed, n, f, honestLocal, honestUpdates: () => board.wait(offer.round) });
    // An attacker that never computed honestly still reports the counts an honest site would.
    const looks = own ?? { examples: run.task.episodes * 2 * (run.task.shots + run.task.queryShots), supportLoss: 0.5, queryLoss: 0.5 };
    return reply(offer, looks, vector);
  };

  for (const site of run.sites) {
    memory.connect(site.name, async (offer) => {
      try {
        return await answer(site, offer);
      } catch (e) {
        // Without this the engine would wait out the round's deadline for an answer that never comes.
        errors.push(e);
        board.fail(e);
        engine.close();
        throw e;
      }
    });
  }
  try {
    await engine.init(initialCheckpoint(run));
    let privacy: PrivacySpent | null = null;
    for (let r = 0; r < run.rounds; r++) {
      try {
        privacy = (await engine.runRound()).privacy ?? null;
      } catch (e) {
        throw errors[0] ?? e;
      }
      const norms = (roundNorms.get(r) ?? []).sort((a, b) => a - b);
      roundNorms.delete(r);
      if (norms.length > 0) honestNorms.push(norms[Math.floor(norms.length / 2)]!);
      run.onRound?.(r + 1, run.rounds);
    }
    return { params: engine.params(), honestNorms, privacy, wallSeconds: (performance.now() - started) / 1000 };
  } finally {
    engine.close();
    for (const site of run.sites) memory.disconnect(site.name);
  }
}
