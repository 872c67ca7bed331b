import { ErrorCode, FedmetaError, clearPredictCache, deriveSeed, initRuntime } from '@fedmeta/shared';
import type { EvalConfig } from '../config.js';
import type { Dataset } from '../eval/data.js';
import { silentProgress } from '../eval/progress.js';
import type { Progress } from '../eval/progress.js';
import type { TunedSchedule } from '../eval/scoring.js';
import { meanStd } from '../metrics/index.js';
import { AGGREGATORS, aggregatorConfig } from './aggregators.js';
import type { AggregatorName } from './aggregators.js';
import { ATTACKS, DEFAULT_ATTACK_PARAMS, attackBehaviour, backdoorBehaviour, methodLocal } from './behaviour.js';
import type { AttackName, AttackParams } from './behaviour.js';
import { runFederation } from './federation.js';
import type { MaliciousFn } from './federation.js';
import { resolveTrigger } from './poison.js';
import { backdoorScore } from './score.js';
import { maliciousCount, maliciousSites } from './sites.js';
import { calibrateRadius, federationRun, loadBase, seedWorld, startOf, tuneAt } from './world.js';
import type { SecurityBase } from './world.js';

export interface AttackMatrixOptions {
  method?: string;
  fractions?: number[];
  aggregators?: AggregatorName[];
  attacks?: AttackName[];
  backdoor?: boolean;
  /** Simulated sites (the configured offices cut up; see sites.ts). */
  sites?: number;
  K?: number;
  seeds?: number;
  rounds?: number;
  draws?: number;
  family?: string;
  params?: Partial<AttackParams>;
  progress?: Progress;
  dataset?: Dataset;
}

/** One cell: held-out F1 (mean over seeds × draws) and, for every run, the backdoor measures. */
export interface MatrixCell {
  f1: number;
  /** Spread of the per-seed means (0 with one seed). */
  f1Std: number;
  /** Triggered attack flows scored benign after adaptation. */
  triggeredBenign: number;
  /** The same flows without the trigger scored benign. */
  plainMiss: number;
}

type ByFraction = Record<string, MatrixCell>;

export interface AttackMatrixResults {
  kind: 'attack-matrix';
  dataset: string;
  family: string;
  method: string;
  K: number;
  sites: number;
  seeds: number;
  draws: number;
  rounds: number;
  fractions: number[];
  /** Malicious sites at each fraction. */
  malicious: Record<string, number>;
  aggregators: AggregatorName[];
  attacks: AttackName[];
  /** The clean run with the plain mean: what every drop is measured against. */
  reference: MatrixCell;
  /** Clean runs of each aggregator as configured for each fraction (f changes trimmed mean and Multi-Krum). */
  clean: Record<string, ByFraction>;
  attacked: Record<string, Record<string, ByFraction>>;
  /** Backdoor runs (model replacement unless the boost is 1): `triggeredBenign` is the success rate. */
  backdoor: Record<string, ByFraction>;
  summary: Record<string, { bestAggregator: string; worstDropPoints: number; worstAttack: string; backdoorSuccess: number | null }>;
  settings: Record<string, unknown>;
  wallSeconds: number;
}

interface RunScore {
  f1: number;
  triggeredBenign: number;
  plainMiss: number;
}

const key = (fraction: number): string => String(fraction);

function cellOf(scores: readonly RunScore[][]): MatrixCell {
  const flat = scores.flat();
  const perSeed = scores.map((s) => s.reduce((a, b) => a + b.f1, 0) / s.length);
  return {
    f1: flat.reduce((a, b) => a + b.f1, 0) / flat.length,
    f1Std: meanStd(perSeed).std,
    triggeredBenign: flat.reduce((a, b) => a + b.triggeredBenign, 0) / flat.length,
    plainMiss: flat.reduce((a, b) => a + b.plainMiss, 0) / flat.length,
  };
}

/**
 * The Byzantine robustness matrix: for every seed, one clean run per aggregator configuration, then every
 * attack × aggregator × fraction and the backdoor × aggregator × fraction, each a full federated training of
 * the method on the round engine, released at its last version and scored at the held-out office.
 */
