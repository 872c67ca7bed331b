import { ErrorCode, FedmetaError, clearPredictCache, createRng, deriveSeed, initRuntime, predictScores } from '@fedmeta/shared';
import type { EvalConfig } from '../config.js';
import { aggregatorConfig } from '../attacks/aggregators.js';
import { methodLocal } from '../attacks/behaviour.js';
import { runFederation } from '../attacks/federation.js';
import type { LocalFn } from '../attacks/federation.js';
import { federationRun, loadBase, seedWorld, startOf, tuneAt } from '../attacks/world.js';
import type { SecurityBase, SeedWorld } from '../attacks/world.js';
import type { Dataset } from '../eval/data.js';
import { silentProgress } from '../eval/progress.js';
import type { Progress } from '../eval/progress.js';
import { adaptStart, metricsOf, scoreStart } from '../eval/scoring.js';
import type { Schedule } from '../eval/scoring.js';
import { meanStd } from '../metrics/index.js';
import { adversarialLocal } from './adversarial.js';
import { controlledColumns, controlledMask, lowerBounds } from './features.js';
import { pgdAttack } from './pgd.js';
import type { PgdNorm } from './pgd.js';

export interface EvasionOptions {
  method?: string;
  K?: number;
  seeds?: number;
  rounds?: number;
  draws?: number;
  family?: string;
  /** Attack budgets, standardised units (0 = no attack). */
  budgets?: number[];
  norm?: PgdNorm;
  /** PGD steps of the attack at the office. */
  steps?: number;
  /** Also train with adversarial episodes and compare. */
  adversarial?: boolean;
  /** Budget and PGD steps of the adversarial episodes in training. */
  trainEpsilon?: number;
  trainSteps?: number;
  progress?: Progress;
  dataset?: Dataset;
}

export interface EvasionStart {
  cleanF1: number;
  /** Spread of the per-seed means. */
  cleanF1Std: number;
  cleanFpr: number;
  /** Share of the held-out family's query flows still flagged after the attack, one per budget. */
  detection: number[];
}

export interface EvasionResults {
  kind: 'evasion';
  dataset: string;
  family: string;
  method: string;
  K: number;
  seeds: number;
  draws: number;
  rounds: number;
  norm: PgdNorm;
  steps: number;
  budgets: number[];
  controlled: string[];
  starts: Record<string, EvasionStart>;
  /** With adversarial training: F1 points it gives up on clean flows, and detection points it gains. */
  adversarial?: { epsilon: number; steps: number; cleanF1CostPoints: number; detectionGainPoints: number[] };
  wallSeconds: number;
}

interface Acc {
  f1: number[];
  fpr: number[];
  detection: number[][];
}

/** Clean scores and detection under attack of one start on the held-out office's draws (one seed). */
function measure(base: SecurityBase, world: SeedWorld, params: Float32Array, schedule: Schedule, budgets: readonly number[], norm: PgdNorm, steps: number, acc: Acc): void {
  const { spec } = base.plan;
  const mask = controlledMask(base.dataset.schema);
  const lower = lowerBounds(base.dataset.schema, world.split.heldOut.stats, mask);
  const start = startOf(base, params);
  const perSeed = budgets.map(() => 0);
  let f1 = 0;
  let fpr = 0;
  world.tasks.forEach((task, d) => {
    const scored = scoreStart(start, schedule, task, base.config.threshold);
    const m = metricsOf(scored, task);
    f1 += m.f1 / world.tasks.length;
    fpr += m.fpr / world.tasks.length;
    const adapted = adaptStart(start, schedule, task.support);
    const q = task.query;
    const rows: number[] = [];
    for (let i = 0; i < q.n; i++) if (q.y[i] === 1) rows.push(i);
    const x0 = new Float32Array(rows.length * q.dim);
    rows.forEach((r, k) => x0.set(q.x.subarray(r * q.dim, (r + 1) * q.dim), k * q.dim));
    // A flow evades at budget ε if any attack within ε got it under the threshold: PGD from the flow itself
    // and from a random point of the ball, at ε and at every smaller budget (whose balls lie inside). Taking
    // the best of them keeps the curve monotone even where one PGD run stalls on a flat or masked gradient.
    const evaded = new Uint8Array(rows.length);
    const order = budgets.map((epsilon, b) => ({ epsilon, b })).sort((u, w) => u.epsilon - w.epsilon);
    for (const { epsilon, b } of order) {
      for (const restart of [false, true]) {
        if (epsilon === 0 && restart) continue;
        const rng = restart ? createRng(deriveSeed(world.seed, 'evade', d, b)) : undefined;
        const x = pgdAttack(spec, adapted, x0, rows.length, { epsilon, norm, steps, mask, lower, ...(rng !== undefined ? { rng } : {}) });
        const s = predictScores(spec, adapted, x, rows.length);
        for (let i = 0; i < s.length; i++) if (s[i]! < scored.threshold) evaded[i] = 1;
      }
      let flagged = 0;
      for (let i = 0; i < evaded.length; i++) if (evaded[i] === 0) flagged++;
      perSeed[b]! += flagged / rows.length / world.tasks.length;
    }
  });
  acc.f1.push(f1);
  acc.fpr.push(fpr);
  acc.detection.push(perSeed);
}

