import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, FedmetaError, clearPredictCache, deriveSeed, initParams, initRuntime, runtimeInfo } from '@fedmeta/shared';
import type { EvalConfig } from '../config.js';
import { trainCentralized } from '../methods/centralized.js';
import { trainFederated } from '../methods/federated.js';
import { socketCapable, trainOverSockets } from '../methods/socket-federation.js';
import type { MethodSpec } from '../methods/names.js';
import { prepareSite } from '../methods/site.js';
import type { TrainedStart } from '../methods/training.js';
import type { DetectionMetrics } from '../metrics/index.js';
import { loadDataset } from './data.js';
import type { Dataset } from './data.js';
import { aggregateResults } from './aggregate.js';
import type { RunRecord } from './aggregate.js';
import { optimizerFor, planRun } from './plan.js';
import type { RunPlan } from './plan.js';
import { silentProgress } from './progress.js';
import type { Progress } from './progress.js';
import { drawTasks } from './protocol.js';
import type { FewShotTask } from './protocol.js';
import { checkResults } from './results.js';
import type { EvalResults } from './results.js';
import { metricsOf, scoreBaseline, scoreStart, tuneSchedules } from './scoring.js';
import type { MlpStart, TunedSchedule } from './scoring.js';
import { splitForFamily } from './splits.js';
import type { FamilySplit } from './splits.js';

export type Transport = 'memory' | 'socket';

export interface EvaluateOptions {
  /** Where results.json is written; nothing is written without it. */
  outDir?: string;
  transport?: Transport;
  progress?: Progress;
  /** An already loaded dataset (the config's files are then not read). */
  dataset?: Dataset;
}

/** The start a method hands to the held-out office for one (family, seed). */
function releasedVersion(method: MethodSpec, t: TrainedStart, release: 'best' | 'last'): number {
  if (release === 'last') return t.lastVersion;
  return (method.fineTune ? t.bestAdapted : t.bestPlain) ?? t.lastVersion;
}

function initFor(plan: RunPlan, method: MethodSpec, seed: number, metaSgdLr: number | undefined): Float32Array {
  const opts = method.metaSgd ? { metaSgd: true, ...(metaSgdLr !== undefined ? { metaSgdLr } : {}) } : {};
  return initParams(plan.spec, seed, opts).values;
}

/**
 * Runs the whole benchmark: for every seed and evaluation family, split the offices, train every start, adapt
 * each on the held-out office's K shots (schedules tuned once, on the validation family, at the first seed and
 * family), score, and pool the figures into the results. Writes `<outDir>/results.json` when asked.
 */