export async function runAttackMatrix(config: EvalConfig, opts: AttackMatrixOptions = {}): Promise<AttackMatrixResults> {
  const started = performance.now();
  await initRuntime();
  const progress = opts.progress ?? silentProgress;
  const fractions = opts.fractions ?? [0.2, 0.3];
  const aggregators = opts.aggregators ?? [...AGGREGATORS];
  const attacks = opts.attacks ?? [...ATTACKS];
  const siteCount = opts.sites ?? 10;
  const K = opts.K ?? 5;
  const seeds = opts.seeds ?? 3;
  const rounds = opts.rounds ?? Math.min(config.rounds, 60);
  const draws = opts.draws ?? config.supportDraws;
  const backdoor = opts.backdoor !== false;
  const params: AttackParams = { ...DEFAULT_ATTACK_PARAMS, ...opts.params };
  if (fractions.some((f) => !(f > 0 && f < 0.5))) throw new FedmetaError(ErrorCode.CONFIG, 'every malicious fraction must lie strictly between 0 and 0.5');
  if (aggregators.length === 0) throw new FedmetaError(ErrorCode.CONFIG, 'name at least one aggregator');
  // Every aggregator must tolerate every fraction: refused now, before any data is read or trained on.
  for (const fraction of fractions) for (const agg of aggregators) aggregatorConfig(agg, siteCount, maliciousCount(siteCount, fraction), 1);
  const base = await loadBase(config, opts.method ?? 'fomaml', opts.family, opts.dataset);
  const trigger = resolveTrigger(base.dataset.schema);
  const { spec, work } = base.plan;
  const honest = methodLocal(base.method, spec, work, config.meta.anilLayers);

  const scores = new Map<string, RunScore[][]>();
  const push = (id: string, s: number, r: RunScore): void => {
    const list = scores.get(id) ?? [];
    (list[s] ??= []).push(r);
    scores.set(id, list);
  };
  const malicious: Record<string, number> = {};
  const radii: number[] = [];

  for (let s = 0; s < seeds; s++) {
    const world = seedWorld(base, s, K, draws, siteCount);
    const n = world.sites.length;
    const radius = calibrateRadius(world, honest);
    radii.push(radius);
    progress.event('attack-seed', { seed: s, sites: n, radius: Number(radius.toPrecision(3)) });
    const runWith = async (label: string, aggregator: AggregatorName, f: number, bad: ReadonlyMap<string, MaliciousFn>): Promise<Float32Array> => {
      const out = await runFederation({
        ...federationRun(base, world, honest, rounds),
        aggregator: aggregatorConfig(aggregator, n, f, radius),
        malicious: bad,
        onRound: (done, total) => progress.tick(`[seed ${s + 1}/${seeds}] ${label} ${aggregator}`, done, total),
      });
      progress.event('attack-run', { seed: s, run: label, aggregator, seconds: Number(out.wallSeconds.toFixed(1)) });
      return out.params;
    };
    let schedule: TunedSchedule | null = null;
    const score = (p: Float32Array): RunScore => {
      const r = backdoorScore(startOf(base, p), schedule, world.tasks, config.threshold, trigger, world.split.heldOut.stats);
      return { f1: r.f1, triggeredBenign: r.success, plainMiss: r.plainMiss };
    };

    // The reference first: its start also tunes the held-out office's adaptation schedule for this seed.
    const reference = await runWith('clean', 'mean', 0, new Map());
    schedule = tuneAt(base, world, startOf(base, reference), K);
    const referenceScore = score(reference);
    push('reference', s, referenceScore);
    const cleanDone = new Map<string, RunScore>([['mean', referenceScore]]);
    for (const fraction of fractions) {
      const bad = maliciousSites(world.sites.map((x) => x.name), fraction, world.seed);
      const f = bad.length;
      malicious[key(fraction)] = f;
      for (const agg of aggregators) {
        // Only trimmed mean and Multi-Krum depend on f: the other clean runs serve every fraction.
        const id = agg === 'trimmed-mean' || agg === 'multi-krum' ? `${agg}|${f}` : agg;
        let r = cleanDone.get(id);
        if (r === undefined) {
          r = score(await runWith('clean', agg, f, new Map()));
          cleanDone.set(id, r);
        }
        push(`clean|${agg}|${key(fraction)}`, s, r);
      }
      const deps = { method: base.method, spec, work, anilLayers: config.meta.anilLayers, params, seed: deriveSeed(world.seed, 'attack') };
      const plans: Array<{ id: string; label: string; fn: MaliciousFn }> = attacks.map((a) => ({ id: `attack|${a}`, label: a, fn: attackBehaviour(a, deps) }));
      if (backdoor) plans.push({ id: 'backdoor', label: 'backdoor', fn: backdoorBehaviour(deps, trigger, world.statsOf) });
      for (const p of plans) {
        const badMap = new Map(bad.map((name) => [name, p.fn] as const));
        for (const agg of aggregators) push(`${p.id}|${agg}|${key(fraction)}`, s, score(await runWith(`${p.label}@${Math.round(fraction * 100)}%`, agg, f, badMap)));
      }
    }
    clearPredictCache();
  }
  return assemble(base, scores, { fractions, aggregators, attacks, siteCount, K, seeds, rounds, draws, malicious, params, radii, backdoor, started });
}

