import {
  Detector,
  ErrorCode,
  FedmetaError,
  adapt,
  attackFamilies,
  buildEpisode,
  buildTriageEpisode,
  checkParamsFor,
  createRng,
  cryptoNoise,
  deriveSeed,
  dpMetaGradientMean,
  drawDisjoint,
  mergeAccounting,
  metaGradientMean,
  subsetTable,
} from '@fedmeta/shared';
import type {
  Batch,
  DpSgdConfig,
  Episode,
  FlowTable,
  MechanismSteps,
  ModelSpec,
  NoiseSource,
  ParamManifest,
  PrivacyReport,
  Rng,
  RoundTask,
  UpdateMetrics,
} from '@fedmeta/shared';
import { accuracy, addConfusion, confusionAt, f1, type Confusion } from './metrics.js';
import type { SiteData } from './site-data.js';
import { checkInputWidth } from './spec.js';

/**
 * One round's work on this site: episodes from the site's own flows, the meta-gradient the round asks for, and
 * metrics after adaptation. What it returns is exactly what may leave the site: a vector in the offer's layout,
 * two counts and a few scores. No flow, feature value or label is part of it.
 */
export interface TrainOffer {
  round: number;
  version: number;
  task: RoundTask;
  /** The federation's model, as the offer carries it: the network is built from this, never guessed. */
  spec: ModelSpec;
  manifest: ParamManifest;
  params: Float32Array;
}

export interface ComputedUpdate {
  round: number;
  version: number;
  update: Float32Array;
  counts: { episodes: number; examples: number };
  metrics: UpdateMetrics;
  /**
   * With record-level DP (the task's dp): what the site's DP-SGD ran, for the coordinator's accountant. The round
   * worker adds the site's ledger's ε and δ once the update is charged.
   */
  privacy?: PrivacyReport;
  /** With record-level DP: the mechanisms the DP-SGD ran, exactly as the site's own privacy ledger charges them. */
  accounting?: MechanismSteps[];
}

export interface TrainOptions {
  /** The site's secret seed, mixed with the round's seed: the coordinator cannot tell which flows were drawn. */
  siteSeed: number;
  schemaName?: string;
  /** Episodes per synchronous block; the event loop (socket heartbeats) runs between blocks. */
  episodesPerBlock?: number;
  /** DP-SGD's noise (default: the operating system's generator); tests seed it. */
  noise?: NoiseSource;
}

/** Share of each class held back from training episodes, to measure valF1 on flows the inner loop never saw. */
const HOLDOUT_FRACTION = 0.2;
/** Validation episodes (one attack family each) and the query flows per class in each. */
const VALIDATION_FAMILIES = 8;
const VALIDATION_QUERY_CAP = 64;

/** The site's rows split once, per class, into training rows and held-back validation rows. */
export interface Holdout {
  train: FlowTable;
  val: FlowTable;
}

const holdouts = new WeakMap<FlowTable, { seed: number; holdout: Holdout }>();

/**
 * Splits every class (benign, each attack family) into training and held-back rows with a seed fixed for the
 * site, so that valF1 is measured on the same flows round after round and versions compare fairly.
 */
export function siteHoldout(table: FlowTable, siteSeed: number): Holdout {
  const cached = holdouts.get(table);
  if (cached !== undefined && cached.seed === siteSeed) return cached.holdout;
  const rng = createRng(deriveSeed(siteSeed, 'holdout'));
  const groups = new Map<number, number[]>();
  for (let i = 0; i < table.n; i++) {
    const key = table.labels[i] === 0 ? -1 : table.family[i]!;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = []));
    g.push(i);
  }
  const train: number[] = [];
  const val: number[] = [];
  for (const key of [...groups.keys()].sort((a, b) => a - b)) {
    const rows = rng.shuffle(groups.get(key)!);
    // A class needs two training rows (support and query apart) before one can be spared for validation.
    const held = rows.length >= 5 ? Math.floor(rows.length * HOLDOUT_FRACTION) : rows.length >= 3 ? 1 : 0;
    val.push(...rows.slice(0, held));
    train.push(...rows.slice(held));
  }
  const holdout = { train: subsetTable(table, train.sort((a, b) => a - b)), val: subsetTable(table, val.sort((a, b) => a - b)) };
  holdouts.set(table, { seed: siteSeed, holdout });
  return holdout;
}

