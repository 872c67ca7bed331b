import type { EvalConfig } from '../config.js';
import type { DetectionMetrics } from '../metrics/index.js';
import { pairedDifference, summarize } from '../metrics/index.js';
import type { RunPlan } from './plan.js';
import type { CurvePoint, EvalResults } from './results.js';
import type { TunedSchedule } from './scoring.js';

/** The scores of one method at one K for one (family, seed): one entry per support draw. */
export interface RunRecord {
  family: string;
  seed: number;
  method: string;
  K: number;
  metrics: DetectionMetrics[];
}

export interface AggregateInput {
  config: EvalConfig;
  plan: RunPlan;
  runs: readonly RunRecord[];
  schedules: ReadonlyMap<string, ReadonlyMap<number, TunedSchedule>>;
  curveSums: ReadonlyMap<string, ReadonlyMap<number, { f1: number; f1At50: number; n: number }>>;
  /** Float32 values per upload, by training key, for federated trainings. */
  uploadValues: Readonly<Record<string, number>>;
  releases: EvalResults['releases'];
  settings: Record<string, unknown>;
  timing: EvalResults['timing'];
}

const PAIRED_AGAINST = 'fedavg+ft';

function summaries(runs: readonly RunRecord[], methods: readonly string[], Ks: readonly number[]): EvalResults['methods'] {
  const out: EvalResults['methods'] = {};
  for (const m of methods) {
    const byK: EvalResults['methods'][string] = {};
    for (const K of Ks) {
      const all = runs.filter((r) => r.method === m && r.K === K).flatMap((r) => r.metrics);
      if (all.length > 0) byK[String(K)] = summarize(all);
    }
    out[m] = byK;
  }
  return out;
}

/** Mean F1 of each seed (over its support draws), in seed order. */
function perSeedF1(runs: readonly RunRecord[], family: string, method: string, K: number): number[] {
  return runs
    .filter((r) => r.family === family && r.method === method && r.K === K)
    .sort((a, b) => a.seed - b.seed)
    .map((r) => r.metrics.reduce((a, m) => a + m.f1, 0) / r.metrics.length);
}

function curvesOf(input: AggregateInput): Record<string, CurvePoint[]> {
  const out: Record<string, CurvePoint[]> = {};
  for (const [method, perRound] of input.curveSums) {
    out[method] = [...perRound.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([round, s]) => ({ round, f1: s.f1 / s.n, f1At50: s.f1At50 / s.n }));
  }
  return out;
}

/** Pools the per-run scores into the results file's sections. */
export function aggregateResults(input: AggregateInput): EvalResults {
  const { config, plan, runs } = input;
  const names = plan.methods.map((m) => m.name);
  const byFamily: EvalResults['byFamily'] = {};
  for (const family of config.evalFamilies) {
    byFamily[family] = summaries(
      runs.filter((r) => r.family === family),
      names,
      config.K,
    );
  }
  const paired: EvalResults['paired'] = {};
  if (names.includes(PAIRED_AGAINST)) {
    for (const family of config.evalFamilies) {
      const perMethod: EvalResults['paired'][string] = {};
      for (const m of plan.methods.filter((x) => x.kind === 'meta')) {
        const perK: EvalResults['paired'][string][string] = {};
        for (const K of config.K) {
          const d = pairedDifference(perSeedF1(runs, family, m.name, K), perSeedF1(runs, family, PAIRED_AGAINST, K));
          perK[String(K)] = { against: PAIRED_AGAINST, meanDiff: d.mean, ci95: d.ci95, pairs: d.n };
        }
        perMethod[m.name] = perK;
      }
      paired[family] = perMethod;
    }
  }
  const curves = curvesOf(input);
  const communication: EvalResults['communication'] = {};
  for (const m of plan.methods.filter((x) => x.federated)) {
    const curve = curves[m.name] ?? [];
    const hit = curve.find((p) => p[config.target.metric] >= config.target.value);
    const values = input.uploadValues[m.trainingKey];
    communication[m.name] = {
      targetF1: config.target.value,
      roundsToTarget: hit?.round ?? null,
      bytesUploadedPerSite: hit !== undefined && values !== undefined ? hit.round * values * 4 : null,
    };
  }
  const adaptation: EvalResults['adaptation'] = {};
  for (const [method, perK] of input.schedules) {
    const isMetaSgd = plan.methods.find((m) => m.name === method)?.metaSgd === true;
    adaptation[method] = Object.fromEntries(
      [...perK.entries()].map(([K, s]) => [String(K), { steps: s.steps, lr: isMetaSgd ? null : s.lr, validationF1: s.validationF1 }]),
    );
  }
  return {
    dataset: config.dataset,
    evalFamilies: [...config.evalFamilies],
    seeds: config.seeds,
    methods: summaries(runs, names, config.K),
    communication,
    supportDraws: config.supportDraws,
    K: [...config.K],
    byFamily,
    target: { family: config.targetFamily, K: config.target.K, metric: config.target.metric, value: config.target.value },
    curves,
    paired,
    adaptation,
    releases: input.releases,
    settings: input.settings,
    timing: input.timing,
  };
}
