import { ErrorCode, FedmetaError, deriveSeed, initParams, l2Norm } from '@fedmeta/shared';
import type { FeatureStats } from '@fedmeta/shared';
import type { EvalConfig } from '../config.js';
import { loadDataset } from '../eval/data.js';
import type { Dataset } from '../eval/data.js';
import { optimizerFor, planRun } from '../eval/plan.js';
import type { RunPlan } from '../eval/plan.js';
import { drawTasks } from '../eval/protocol.js';
import type { FewShotTask } from '../eval/protocol.js';
import { tuneSchedules } from '../eval/scoring.js';
import type { MlpStart, TunedSchedule } from '../eval/scoring.js';
import { splitForFamily } from '../eval/splits.js';
import type { FamilySplit, Office } from '../eval/splits.js';
import { parseMethod } from '../methods/names.js';
import type { MethodSpec } from '../methods/names.js';
import { prepareSite } from '../methods/site.js';
import type { LabSite } from '../methods/site.js';
import type { FederationRun, LocalFn } from './federation.js';
import { simulateSites } from './sites.js';

/**
 * What every security experiment shares: the dataset, the method under test, and per seed the offices, the
 * federated sites, the held-out office's few-shot tasks and the adaptation schedule. Built once per seed so
 * that every run of a seed (clean or attacked, any aggregator) meets the same flows and the same tasks.
 */
export interface SecurityBase {
  config: EvalConfig;
  dataset: Dataset;
  plan: RunPlan;
  method: MethodSpec;
  /** The held-out family (the few-shot target). */
  family: string;
}

export async function loadBase(config: EvalConfig, methodName: string, family?: string, dataset?: Dataset): Promise<SecurityBase> {
  const method = parseMethod(methodName);
  if (!method.federated) throw new FedmetaError(ErrorCode.CONFIG, `method ${method.name} is not trained over the federation; choose fedavg+ft, reptile, fomaml or maml`);
  const target = family ?? (config.evalFamilies.includes('Botnet') ? 'Botnet' : config.evalFamilies[0]!);
  const data =
    dataset ??
    (await loadDataset({ files: config.files, schemaRef: config.schemaRef, ...(config.data.maxPerFamily !== undefined ? { maxPerFamily: config.data.maxPerFamily } : {}), seed: config.seed }));
  return { config, dataset: data, plan: planRun(config, data.table.dim), method, family: target };
}

export interface SeedWorld {
  seed: number;
  split: FamilySplit;
  /** The federated sites' offices (the configured ones, or those cut into `siteCount` simulated sites). */
  offices: Office[];
  sites: LabSite[];
  statsOf: (site: LabSite) => FeatureStats;
  init: Float32Array;
  /** The held-out office's support draws at K. */
  tasks: FewShotTask[];
}

export function seedWorld(base: SecurityBase, s: number, K: number, draws: number, siteCount?: number): SeedWorld {
  const { config, dataset } = base;
  const seed = deriveSeed(config.seed, 'seed', s);
  const split = splitForFamily(dataset.table, dataset.schema, config, base.family, seed);
  const offices = siteCount === undefined ? split.sites : simulateSites(split.sites, siteCount, seed);
  const sites = offices.map((o) => prepareSite(o, seed, config.local.shots));
  const stats = new Map<string, FeatureStats>(offices.map((o) => [o.name, o.stats]));
  const metaSgd = base.method.metaSgd ? { metaSgd: true, ...(config.meta.metaSgdLr !== undefined ? { metaSgdLr: config.meta.metaSgdLr } : {}) } : {};
  return {
    seed,
    split,
    offices,
    sites,
    statsOf: (site) => stats.get(site.name)!,
    init: initParams(base.plan.spec, deriveSeed(seed, 'init'), metaSgd).values,
    tasks: drawTasks(split.heldOut, base.family, [K], draws, seed, 'support').get(K)!,
  };
}

/** The engine settings of one federated training of the method (everything but the aggregator and attacks). */
export function federationRun(base: SecurityBase, world: SeedWorld, local: LocalFn, rounds: number): Omit<FederationRun, 'aggregator'> {
  const w = base.plan.work;
  return {
    spec: base.plan.spec,
    sites: world.sites,
    rounds,
    init: world.init,
    optimizer: optimizerFor(base.method, base.config),
    seed: deriveSeed(world.seed, 'engine', base.method.trainingKey),
    task: {
      algorithm: base.method.algorithm ?? 'reptile',
      innerSteps: w.innerSteps,
      innerLr: base.method.kind === 'fedavg' ? w.sgdLr : w.innerLr,
      shots: w.shots,
      queryShots: w.queryShots,
      episodes: w.episodes,
    },
    local,
  };
}

export function startOf(base: SecurityBase, params: Float32Array): MlpStart {
  return { spec: base.plan.spec, params, method: base.method, anilLayers: base.config.meta.anilLayers };
}

/** Median norm of the sites' honest updates at the initial parameters: the radius robust aggregators clip to. */
export function calibrateRadius(world: SeedWorld, local: LocalFn): number {
  const norms = world.sites.map((site) => l2Norm(local(site, world.init, 0, deriveSeed(world.seed, 'calibrate')).update));
  norms.sort((a, b) => a - b);
  return norms[Math.floor(norms.length / 2)]!;
}

/** The adaptation schedule at K, tuned once per seed on the validation family with a clean start. */
export function tuneAt(base: SecurityBase, world: SeedWorld, start: MlpStart, K: number): TunedSchedule {
  const { config } = base;
  const tasks = drawTasks(world.split.validation, config.validationFamily, [K], config.tuning.draws, world.seed, 'tuning');
  return tuneSchedules(start, tasks, config.tuning, config.threshold).get(K)!;
}
