import { ErrorCode, FedmetaError, clearPredictCache, deriveSeed, initRuntime } from '@fedmeta/shared';
import type { EvalConfig } from '../config.js';
import { methodLocal } from '../attacks/behaviour.js';
import { runFederation } from '../attacks/federation.js';
import type { LocalFn } from '../attacks/federation.js';
import { heldOutF1 } from '../attacks/score.js';
import { calibrateRadius, federationRun, loadBase, seedWorld, startOf, tuneAt } from '../attacks/world.js';
import type { SecurityBase, SeedWorld } from '../attacks/world.js';
import type { Dataset } from '../eval/data.js';
import { silentProgress } from '../eval/progress.js';
import type { Progress } from '../eval/progress.js';
import type { DpConfig } from '../methods/engine-link.js';
import { meanStd } from '../metrics/index.js';
import { dpSgdLocal, siteSamplingRate } from './site-dp.js';

/**
 * What differential privacy costs in held-out few-shot F1. For every held-out family and seed, the method is
 * trained over simulated sites on the real round engine (the in-memory hub, `sampled` of `sites` sites per
 * round) without DP, with central (site-level) DP at each noise multiplier, and with local (record-level
 * DP-SGD) at one; every start is then adapted and scored at the held-out office as the attack matrix does.
 * The ε of a row is what the engine's own accountant reports after the last round.
 */

export interface PrivacyCostOptions {
  method?: string;
  /** Held-out families (default the config's evaluation families). */
  families?: string[];
  /** Simulated sites (the configured offices cut up; see attacks/sites.ts) and those sampled per round. */
  sites?: number;
  sampled?: number;
  K?: number;
  seeds?: number;
  rounds?: number;
  draws?: number;
  /** Central DP noise multipliers; the clip bound is the median honest update norm at the initial parameters. */
  sigmas?: number[];
  /** δ of central DP (a guarantee per site: below 1 / sites). */
  delta?: number;
  /** Record-level DP-SGD at the sites, or null to skip it. */
  local?: LocalDpOptions | null;
  progress?: Progress;
  dataset?: Dataset;
}

export interface LocalDpOptions {
  noiseMultiplier: number;
  /** Per-example gradient clip bound. */
  clipNorm: number;
  /** δ of record-level DP (a guarantee per flow: below 1 / a site's flows). */
  delta: number;
}

export type Setting = 'init' | 'no-dp' | 'central' | 'local';

/** One setting of one family: F1 over seeds × draws, and what the accountant reports. */
export interface PrivacyCostRow {
  setting: Setting;
  label: string;
  /** Noise multiplier (null without DP). */
  sigma: number | null;
  /** Clip bound, mean over seeds (central: of a site's whole update; local: of one example's gradient). */
  clipNorm: number | null;
  /**
   * The accountant's sampling rate, largest over seeds: central, of a site in a round; local, of a flow in an
   * episode's batch at the site where it is largest (the site with the smallest class).
   */
  samplingRate: number | null;
  /** ε after the last round at `delta`: the largest over seeds (central: the same every seed). */
  epsilon: number | null;
  epsilonPerSeed: number[];
  delta: number | null;
  /** Held-out F1 after adaptation, mean over seeds × support draws, and the spread of the per-seed means. */
  f1: number;
  f1Std: number;
  f1PerSeed: number[];
  /** F1 points lost against the run without DP (null for that run itself). */
  pointsLost: number | null;
  /** Training seconds per seed (0 for the untrained start). */
  seconds: number;
}

export interface PrivacyCostResults {
  kind: 'privacy-cost';
  dataset: string;
  method: string;
  K: number;
  sites: number;
  sampled: number;
  /** The accountant's site sampling rate of a central-DP round. */
  samplingRate: number;
  seeds: number;
  draws: number;
  rounds: number;
  sigmas: number[];
  delta: number;
  local: LocalDpOptions | null;
  families: string[];
  rows: Record<string, PrivacyCostRow[]>;
  wallSeconds: number;
}

interface Measured {
  f1: number;
  epsilon: number | null;
  clipNorm: number | null;
  samplingRate: number | null;
  seconds: number;
}

interface SettingPlan {
  setting: Setting;
  label: string;
  sigma: number | null;
  delta: number | null;
}

function requirePositive(name: string, v: number): void {
  if (!(Number.isFinite(v) && v > 0)) throw new FedmetaError(ErrorCode.CONFIG, `${name} must be a positive number`);
}