function rowsWhere(t: FlowTable, pred: (i: number) => boolean): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < t.n; i++) if (pred(i)) out.push(i);
  return Int32Array.from(out);
}

function gatherBatch(t: FlowTable, rows: readonly number[], labels: readonly number[]): Batch {
  const { dim } = t;
  const x = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => x.set(t.x.subarray(r * dim, (r + 1) * dim), i * dim));
  return { x, y: Int32Array.from(labels), n: rows.length, dim };
}

/** Attack families that can fill an episode, cycled in a shuffled order so a round covers as many as it can. */
function familyCycle(names: string[], rng: Rng): () => string {
  const order = rng.shuffle([...names]);
  let k = 0;
  return () => order[k++ % order.length]!;
}

function trainingEpisodes(spec: ModelSpec, train: FlowTable, task: RoundTask, rng: Rng): Episode[] {
  const minRows = task.queryShots > 0 ? 2 : 1;
  const families = attackFamilies(train, minRows);
  const benign = rowsWhere(train, (i) => train.labels[i] === 0).length;
  const episodes: Episode[] = [];
  if (spec.task.kind === 'binary') {
    if (families.length === 0 || benign < minRows) {
      throw new FedmetaError(
        ErrorCode.PRECONDITION,
        `this site has ${families.length} attack families and ${benign} benign flows usable for training; an episode needs at least one family and benign traffic with ${minRows} flows each: add labelled flows to the site's data`,
      );
    }
    const next = familyCycle(families, rng);
    for (let e = 0; e < task.episodes; e++) {
      episodes.push(buildEpisode(train, { family: next(), shots: task.shots, queryShots: task.queryShots, rng }));
    }
    return episodes;
  }
  const ways = spec.task.classes;
  if (families.length < ways) {
    throw new FedmetaError(
      ErrorCode.PRECONDITION,
      `the federation's triage model tells ${ways} attack families apart but this site has ${families.length} with enough flows; add labelled attack flows`,
    );
  }
  for (let e = 0; e < task.episodes; e++) {
    const chosen = rng.shuffle([...families]).slice(0, ways);
    episodes.push(buildTriageEpisode(train, { families: chosen, shots: task.shots, queryShots: task.queryShots, rng }));
  }
  return episodes;
}

/**
 * valF1 and query accuracy of the adapted binary detector: for up to VALIDATION_FAMILIES attack families, adapt
 * on `shots` training flows per class (drawn with a seed fixed for the site) and score held-back flows of that
 * family and held-back benign flows, at threshold 0.5. Counts are pooled over the families (micro average).
 */
function validate(spec: ModelSpec, params: Float32Array, h: Holdout, task: RoundTask, siteSeed: number): { valF1: number; queryAccuracy: number } | null {
  const { train, val } = h;
  const valBenign = Array.from(rowsWhere(val, (i) => val.labels[i] === 0));
  if (valBenign.length === 0 || val.n === 0) return null;
  const trainBenign = rowsWhere(train, (i) => train.labels[i] === 0);
  const rng = createRng(deriveSeed(siteSeed, 'validation'));
  const trained = new Set(attackFamilies(train, 1));
  const candidates = attackFamilies(val, 1).filter((name) => trained.has(name));
  const families = rng.shuffle(candidates).slice(0, VALIDATION_FAMILIES);
  let total: Confusion = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (const name of families) {
    const ft = train.families.indexOf(name);
    const fv = val.families.indexOf(name);
    const trainAttack = rowsWhere(train, (i) => train.labels[i] === 1 && train.family[i] === ft);
    const b = drawDisjoint(trainBenign, task.shots, 0, rng, 'benign');
    const a = drawDisjoint(trainAttack, task.shots, 0, rng, 'attack');
    const support = gatherBatch(train, [...b.support, ...a.support], [...b.support.map(() => 0), ...a.support.map(() => 1)]);
    const attackQuery = rng.shuffle(Array.from(rowsWhere(val, (i) => val.labels[i] === 1 && val.family[i] === fv))).slice(0, VALIDATION_QUERY_CAP);
    const benignQuery = rng.shuffle([...valBenign]).slice(0, Math.max(1, attackQuery.length));
    const query = gatherBatch(val, [...benignQuery, ...attackQuery], [...benignQuery.map(() => 0), ...attackQuery.map(() => 1)]);
    const adapted = adapt(spec, params, support, { steps: task.innerSteps, lr: task.innerLr });
    // A diverged adaptation scores nothing; reporting it as an F1 of 0 would be a measurement, which it is not.
    if (!isFinite32(adapted)) return null;
    const detector = new Detector(spec, adapted);
    try {
      total = addConfusion(total, confusionAt(detector.predict(query.x, query.n), query.y, 0.5));
    } finally {
      detector.dispose();
    }
  }
  if (families.length === 0) return null;
  return { valF1: f1(total), queryAccuracy: accuracy(total) };
}