/**
 * Trains the method as the benchmark does (the configured offices, plain mean), and with `adversarial` a
 * second time with adversarial episodes; adapts each start at the held-out office and attacks the office's
 * adapted detector with PGD at every budget.
 */
export async function runEvasion(config: EvalConfig, opts: EvasionOptions = {}): Promise<EvasionResults> {
  const started = performance.now();
  await initRuntime();
  const progress = opts.progress ?? silentProgress;
  const K = opts.K ?? 5;
  const seeds = opts.seeds ?? 3;
  const rounds = opts.rounds ?? Math.min(config.rounds, 60);
  const draws = opts.draws ?? config.supportDraws;
  const budgets = opts.budgets ?? [0, 0.1, 0.25, 0.5, 1, 2];
  const norm = opts.norm ?? 'linf';
  const steps = opts.steps ?? 40;
  const trainEpsilon = opts.trainEpsilon ?? 0.25;
  const trainSteps = opts.trainSteps ?? 5;
  if (budgets.some((b) => !(Number.isFinite(b) && b >= 0))) throw new FedmetaError(ErrorCode.CONFIG, 'every evasion budget must be a number >= 0');
  const base = await loadBase(config, opts.method ?? 'fomaml', opts.family, opts.dataset);
  const { spec, work } = base.plan;
  const mask = controlledMask(base.dataset.schema);
  const kinds = opts.adversarial === true ? ['standard', 'adversarial'] : ['standard'];
  const acc = new Map<string, Acc>(kinds.map((k) => [k, { f1: [], fpr: [], detection: [] }]));

  for (let s = 0; s < seeds; s++) {
    const world = seedWorld(base, s, K, draws);
    let schedule: Schedule | null = null;
    for (const kind of kinds) {
      const local: LocalFn =
        kind === 'standard'
          ? methodLocal(base.method, spec, work, config.meta.anilLayers)
          : adversarialLocal(base.method, spec, work, config.meta.anilLayers, base.dataset.schema, world.statsOf, { epsilon: trainEpsilon, norm, steps: trainSteps, mask });
      const out = await runFederation({
        ...federationRun(base, world, local, rounds),
        aggregator: aggregatorConfig('mean', world.sites.length, 0, 1),
        onRound: (done, total) => progress.tick(`[seed ${s + 1}/${seeds}] ${kind}`, done, total),
      });
      progress.event('evasion-trained', { seed: s, start: kind, seconds: Number(out.wallSeconds.toFixed(1)) });
      // One schedule per seed, tuned on the standard start, so both starts adapt the same way.
      schedule ??= tuneAt(base, world, startOf(base, out.params), K);
      measure(base, world, out.params, schedule, budgets, norm, steps, acc.get(kind)!);
    }
    clearPredictCache();
  }
  const starts: Record<string, EvasionStart> = {};
  for (const [kind, a] of acc) {
    const f = meanStd(a.f1);
    starts[kind] = {
      cleanF1: f.mean,
      cleanF1Std: f.std,
      cleanFpr: a.fpr.reduce((x, y) => x + y, 0) / a.fpr.length,
      detection: budgets.map((_, b) => a.detection.reduce((x, d) => x + d[b]!, 0) / a.detection.length),
    };
  }
  const results: EvasionResults = {
    kind: 'evasion',
    dataset: config.dataset,
    family: base.family,
    method: base.method.name,
    K,
    seeds,
    draws,
    rounds,
    norm,
    steps,
    budgets,
    controlled: controlledColumns(base.dataset.schema),
    starts,
    wallSeconds: 0,
  };
  const adv = starts['adversarial'];
  const std = starts['standard']!;
  if (adv !== undefined) {
    results.adversarial = {
      epsilon: trainEpsilon,
      steps: trainSteps,
      cleanF1CostPoints: (std.cleanF1 - adv.cleanF1) * 100,
      detectionGainPoints: budgets.map((_, b) => (adv.detection[b]! - std.detection[b]!) * 100),
    };
  }
  results.wallSeconds = (performance.now() - started) / 1000;
  return results;
}
