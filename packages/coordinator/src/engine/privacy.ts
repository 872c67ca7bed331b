import { clipAndNoiseAggregate, clipUpdate, ErrorCode, FedmetaError, RdpAccountant } from '@fedmeta/shared';
import type { AggregatorConfig, Logger, MechanismSteps, MetaAlgorithm, NoiseSource, RdpAccountantState, RoundTask } from '@fedmeta/shared';
import { PRIVACY_EXTENSION } from '../metrics/privacy.js';
import type { SiteUpdate } from './hub.js';

/**
 * Differential privacy in the rounds. Two modes, one budget:
 * - central (site-level, DP-FedAvg): every accepted update is clipped to clipNorm, the clipped updates are
 *   summed, N(0, (noiseMultiplier x clipNorm)²) is added to every coordinate and the sum is divided by the
 *   number of sites the round sampled. One round is one sampled Gaussian mechanism for the federation's
 *   accountant. The guarantee covers a whole site's data.
 * - local (record-level, DP-SGD): the round task asks every site to train with DP-SGD; each site reports what
 *   it ran, and the coordinator keeps one accountant per site. The federation's ε is the worst site's. Each
 *   site also reports the ε of its own ledger, which the coordinator checks against its account (a warning,
 *   never a substitute: the coordinator's figure is the one it uses).
 * The accountants live in the checkpoint under `extensions.privacy` (with ε, δ and the budget, which the
 * metrics and the dashboard read), written in the same commit as the round, so a restart continues exactly.
 */

export type DpMode = 'off' | 'central' | 'local';

/** The `privacy.dp` section of the coordinator's configuration. */
export interface DpConfig {
  mode: DpMode;
  /** Clip bound: of a site's whole update (central) or of one example's gradient (local). */
  clipNorm: number;
  noiseMultiplier: number;
  delta: number;
  /** ε at which training stops: no round starts that could take ε past it. */
  epsilonBudget: number;
}

export type ActiveDpConfig = DpConfig & { mode: 'central' | 'local' };

/** Aggregators central DP can calibrate its noise to: those that sum (clipped) updates. */
const CENTRAL_AGGREGATORS: ReadonlySet<AggregatorConfig['kind']> = new Set(['mean', 'norm-clip']);

/** Why this aggregator cannot run under central DP, or null when it can. Shared by the config check and the engine. */
export function centralDpAggregatorProblem(kind: AggregatorConfig['kind']): string | null {
  if (CENTRAL_AGGREGATORS.has(kind)) return null;
  return (
    `central differential privacy adds noise calibrated to the sum of updates clipped to privacy.dp.clipNorm, where one site changes the sum by at most clipNorm; ` +
    `${kind} ranks, trims or re-weights individual updates, whose sensitivity that noise does not cover: use the mean or norm-clip aggregator with central DP`
  );
}

/** Why this meta-algorithm cannot run under local DP-SGD, or null when it can. */
export function localDpAlgorithmProblem(algorithm: MetaAlgorithm): string | null {
  if (algorithm !== 'maml') return null;
  return 'local DP-SGD clips per-example gradients, which second-order maml does not have: use rounds.algorithm reptile or fomaml with privacy.dp.mode local';
}

function fail(field: string, rule: string): never {
  throw new FedmetaError(ErrorCode.CONFIG, `privacy.dp.${field} must be ${rule}; fix it in the coordinator configuration`);
}

/** Checks the DP settings against the rest of the engine's; null when differential privacy is off. */
export function validateDpConfig(dp: DpConfig | undefined, aggregator: AggregatorConfig, algorithm: MetaAlgorithm): Readonly<ActiveDpConfig> | null {
  if (dp === undefined || dp.mode === 'off') return null;
  if (dp.mode !== 'central' && dp.mode !== 'local') fail('mode', "'off', 'central' or 'local'");
  if (!(Number.isFinite(dp.clipNorm) && dp.clipNorm > 0)) fail('clipNorm', 'a positive number');
  if (!(Number.isFinite(dp.noiseMultiplier) && dp.noiseMultiplier > 0)) fail('noiseMultiplier', 'a positive number (without noise there is no guarantee)');
  if (!(Number.isFinite(dp.delta) && dp.delta > 0 && dp.delta < 1)) fail('delta', 'a number strictly between 0 and 1');
  if (!(Number.isFinite(dp.epsilonBudget) && dp.epsilonBudget > 0)) fail('epsilonBudget', 'a positive number');
  const why = dp.mode === 'central' ? centralDpAggregatorProblem(aggregator.kind) : localDpAlgorithmProblem(algorithm);
  if (why !== null) throw new FedmetaError(ErrorCode.CONFIG, why);
  return Object.freeze({ ...dp, mode: dp.mode });
}