/**
 * The rate at which DP-SGD's accountant samples this site's records. Episodes draw a fixed number of flows per
 * class rather than a Poisson sample, so the rate is the largest inclusion probability of any record: the flows
 * drawn per class over the rows of the smallest class that can be drawn. For fomaml the query batch is a second
 * noisy sample; one rate, the larger, bounds both. Reptile's query flows only give its reported loss.
 */
export function dpSamplingRate(train: FlowTable, task: RoundTask, binary: boolean): number {
  const minRows = task.queryShots > 0 ? 2 : 1;
  const sizes = attackFamilies(train, minRows).map((name) => {
    const f = train.families.indexOf(name);
    return rowsWhere(train, (i) => train.labels[i] === 1 && train.family[i] === f).length;
  });
  if (binary) sizes.push(rowsWhere(train, (i) => train.labels[i] === 0).length);
  const smallest = Math.min(...sizes);
  const drawn = task.algorithm === 'fomaml' ? Math.max(task.shots, task.queryShots) : task.shots;
  return Math.min(1, drawn / smallest);
}

/** The privacy report of one round's DP-SGD: the task's settings, the sampling rate and the noisy steps run. */
function privacyReport(dp: DpSgdConfig, used: readonly MechanismSteps[]): PrivacyReport {
  return {
    noiseMultiplier: dp.noiseMultiplier,
    clipNorm: dp.clipNorm,
    sampleRate: dp.samplingRate,
    steps: used.reduce((n, m) => n + m.steps, 0),
  };
}

const nextTick = (): Promise<void> => new Promise((r) => setImmediate(r));

function isFinite32(v: Float32Array): boolean {
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) return false;
  return true;
}

/**
 * The mechanisms a round's DP-SGD runs, known before it runs: per episode, the inner steps on one support sample
 * (one mechanism with noise σ/√k, as `dpAdapt` accounts them) and for fomaml one step on the query sample.
 */
function plannedMechanisms(task: RoundTask, dp: DpSgdConfig, episodes: number): MechanismSteps[] {
  const one: MechanismSteps[] = [];
  if (task.innerSteps > 0) one.push({ noiseMultiplier: dp.noiseMultiplier / Math.sqrt(task.innerSteps), samplingRate: dp.samplingRate, steps: 1 });
  if (task.algorithm === 'fomaml') one.push({ noiseMultiplier: dp.noiseMultiplier, samplingRate: dp.querySamplingRate ?? dp.samplingRate, steps: 1 });
  return mergeAccounting(Array.from({ length: episodes }, () => one).flat());
}

/** A round's work made ready (episodes drawn, data checked) but not run, so that its privacy cost is known first. */
export interface PreparedUpdate {
  /** With the task's dp: the mechanisms the DP-SGD will run, which the site's ledger must afford; null without DP. */
  dpPlan: MechanismSteps[] | null;
  /** Trains and returns the update; nothing has touched the model before this. */
  run(): Promise<ComputedUpdate>;
}