function requireDelta(name: string, v: number): void {
  if (!(Number.isFinite(v) && v > 0 && v < 1)) throw new FedmetaError(ErrorCode.CONFIG, `${name} must be a number strictly between 0 and 1`);
}

/** The settings in table order: untrained start, no DP, central DP from least to most noise, local DP. */
function plans(sigmas: readonly number[], delta: number, local: LocalDpOptions | null): SettingPlan[] {
  return [
    { setting: 'init', label: 'init (no training)', sigma: null, delta: null },
    { setting: 'no-dp', label: 'no DP', sigma: null, delta: null },
    ...sigmas.map((sigma): SettingPlan => ({ setting: 'central', label: `central DP σ=${sigma}`, sigma, delta })),
    ...(local ? [{ setting: 'local' as const, label: `local DP-SGD σ=${local.noiseMultiplier}`, sigma: local.noiseMultiplier, delta: local.delta }] : []),
  ];
}

/** One federated training of the seed's world, with or without DP; its last version and the ε it reports. */
async function train(
  base: SecurityBase,
  world: SeedWorld,
  local: LocalFn,
  rounds: number,
  sampled: number,
  privacy: DpConfig | undefined,
  onRound: (done: number, total: number) => void,
): Promise<{ params: Float32Array; epsilon: number | null; seconds: number }> {
  const out = await runFederation({
    ...federationRun(base, world, local, rounds),
    aggregator: { kind: 'mean' },
    sampled,
    ...(privacy !== undefined ? { privacy, noiseSeed: deriveSeed(world.seed, 'dp-noise', privacy.mode, privacy.noiseMultiplier) } : {}),
    onRound,
  });
  if (privacy !== undefined && out.privacy === null) throw new FedmetaError(ErrorCode.PRECONDITION, 'a DP training committed no round, so it spent no ε to report; train for at least one round');
  return { params: out.params, epsilon: out.privacy?.epsilon ?? null, seconds: out.wallSeconds };
}

/** Every setting of one seed of one family, in `plans` order. */
async function measureSeed(
  base: SecurityBase,
  s: number,
  o: { K: number; draws: number; sites: number; sampled: number; rounds: number; seeds: number; settings: SettingPlan[]; local: LocalDpOptions | null; progress: Progress },
): Promise<Measured[]> {
  const { config, plan, method } = base;
  const world = seedWorld(base, s, o.K, o.draws, o.sites);
  const honest = methodLocal(method, plan.spec, plan.work, config.meta.anilLayers);
  const local = dpSgdLocal(method, plan.spec, plan.work, config.meta.anilLayers, honest, deriveSeed(world.seed, 'dp-sgd'));
  const clipNorm = calibrateRadius(world, honest);
  o.progress.event('privacy-seed', { family: base.family, seed: s, sites: world.sites.length, centralClip: Number(clipNorm.toPrecision(3)) });
  const run = async (label: string, privacy: DpConfig | undefined): Promise<{ params: Float32Array; epsilon: number | null; seconds: number }> => {
    const r = await train(base, world, local, o.rounds, o.sampled, privacy, (done, total) => o.progress.tick(`[${base.family} seed ${s + 1}/${o.seeds}] ${label}`, done, total));
    o.progress.event('privacy-run', { family: base.family, seed: s, run: label, epsilon: r.epsilon === null ? null : Number(r.epsilon.toPrecision(4)), seconds: Number(r.seconds.toFixed(1)) });
    return r;
  };
  // The run without DP first: its start tunes the held-out office's adaptation schedule for this seed, which
  // then adapts every start of the seed (as in the attack matrix), so the rows differ only by their training.
  const clean = await run('no DP', undefined);
  const schedule = tuneAt(base, world, startOf(base, clean.params), o.K);
  const score = (p: Float32Array): number => heldOutF1(startOf(base, p), schedule, world.tasks, config.threshold);
  const out: Measured[] = [];
  for (const p of o.settings) {
    if (p.setting === 'init') out.push({ f1: score(world.init), epsilon: null, clipNorm: null, samplingRate: null, seconds: 0 });
    else if (p.setting === 'no-dp') out.push({ f1: score(clean.params), epsilon: null, clipNorm: null, samplingRate: null, seconds: clean.seconds });
    else {
      const central = p.setting === 'central';
      const clip = central ? clipNorm : o.local!.clipNorm;
      const rate = central ? o.sampled / world.sites.length : Math.max(...world.sites.map((site) => siteSamplingRate(site, plan.work, method.algorithm!)));
      const r = await run(p.label, { mode: p.setting, clipNorm: clip, noiseMultiplier: p.sigma!, delta: p.delta!, epsilonBudget: Number.MAX_VALUE });
      out.push({ f1: score(r.params), epsilon: r.epsilon, clipNorm: clip, samplingRate: rate, seconds: r.seconds });
    }
  }
  clearPredictCache();
  return out;
}