export async function evaluate(config: EvalConfig, opts: EvaluateOptions = {}): Promise<EvalResults> {
  const transport = opts.transport ?? 'memory';
  if (transport !== 'memory' && transport !== 'socket') throw new FedmetaError(ErrorCode.CONFIG, 'transport must be memory or socket');
  const started = performance.now();
  const progress = opts.progress ?? silentProgress;
  await initRuntime();
  const dataset = opts.dataset ?? (await loadDataset({ files: config.files, schemaRef: config.schemaRef, ...(config.data.maxPerFamily !== undefined ? { maxPerFamily: config.data.maxPerFamily } : {}), seed: config.seed }));
  const plan = planRun(config, dataset.table.dim);
  progress.event('evaluate-start', { dataset: config.dataset, rows: dataset.table.n, seeds: config.seeds, families: config.evalFamilies.join(','), methods: plan.methods.length, rounds: config.rounds });

  const runs: RunRecord[] = [];
  const schedules = new Map<string, Map<number, TunedSchedule>>();
  const trainingSeconds: Record<string, number> = {};
  const curveSums = new Map<string, Map<number, { f1: number; f1At50: number; n: number }>>();
  const uploadValues: Record<string, number> = {};
  const releases: Record<string, Record<string, number[]>> = {};
  const splitSizes: Record<string, Record<string, number>> = {};
  // Over sockets only plain meta-learning runs on the real coordinator and agents; the rest stay in memory.
  const transports: Record<string, Transport> = Object.fromEntries(plan.trainings.filter((m) => m.federated).map((m) => [m.trainingKey, 'memory' as Transport]));

  for (let s = 0; s < config.seeds; s++) {
    const seed = deriveSeed(config.seed, 'seed', s);
    for (const family of config.evalFamilies) {
      const split = splitForFamily(dataset.table, dataset.schema, config, family, seed);
      if (s === 0) splitSizes[family] = Object.fromEntries([...split.sites, split.validation, split.heldOut].map((o) => [o.name, o.table.n]));
      const sites = split.sites.map((o) => prepareSite(o, seed, config.local.shots));
      const trained = new Map<string, TrainedStart>();
      for (const m of plan.trainings) {
        const setup = {
          method: m,
          spec: plan.spec,
          sites,
          work: plan.work,
          rounds: config.rounds,
          optimizer: optimizerFor(m, config),
          init: initFor(plan, m, deriveSeed(seed, 'init'), config.meta.metaSgdLr),
          seed: deriveSeed(seed, 'engine', m.trainingKey),
          validateEvery: config.validateEvery,
          threshold: config.threshold,
          anilLayers: config.meta.anilLayers,
        };
        const label = `[${family} seed ${s + 1}/${config.seeds}] ${m.trainingKey}`;
        const hooks = { onRound: (done: number, total: number) => progress.tick(label, done, total) };
        const overSockets = transport === 'socket' && socketCapable(m);
        if (overSockets) transports[m.trainingKey] = 'socket';
        const t =
          m.kind === 'centralized'
            ? await trainCentralized(setup, hooks)
            : overSockets
              ? await trainOverSockets({ setup, offices: split.sites, schema: dataset.schema, initSeed: deriveSeed(seed, 'init') }, hooks)
              : await trainFederated(setup, hooks);
        trained.set(m.trainingKey, t);
        trainingSeconds[m.trainingKey] = (trainingSeconds[m.trainingKey] ?? 0) + t.wallSeconds;
        if (m.federated) uploadValues[m.trainingKey] = t.uploadValuesPerRound;
        progress.event('trained', { family, seed: s, method: m.trainingKey, seconds: Number(t.wallSeconds.toFixed(1)), bestVersion: t.bestAdapted, lastVersion: t.lastVersion });
      }
      const startOf = (m: MethodSpec, version?: number): MlpStart => {
        const t = trained.get(m.trainingKey);
        const params = t === undefined ? initFor(plan, m, deriveSeed(seed, 'init'), config.meta.metaSgdLr) : t.paramsOf(version ?? releasedVersion(m, t, config.release));
        return { spec: plan.spec, params, method: m, anilLayers: config.meta.anilLayers };
      };
      if (schedules.size === 0) tune(config, plan, split, seed, startOf, schedules, progress);

      const tasks = drawTasks(split.heldOut, family, config.K, config.supportDraws, seed, 'support');
      for (const m of plan.methods) {
        const t = trained.get(m.trainingKey);
        if (t !== undefined) ((releases[family] ??= {})[m.name] ??= []).push(releasedVersion(m, t, config.release));
        const start = m.kind === 'local-rf' || m.kind === 'local-lr' ? null : startOf(m);
        for (const K of config.K) {
          const list = tasks.get(K)!;
          const metrics = list.map((task, d): DetectionMetrics => {
            const scored = start === null
              ? scoreBaseline(m.kind as 'local-rf' | 'local-lr', task, config.baselines, deriveSeed(seed, 'baseline', K, d), config.threshold)
              : scoreStart(start, schedules.get(m.name)?.get(K) ?? null, task, config.threshold);
            return metricsOf(scored, task);
          });
          runs.push({ family, seed: s, method: m.name, K, metrics });
        }
      }
      if (family === config.targetFamily) {
        measureCurves(config, plan, split, seed, trained, startOf, schedules, curveSums);
      }
      clearPredictCache();
      progress.event('evaluated', { family, seed: s });
    }
  }

  const results = checkResults(
    aggregateResults({
      config,
      plan,
      runs,
      schedules,
      curveSums,
      uploadValues,
      releases,
      settings: {
        transport,
        transportByTraining: transports,
        backend: runtimeInfo()?.backend ?? 'unknown',
        rounds: config.rounds,
        local: plan.work,
        model: { hidden: plan.spec.hidden, activation: plan.spec.activation, inputDim: plan.spec.inputDim },
        normalization: config.normalization,
        release: config.release,
        validateEvery: config.validateEvery,
        validationFamily: config.validationFamily,
        sites: config.sites.map((site) => ({ name: site.name, families: [...site.families] })),
        optimizers: Object.fromEntries(plan.trainings.filter((m) => m.kind !== 'centralized').map((m) => [m.trainingKey, optimizerFor(m, config)])),
        officeRows: splitSizes,
        curveRounds: 'every round up to 20, then every curves.every rounds',
        threshold: config.threshold,
      },
      timing: { wallSeconds: (performance.now() - started) / 1000, trainingSeconds },
    }),
  );
  if (opts.outDir !== undefined) await writeResults(opts.outDir, results);
  progress.event('evaluate-done', { seconds: Number(results.timing.wallSeconds.toFixed(1)), ...(opts.outDir !== undefined ? { out: join(opts.outDir, 'results.json') } : {}) });
  progress.close();
  return results;
}