/** The DP part of a round task: present only in local mode, where the sites run DP-SGD. */
export function withTaskDp(task: RoundTask, dp: Readonly<ActiveDpConfig> | null): RoundTask {
  if (dp?.mode !== 'local') return task;
  return { ...task, dp: { clipNorm: dp.clipNorm, noiseMultiplier: dp.noiseMultiplier } };
}

/**
 * The accountant's sampling rate for one central-DP round: the sites it sampled over the sites online when it
 * sampled. Per-site privacy depends on the largest probability that any one site is in a round. A site offline
 * at sampling cannot be chosen, and each online site is chosen with probability sampled / online (uniform
 * sampling without replacement), so that is the rate; dividing by the registered sites instead would
 * understate it whenever some are offline. The RDP analysis assumes Poisson sampling at that rate, the usual
 * approximation for a fixed-size sample (as DP-SGD with fixed batches does).
 */
export function roundSamplingRate(sampled: number, online: number): number {
  if (!(Number.isInteger(sampled) && Number.isInteger(online) && sampled >= 1 && online >= sampled)) {
    throw new FedmetaError(ErrorCode.PRECONDITION, `cannot sample ${sampled} of ${online} online sites`);
  }
  return sampled / online;
}

/** What one central-DP round needs besides the updates. */
export interface CentralRound {
  clipNorm: number;
  noiseMultiplier: number;
  /** The divisor of the noisy sum: the number of sites the round sampled, fixed before any site answers. */
  sites: number;
  noise: NoiseSource;
}

/**
 * The noisy mean of the updates (site-name order) under central DP. The mean is unweighted: weighting by a
 * site's example count would let that count change the sensitivity. With norm-clip, updates are clipped to
 * the smaller of its maxNorm and clipNorm; the noise stays calibrated to clipNorm, which only over-protects.
 */
export function centralMean(aggregator: AggregatorConfig, updates: readonly Float32Array[], round: CentralRound): Float32Array {
  const why = centralDpAggregatorProblem(aggregator.kind);
  if (why !== null) throw new FedmetaError(ErrorCode.CONFIG, why);
  const bound = aggregator.kind === 'norm-clip' ? Math.min(aggregator.maxNorm, round.clipNorm) : round.clipNorm;
  const clipped = bound === round.clipNorm ? updates : updates.map((u) => clipUpdate(u, bound).vector);
  // The sampling rate is accounted by the ledger, which sees the whole round; 1 here only satisfies the check.
  const r = clipAndNoiseAggregate(clipped, { clipNorm: round.clipNorm, noiseMultiplier: round.noiseMultiplier, samplingRate: 1, expectedSites: round.sites }, round.noise);
  return r.aggregate;
}

/**
 * Central DP on the secure-aggregation path, where the coordinator sees only the sum: `sum` is the sum of
 * updates each clipped to clipNorm at its site, `sites` the divisor (the sites the round sampled, as the
 * plaintext path uses). Adds N(0, (noiseMultiplier x clipNorm)²) to every coordinate of the sum, in float64,
 * and divides: the same calibrated noise, and the same accounting, as `centralMean`.
 */
export function noiseSecureSum(sum: Float32Array | Float64Array, sites: number, dp: { clipNorm: number; noiseMultiplier: number }, noise: NoiseSource): Float32Array {
  if (!(Number.isFinite(sites) && sites > 0)) throw new FedmetaError(ErrorCode.PRECONDITION, 'the secure sum needs a positive number of sites to divide by');
  if (!(Number.isFinite(dp.clipNorm) && dp.clipNorm > 0 && Number.isFinite(dp.noiseMultiplier) && dp.noiseMultiplier > 0)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'central DP needs clipNorm and noiseMultiplier above 0');
  }
  const std = dp.noiseMultiplier * dp.clipNorm;
  const out = new Float32Array(sum.length);
  for (let i = 0; i < sum.length; i++) out[i] = (sum[i]! + std * noise.normal()) / sites;
  return out;
}