function rowOf(p: SettingPlan, perSeed: readonly Measured[], noDpF1: number): PrivacyCostRow {
  const f1PerSeed = perSeed.map((m) => m.f1);
  const { mean, std } = meanStd(f1PerSeed);
  const eps = perSeed.map((m) => m.epsilon).filter((e): e is number => e !== null);
  const clips = perSeed.map((m) => m.clipNorm).filter((c): c is number => c !== null);
  const rates = perSeed.map((m) => m.samplingRate).filter((q): q is number => q !== null);
  return {
    setting: p.setting,
    label: p.label,
    sigma: p.sigma,
    clipNorm: clips.length > 0 ? meanStd(clips).mean : null,
    samplingRate: rates.length > 0 ? Math.max(...rates) : null,
    epsilon: eps.length > 0 ? Math.max(...eps) : null,
    epsilonPerSeed: eps,
    delta: p.delta,
    f1: mean,
    f1Std: std,
    f1PerSeed,
    pointsLost: p.setting === 'no-dp' ? null : (noDpF1 - mean) * 100,
    seconds: meanStd(perSeed.map((m) => m.seconds)).mean,
  };
}

export async function runPrivacyCost(config: EvalConfig, opts: PrivacyCostOptions = {}): Promise<PrivacyCostResults> {
  const started = performance.now();
  await initRuntime();
  const progress = opts.progress ?? silentProgress;
  const families = opts.families ?? [...config.evalFamilies];
  const sites = opts.sites ?? 10;
  const sampled = opts.sampled ?? Math.ceil(sites / 2);
  const K = opts.K ?? 5;
  const seeds = opts.seeds ?? 3;
  const rounds = opts.rounds ?? Math.min(config.rounds, 60);
  const draws = opts.draws ?? config.supportDraws;
  // From least to most noise, each once.
  const sigmas = [...new Set(opts.sigmas ?? [0.5, 1, 2, 4])].sort((a, b) => a - b);
  const delta = opts.delta ?? 1e-3;
  const local = opts.local === undefined ? { noiseMultiplier: 1, clipNorm: 1, delta: 1e-5 } : opts.local;
  if (families.length === 0 || new Set(families).size !== families.length) throw new FedmetaError(ErrorCode.CONFIG, 'name each held-out family once, at least one');
  if (!(Number.isInteger(sampled) && sampled >= 1 && sampled <= sites)) throw new FedmetaError(ErrorCode.CONFIG, `--sampled must be a whole number from 1 to the ${sites} sites`);
  if (sigmas.length === 0 && local === null) throw new FedmetaError(ErrorCode.CONFIG, 'nothing to measure: give central noise multipliers (--sigmas) or keep local DP');
  sigmas.forEach((s) => requirePositive('a noise multiplier (--sigmas)', s));
  requireDelta('--delta', delta);
  if (local) {
    requirePositive('--local-sigma', local.noiseMultiplier);
    requirePositive('--local-clip', local.clipNorm);
    requireDelta('--local-delta', local.delta);
  }
  const settings = plans(sigmas, delta, local);
  const rows: Record<string, PrivacyCostRow[]> = {};
  let dataset = opts.dataset;
  let base: SecurityBase | null = null;
  for (const family of families) {
    base = await loadBase(config, opts.method ?? 'fomaml', family, dataset);
    dataset = base.dataset;
    const perSeed: Measured[][] = [];
    for (let s = 0; s < seeds; s++) perSeed.push(await measureSeed(base, s, { K, draws, sites, sampled, rounds, seeds, settings, local, progress }));
    const column = (i: number): Measured[] => perSeed.map((m) => m[i]!);
    const noDpF1 = meanStd(column(settings.findIndex((p) => p.setting === 'no-dp')).map((m) => m.f1)).mean;
    rows[family] = settings.map((p, i) => rowOf(p, column(i), noDpF1));
  }
  progress.close();
  return {
    kind: 'privacy-cost',
    dataset: config.dataset,
    method: base!.method.name,
    K,
    sites,
    sampled,
    samplingRate: sampled / sites,
    seeds,
    draws,
    rounds,
    sigmas,
    delta,
    local,
    families,
    rows,
    wallSeconds: (performance.now() - started) / 1000,
  };
}
