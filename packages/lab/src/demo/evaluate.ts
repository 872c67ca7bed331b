import { clearPredictCache, deriveSeed } from '@fedmeta/shared';
import type { EvalConfig } from '../config.js';
import type { Dataset } from '../eval/data.js';
import { planRun } from '../eval/plan.js';
import type { Progress } from '../eval/progress.js';
import { drawTasks } from '../eval/protocol.js';
import { checkResults } from '../eval/results.js';
import type { CurvePoint, EvalResults } from '../eval/results.js';
import { evaluate } from '../eval/runner.js';
import { metricsOf, scoreStart, tuneSchedules } from '../eval/scoring.js';
import type { MlpStart, TunedSchedule } from '../eval/scoring.js';
import { splitForFamily } from '../eval/splits.js';
import type { FamilySplit } from '../eval/splits.js';
import { parseMethod } from '../methods/names.js';
import { summarize } from '../metrics/index.js';
import type { DetectionMetrics } from '../metrics/index.js';
import type { FederationRun } from './federation-run.js';

/** The harness's seed of its first (and, in the demo, only) run: the split and every draw derive from it. */
export function demoSeed(config: EvalConfig): number {
  return deriveSeed(config.seed, 'seed', 0);
}

/** The offices of the demo: exactly the split the harness evaluates on, so the agents hold the same flows. */
export function demoSplit(config: EvalConfig, dataset: Dataset): FamilySplit {
  return splitForFamily(dataset.table, dataset.schema, config, config.evalFamilies[0]!, demoSeed(config));
}

export interface FederationScores {
  perK: Map<number, DetectionMetrics[]>;
  schedules: Map<number, TunedSchedule>;
  curve: CurvePoint[];
}

/**
 * Scores the federation's released start by the harness's protocol: its adaptation schedule tuned per K on the
 * validation office, then adapted on the same support draws as every other method and scored on the held-out
 * office's query flows; and its learning curve, every kept version scored at the target K.
 */
export function scoreFederation(config: EvalConfig, split: FamilySplit, run: FederationRun, algorithm: string): FederationScores {
  const method = parseMethod(algorithm);
  const seed = demoSeed(config);
  const family = config.evalFamilies[0]!;
  const startAt = (version: number): MlpStart => ({ spec: run.spec, params: run.params.get(version)!, method, anilLayers: config.meta.anilLayers });
  const released = startAt(run.released);
  const tuning = drawTasks(split.validation, config.validationFamily, config.K, config.tuning.draws, seed, 'tuning');
  const schedules = tuneSchedules(released, tuning, config.tuning, config.threshold);
  const tasks = drawTasks(split.heldOut, family, config.K, config.supportDraws, seed, 'support');
  const perK = new Map<number, DetectionMetrics[]>();
  for (const K of config.K) {
    perK.set(K, tasks.get(K)!.map((task) => metricsOf(scoreStart(released, schedules.get(K)!, task, config.threshold), task)));
  }
  const K = config.target.K;
  const curveTasks = drawTasks(split.heldOut, family, [K], config.curves.draws, seed, 'curve').get(K)!;
  const curve: CurvePoint[] = [];
  for (const round of planRun(config, run.spec.inputDim).curveRounds) {
    if (!run.params.has(round)) continue;
    const start = startAt(round);
    let f1 = 0;
    let f1At50 = 0;
    for (const task of curveTasks) {
      const m = metricsOf(scoreStart(start, schedules.get(K)!, task, config.threshold), task);
      f1 += m.f1 / curveTasks.length;
      f1At50 += m.f1At50 / curveTasks.length;
    }
    curve.push({ round, f1, f1At50 });
  }
  clearPredictCache();
  return { perK, schedules, curve };
}

/** Adds the federation's start to the harness's results, computed the way the harness computes its own. */
export function mergeFederation(base: EvalResults, config: EvalConfig, run: FederationRun, name: string, scores: FederationScores, settings: Record<string, unknown>): EvalResults {
  const family = config.evalFamilies[0]!;
  const byK: EvalResults['methods'][string] = {};
  for (const [K, list] of scores.perK) byK[String(K)] = summarize(list);
  const hit = scores.curve.find((p) => p[config.target.metric] >= config.target.value);
  const paramCount = run.params.get(run.released)!.length;
  // One training seed: the paired difference against fedavg+ft is over the same support draws, with no interval.
  const against = base.methods['fedavg+ft'];
  const paired: EvalResults['paired'][string][string] = {};
  if (against !== undefined) {
    for (const K of config.K) {
      const a = byK[String(K)];
      const b = against[String(K)];
      if (a !== undefined && b !== undefined) paired[String(K)] = { against: 'fedavg+ft', meanDiff: a.f1.mean - b.f1.mean, ci95: null, pairs: base.seeds };
    }
  }
  return checkResults({
    ...base,
    methods: { ...base.methods, [name]: byK },
    byFamily: { ...base.byFamily, [family]: { ...(base.byFamily[family] ?? {}), [name]: byK } },
    communication: {
      ...base.communication,
      [name]: { targetF1: config.target.value, roundsToTarget: hit?.round ?? null, bytesUploadedPerSite: hit === undefined ? null : hit.round * paramCount * 4 },
    },
    curves: { ...base.curves, [name]: scores.curve },
    paired: { ...base.paired, [family]: { ...(base.paired[family] ?? {}), [name]: paired } },
    adaptation: {
      ...base.adaptation,
      [name]: Object.fromEntries([...scores.schedules].map(([K, s]) => [String(K), { steps: s.steps, lr: s.lr, validationF1: s.validationF1 }])),
    },
    releases: { ...base.releases, [family]: { ...(base.releases[family] ?? {}), [name]: [run.released] } },
    settings: { ...base.settings, federation: settings },
  });
}

/**
 * The baselines in-process on the demo's split (the harness's `evaluate`, with the methods that need no
 * federation of processes), then the federation's start scored and added.
 */
export async function evaluateDemo(
  config: EvalConfig,
  dataset: Dataset,
  split: FamilySplit,
  run: FederationRun,
  algorithm: string,
  settings: Record<string, unknown>,
  progress: Progress,
): Promise<EvalResults> {
  const base = await evaluate(config, { dataset, progress });
  const scores = scoreFederation(config, split, run, algorithm);
  return mergeFederation(base, config, run, algorithm, scores, settings);
}