// ---- the ledger: accountants, budget and the checkpoint extension ----

/** One site's accountant under local DP, with what its last round spent (to foresee the next one). */
export interface SiteLedgerState {
  accountant: RdpAccountantState;
  lastRound: MechanismSteps[];
}

/** `checkpoint.extensions.privacy`: what the metrics read (epsilon, delta, budget) and the accountants. */
export interface PrivacyExtension {
  mode: 'central' | 'local';
  epsilon: number;
  delta: number;
  budget: number;
  /** Central: the federation's accountant, one sampled Gaussian mechanism per committed round. */
  accountant?: RdpAccountantState;
  /** Local: one accountant per site that has contributed, by site name. */
  sites?: Record<string, SiteLedgerState>;
  /** Local: the site whose ε is the federation's. */
  worstSite?: string | null;
}

/** What one committed round spent, for its record and the log. */
export interface PrivacySpent {
  epsilon: number;
  delta: number;
  budget: number;
}

function corrupt(what: string): FedmetaError {
  return new FedmetaError(
    ErrorCode.STATE_CORRUPT,
    `the checkpoint's privacy ledger ${what}; restore an earlier checkpoint (never drop the ledger: that would forget privacy already spent)`,
  );
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function mechanisms(v: unknown): MechanismSteps[] {
  if (!Array.isArray(v)) throw corrupt('has a malformed last round');
  return v.map((m) => {
    if (!isRecord(m) || typeof m['noiseMultiplier'] !== 'number' || typeof m['samplingRate'] !== 'number' || typeof m['steps'] !== 'number') {
      throw corrupt('has a malformed last round');
    }
    return { noiseMultiplier: m['noiseMultiplier'], samplingRate: m['samplingRate'], steps: m['steps'] };
  });
}

interface SiteAccount {
  accountant: RdpAccountant;
  lastRound: MechanismSteps[];
}

/**
 * Relative difference between a site's own ε and the coordinator's account of it beyond which they are said to
 * disagree. Both run the same accountant over the same mechanisms, so they agree to rounding; a real
 * disagreement (a site that counts updates this federation never committed, or runs other settings) is far larger.
 */
const SITE_EPSILON_TOLERANCE = 1e-6;

/**
 * Warns when a site's own ledger puts its ε elsewhere than the coordinator's account of it. Compared only at the
 * same δ, and only for a site that sent one update this round: for several (a resend, a new secure attempt) the
 * coordinator counts each, the site only the first. The coordinator keeps its own figure either way.
 */
function checkSiteEpsilon(site: string, report: SiteUpdate['privacy'], account: SiteAccount, delta: number, log: Logger): void {
  if (report?.epsilon === undefined || report.delta === undefined) return;
  if (report.delta !== delta) {
    log.debug({ site, siteDelta: report.delta, delta }, "the site accounts its privacy at another δ; its ε is not compared with the coordinator's");
    return;
  }
  const own = account.accountant.epsilon(delta).epsilon;
  if (Math.abs(report.epsilon - own) <= SITE_EPSILON_TOLERANCE * Math.max(Math.abs(report.epsilon), Math.abs(own))) return;
  log.warn(
    { site, siteEpsilon: report.epsilon, coordinatorEpsilon: own, delta },
    `site ${site} reports ε = ${report.epsilon} from its own privacy ledger, but this coordinator accounts ε = ${own} for it at δ = ${delta}; ` +
      'the coordinator keeps its own figure. The site may have sent updates this federation never counted (rejected ones, or to another coordinator), ' +
      'or run DP-SGD with other settings than it reports: compare its privacy ledger and configuration with the federation\'s',
  );
}

/**
 * The mechanisms a site's DP-SGD ran in one round, as `dpMetaGradientMean` accounts them: per episode, the k
 * inner steps on one support sample (one mechanism with noise σ/√k), and for fomaml one more on the query
 * sample. The site reports one sampling rate, the larger of its support and query rates, which bounds both.
 */
export function localRoundMechanisms(algorithm: MetaAlgorithm, innerSteps: number, episodes: number, noiseMultiplier: number, samplingRate: number): MechanismSteps[] {
  const out: MechanismSteps[] = [{ noiseMultiplier: noiseMultiplier / Math.sqrt(innerSteps), samplingRate, steps: episodes }];
  if (algorithm === 'fomaml') out.push({ noiseMultiplier, samplingRate, steps: episodes });
  return out;
}

/**
 * The federation's privacy spending. Immutable: a round is spent on a copy (`afterCentralRound`,
 * `afterLocalRound`), which the engine adopts only once the round is committed.
 */
export class PrivacyLedger {
  private constructor(
    readonly config: Readonly<ActiveDpConfig>,
    private readonly central: RdpAccountant | null,
    private readonly sites: ReadonlyMap<string, SiteAccount>,
  ) {}

  /**
   * The ledger a checkpoint holds, or a fresh one when it has none (a federation that turns DP on starts
   * counting then). A ledger of the other mode is refused: site-level and record-level ε do not add up.
   */
  static fromExtensions(config: Readonly<ActiveDpConfig>, extensions: Readonly<Record<string, unknown>> | undefined): PrivacyLedger {
    const stored = extensions?.[PRIVACY_EXTENSION];
    if (stored === undefined) {
      return new PrivacyLedger(config, config.mode === 'central' ? new RdpAccountant() : null, new Map());
    }
    if (!isRecord(stored) || (stored['mode'] !== 'central' && stored['mode'] !== 'local')) throw corrupt('is malformed');
    if (stored['mode'] !== config.mode) {
      throw new FedmetaError(
        ErrorCode.CONFIG,
        `this federation has spent its privacy budget under privacy.dp.mode ${stored['mode']}; its ε cannot be carried over to mode ${config.mode}: keep mode ${stored['mode']}, or start a new federation`,
      );
    }
    if (config.mode === 'central') return new PrivacyLedger(config, RdpAccountant.restore(stored['accountant']), new Map());
    const sites = new Map<string, SiteAccount>();
    const raw = stored['sites'];
    if (!isRecord(raw)) throw corrupt('has no site accountants');
    for (const [name, s] of Object.entries(raw)) {
      if (!isRecord(s)) throw corrupt('has a malformed site accountant');
      sites.set(name, { accountant: RdpAccountant.restore(s['accountant']), lastRound: mechanisms(s['lastRound']) });
    }
    return new PrivacyLedger(config, null, sites);
  }

  /** ε spent so far: the federation's (central), or the worst site's (local), with that site. */
  spent(): { epsilon: number; site: string | null } {
    if (this.central) return { epsilon: this.central.epsilon(this.config.delta).epsilon, site: null };
    let worst: { epsilon: number; site: string | null } = { epsilon: 0, site: null };
    for (const name of [...this.sites.keys()].sort()) {
      const e = (this.sites.get(name) as SiteAccount).accountant.epsilon(this.config.delta).epsilon;
      if (e > worst.epsilon) worst = { epsilon: e, site: name };
    }
    return worst;
  }

  /**
   * ε after one more round. Central: one mechanism at this sampling rate. Local: the worst known site after
   * another round like its last (a site not heard from yet has spent nothing, and what its data size makes a
   * round cost is known only from its first report).
   */
  projected(samplingRate: number): number {
    const { delta, noiseMultiplier } = this.config;
    if (this.central) return this.central.epsilonAfter(noiseMultiplier, samplingRate, 1, delta).epsilon;
    let worst = 0;
    for (const s of this.sites.values()) worst = Math.max(worst, s.accountant.epsilonWith(s.lastRound, delta).epsilon);
    return worst;
  }

  /** Throws PRIVACY_BUDGET, saying so in plain words, when another round could take ε past the budget. */
  requireRoom(samplingRate: number): void {
    const next = this.projected(samplingRate);
    const { epsilonBudget: budget, delta } = this.config;
    if (next <= budget) return;
    const { epsilon, site } = this.spent();
    const who = site === null ? '' : ` (site ${site} has spent the most)`;
    throw new FedmetaError(
      ErrorCode.PRIVACY_BUDGET,
      `the privacy budget is spent: ε = ${epsilon.toFixed(3)} of ${budget} at δ = ${delta}${who}, and another round would reach ε = ${next.toFixed(3)}; ` +
        'no more rounds will run. Release a version for detection, or start a new federation with a new budget',
    );
  }

  /** The ledger after a committed central-DP round at this sampling rate. */
  afterCentralRound(samplingRate: number): PrivacyLedger {
    if (!this.central) throw new FedmetaError(ErrorCode.PRECONDITION, 'a central-DP round on a local-DP ledger');
    const next = this.central.clone();
    next.step(this.config.noiseMultiplier, samplingRate, 1);
    return new PrivacyLedger(this.config, next, this.sites);
  }

  /**
   * The ledger after a committed local-DP round: for every update the coordinator saw (one per site, or more if
   * a site answered several attempts), the site's accountant takes what its DP-SGD ran, rebuilt from the task
   * and the site's report. A site that reports no sampling rate is accounted at rate 1 (no amplification by
   * sampling); one that reports less noise than the task asked for, at its own noise. With `log`, a site whose
   * own ε (in its report) disagrees with this account is warned about.
   */
  afterLocalRound(task: Pick<RoundTask, 'algorithm' | 'innerSteps'>, seen: Iterable<readonly [string, SiteUpdate]>, log?: Logger): PrivacyLedger {
    if (this.central) throw new FedmetaError(ErrorCode.PRECONDITION, 'a local-DP round on a central-DP ledger');
    const sites = new Map<string, SiteAccount>();
    for (const [name, s] of this.sites) sites.set(name, s);
    const fresh = new Map<string, SiteAccount>();
    const ordered = [...seen].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [name, u] of ordered) {
      const report = u.privacy ?? {};
      const sigma = Math.min(report.noiseMultiplier ?? this.config.noiseMultiplier, this.config.noiseMultiplier);
      const q = report.sampleRate !== undefined && report.sampleRate > 0 ? Math.min(1, report.sampleRate) : 1;
      const round = localRoundMechanisms(task.algorithm, task.innerSteps, u.counts.episodes, sigma, q);
      // The first update of a site this round starts from a copy of its accountant; a second one adds to it.
      const spent = fresh.get(name);
      const accountant = spent?.accountant ?? this.sites.get(name)?.accountant.clone() ?? new RdpAccountant();
      accountant.record(round);
      const account = { accountant, lastRound: [...(spent?.lastRound ?? []), ...round] };
      fresh.set(name, account);
      sites.set(name, account);
    }
    if (log) {
      const count = new Map<string, number>();
      for (const [name] of ordered) count.set(name, (count.get(name) ?? 0) + 1);
      for (const [name, u] of ordered) {
        if (count.get(name) === 1) checkSiteEpsilon(name, u.privacy, fresh.get(name) as SiteAccount, this.config.delta, log);
      }
    }
    return new PrivacyLedger(this.config, null, sites);
  }

  report(): PrivacySpent {
    return { epsilon: this.spent().epsilon, delta: this.config.delta, budget: this.config.epsilonBudget };
  }

  /** The checkpoint extension: the numbers the metrics read, and the accountants. */
  toExtension(): PrivacyExtension {
    const { epsilon, site } = this.spent();
    const ext: PrivacyExtension = { mode: this.config.mode, epsilon, delta: this.config.delta, budget: this.config.epsilonBudget };
    if (this.central) {
      ext.accountant = this.central.state();
    } else {
      const sites: Record<string, SiteLedgerState> = {};
      for (const name of [...this.sites.keys()].sort()) {
        const s = this.sites.get(name) as SiteAccount;
        sites[name] = { accountant: s.accountant.state(), lastRound: s.lastRound.map((m) => ({ ...m })) };
      }
      ext.sites = sites;
      ext.worstSite = site;
    }
    return ext;
  }
}

export { PRIVACY_EXTENSION };