interface AssembleInput {
  fractions: number[];
  aggregators: AggregatorName[];
  attacks: AttackName[];
  siteCount: number;
  K: number;
  seeds: number;
  rounds: number;
  draws: number;
  malicious: Record<string, number>;
  params: AttackParams;
  radii: number[];
  backdoor: boolean;
  started: number;
}

function assemble(base: SecurityBase, scores: ReadonlyMap<string, RunScore[][]>, a: AssembleInput): AttackMatrixResults {
  const cell = (id: string): MatrixCell => {
    const list = scores.get(id);
    if (list === undefined) throw new FedmetaError(ErrorCode.PRECONDITION, `no runs were scored for ${id}`);
    return cellOf(list);
  };
  const perAgg = (prefix: string): Record<string, ByFraction> =>
    Object.fromEntries(a.aggregators.map((agg) => [agg, Object.fromEntries(a.fractions.map((fr) => [key(fr), cell(`${prefix}|${agg}|${key(fr)}`)]))]));
  const reference = cell('reference');
  const clean = perAgg('clean');
  const attacked = Object.fromEntries(a.attacks.map((atk) => [atk, perAgg(`attack|${atk}`)]));
  const backdoor = a.backdoor ? perAgg('backdoor') : {};
  const summary: AttackMatrixResults['summary'] = {};
  for (const fr of a.fractions) {
    let best: { agg: string; drop: number; attack: string } | null = null;
    for (const agg of a.aggregators) {
      // Without attacks, the aggregator's own clean cost is what it loses.
      let worst = { drop: (reference.f1 - clean[agg]![key(fr)]!.f1) * 100, attack: 'clean' };
      for (const atk of a.attacks) {
        const drop = (reference.f1 - attacked[atk]![agg]![key(fr)]!.f1) * 100;
        if (drop > worst.drop) worst = { drop, attack: atk };
      }
      if (best === null || worst.drop < best.drop) best = { agg, drop: worst.drop, attack: worst.attack };
    }
    summary[key(fr)] = {
      bestAggregator: best!.agg,
      worstDropPoints: best!.drop,
      worstAttack: best!.attack,
      backdoorSuccess: a.backdoor ? backdoor[best!.agg]![key(fr)]!.triggeredBenign : null,
    };
  }
  return {
    kind: 'attack-matrix',
    dataset: base.config.dataset,
    family: base.family,
    method: base.method.name,
    K: a.K,
    sites: a.siteCount,
    seeds: a.seeds,
    draws: a.draws,
    rounds: a.rounds,
    fractions: a.fractions,
    malicious: a.malicious,
    aggregators: a.aggregators,
    attacks: a.attacks,
    reference,
    clean,
    attacked,
    backdoor,
    summary,
    settings: {
      attackParams: a.params,
      clipRadiusPerSeed: a.radii,
      release: 'the last version (sites could lie about their validation scores, so the best-by-validation rule is not used)',
      omniscient: 'alie and ipm read every honest update of the round before answering',
      model: { hidden: base.plan.spec.hidden, activation: base.plan.spec.activation, inputDim: base.plan.spec.inputDim },
      local: base.plan.work,
      threshold: base.config.threshold,
    },
    wallSeconds: (performance.now() - a.started) / 1000,
  };
}