/**
 * Computes the site's answer to a round offer. Episodes mirror deployment: one attack family of this site
 * against this site's own benign traffic (an N-way triage of its families for a multiclass model). The episode
 * sampler's seed mixes the round's task seed with the site's secret seed. The returned update is the mean
 * meta-gradient over the episodes (`metaGradientMean` with the round's algorithm and inner loop; with the
 * task's dp, `dpMetaGradientMean`: per-example clipping and Gaussian noise in every noisy step).
 */
export async function computeUpdate(offer: TrainOffer, data: SiteData, opts: TrainOptions): Promise<ComputedUpdate> {
  return prepareUpdate(offer, data, opts).run();
}

/** `computeUpdate` in two steps: checks and episodes first (throwing as it would), the training on `run()`. */
export function prepareUpdate(offer: TrainOffer, data: SiteData, opts: TrainOptions): PreparedUpdate {
  const { spec } = offer;
  checkParamsFor(spec, { manifest: offer.manifest, values: offer.params });
  checkInputWidth(spec, data.table.dim, opts.schemaName ?? 'configured');
  const { task } = offer;
  const holdout = siteHoldout(data.table, opts.siteSeed);
  const rng = createRng(deriveSeed(opts.siteSeed, 'episodes', offer.round, task.seed));
  const episodes = trainingEpisodes(spec, holdout.train, task, rng);
  const dp: DpSgdConfig | null = task.dp
    ? { ...task.dp, samplingRate: dpSamplingRate(holdout.train, task, spec.task.kind === 'binary') }
    : null;
  return {
    dpPlan: dp ? plannedMechanisms(task, dp, episodes.length) : null,
    run: () => train(offer, holdout, episodes, dp, opts),
  };
}

async function train(offer: TrainOffer, holdout: Holdout, episodes: Episode[], dp: DpSgdConfig | null, opts: TrainOptions): Promise<ComputedUpdate> {
  const { spec, task } = offer;
  const inner = { steps: task.innerSteps, lr: task.innerLr };
  const block = Math.max(1, opts.episodesPerBlock ?? 4);
  const noise = dp ? (opts.noise ?? cryptoNoise()) : null;
  const used: MechanismSteps[] = [];
  const sum = new Float64Array(offer.params.length);
  let supportLoss = 0;
  let queryLoss = 0;
  let examples = 0;
  for (let start = 0; start < episodes.length; start += block) {
    const group = episodes.slice(start, start + block);
    let r;
    if (dp) {
      const d = dpMetaGradientMean(task.algorithm, spec, offer.params, group, inner, dp, noise as NoiseSource);
      used.push(...d.accounting);
      r = d;
    } else {
      r = metaGradientMean(task.algorithm, spec, offer.params, group, inner);
    }
    for (let i = 0; i < sum.length; i++) sum[i]! += r.update[i]! * group.length;
    supportLoss += r.metrics.supportLoss * group.length;
    queryLoss += r.metrics.queryLoss * group.length;
    examples += r.metrics.examples;
    await nextTick();
  }
  const k = episodes.length;
  const update = new Float32Array(sum.length);
  for (let i = 0; i < sum.length; i++) update[i] = sum[i]! / k;
  if (!isFinite32(update) || !Number.isFinite(supportLoss) || !Number.isFinite(queryLoss)) {
    throw new FedmetaError(
      ErrorCode.NON_FINITE,
      `training diverged on this site's episodes (NaN or infinity) at inner step size ${task.innerLr}; the update was not sent: lower the federation's rounds.innerLr`,
    );
  }
  const metrics: UpdateMetrics = { supportLoss: supportLoss / k, queryLoss: queryLoss / k };
  if (spec.task.kind === 'binary') {
    const v = validate(spec, offer.params, holdout, task, opts.siteSeed);
    if (v !== null) Object.assign(metrics, v);
  }
  const out: ComputedUpdate = { round: offer.round, version: offer.version, update, counts: { episodes: k, examples }, metrics };
  if (dp) {
    const accounting = mergeAccounting(used);
    out.privacy = privacyReport(dp, accounting);
    out.accounting = accounting;
  }
  return out;
}