/** Tunes each fine-tuned start's schedule per K on the validation office, once. */
function tune(
  config: EvalConfig,
  plan: RunPlan,
  split: FamilySplit,
  seed: number,
  startOf: (m: MethodSpec) => MlpStart,
  out: Map<string, Map<number, TunedSchedule>>,
  progress: Progress,
): void {
  const tasks = drawTasks(split.validation, config.validationFamily, config.K, config.tuning.draws, seed, 'tuning');
  for (const m of plan.methods) {
    if (!m.fineTune) continue;
    const tuned = tuneSchedules(startOf(m), tasks, config.tuning, config.threshold);
    out.set(m.name, tuned);
    for (const [K, t] of tuned) progress.event('tuned', { method: m.name, K, steps: t.steps, lr: m.metaSgd ? 'learned' : t.lr, validationF1: Number(t.validationF1.toFixed(3)) });
  }
}

/** Held-out score at the target K after each curve round, summed over seeds (averaged when aggregated). */
function measureCurves(
  config: EvalConfig,
  plan: RunPlan,
  split: FamilySplit,
  seed: number,
  trained: ReadonlyMap<string, TrainedStart>,
  startOf: (m: MethodSpec, version?: number) => MlpStart,
  schedules: ReadonlyMap<string, ReadonlyMap<number, TunedSchedule>>,
  sums: Map<string, Map<number, { f1: number; f1At50: number; n: number }>>,
): void {
  const K = config.target.K;
  const tasks: FewShotTask[] = drawTasks(split.heldOut, config.targetFamily, [K], config.curves.draws, seed, 'curve').get(K)!;
  for (const m of plan.methods) {
    const t = trained.get(m.trainingKey);
    if (t === undefined) continue;
    const perRound = sums.get(m.name) ?? new Map<number, { f1: number; f1At50: number; n: number }>();
    sums.set(m.name, perRound);
    for (const round of plan.curveRounds) {
      if (round > t.lastVersion) continue;
      const start = startOf(m, round);
      const acc = perRound.get(round) ?? { f1: 0, f1At50: 0, n: 0 };
      for (const task of tasks) {
        const metrics = metricsOf(scoreStart(start, schedules.get(m.name)?.get(K) ?? null, task, config.threshold), task);
        acc.f1 += metrics.f1;
        acc.f1At50 += metrics.f1At50;
        acc.n++;
      }
      perRound.set(round, acc);
    }
  }
}

export async function writeResults(outDir: string, results: EvalResults): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const file = join(outDir, 'results.json');
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(results, null, 2)}\n`);
  await rename(tmp, file);
  return file;
}
