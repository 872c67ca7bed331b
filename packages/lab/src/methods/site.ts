import { ErrorCode, FedmetaError, adapt, buildEpisode, createRng, deriveSeed, localTrain, metaGradientMean, predictScores } from '@fedmeta/shared';
import type { Batch, Episode, FlowTable, InnerLoopConfig, MetaAlgorithm, ModelSpec, Rng } from '@fedmeta/shared';
import { gatherRows } from '../eval/protocol.js';
import type { Office } from '../eval/splits.js';
import { confusionAt, f1Of, supportThreshold } from '../metrics/index.js';
import type { Confusion } from '../metrics/index.js';

/**
 * A federated site inside the harness: its own standardised flows, split once into training rows and
 * held-back validation rows, and the local computation it answers a round with. What it returns is what a
 * site agent would send: an update vector, counts and scores, never a flow.
 */
export interface LabSite {
  name: string;
  table: FlowTable;
  families: string[];
  trainBenign: Int32Array;
  /** Training rows of each attack family (indices into `table`). */
  trainAttack: Map<string, Int32Array>;
  /** Fixed validation episodes (one per family with held-back flows), so versions compare on the same flows. */
  validation: Episode[];
  seed: number;
}

/** Share of each class held back from training for the site's own validation score. */
const HOLDOUT_FRACTION = 0.2;
/** Held-back attack flows per family scored in validation (and as many benign ones). */
const VALIDATION_QUERY_CAP = 64;

function heldCount(n: number): number {
  if (n >= 5) return Math.floor(n * HOLDOUT_FRACTION);
  return n >= 3 ? 1 : 0;
}

export function prepareSite(office: Office, seed: number, shots: number): LabSite {
  const t = office.table;
  const rng = createRng(deriveSeed(seed, 'site-holdout', office.name));
  const benign: number[] = [];
  const attack = new Map<string, number[]>(office.families.map((f) => [f, []]));
  for (let i = 0; i < t.n; i++) {
    if (t.labels[i] === 0) benign.push(i);
    else attack.get(t.families[t.family[i]!]!)?.push(i);
  }
  const split = (rows: number[]): { train: Int32Array; held: Int32Array } => {
    const shuffled = rng.shuffle(Int32Array.from(rows));
    const k = heldCount(rows.length);
    return { held: shuffled.slice(0, k), train: shuffled.slice(k) };
  };
  const b = split(benign);
  const trainAttack = new Map<string, Int32Array>();
  const validation: Episode[] = [];
  const heldBenign = rng.shuffle(Int32Array.from(b.held));
  let benignAt = 0;
  for (const family of office.families) {
    const a = split(attack.get(family)!);
    trainAttack.set(family, a.train);
    if (a.held.length === 0 || heldBenign.length === 0 || a.train.length === 0 || b.train.length === 0) continue;
    const supportRows = [...pickSome(b.train, shots, rng), ...pickSome(a.train, shots, rng)];
    const q = a.held.slice(0, VALIDATION_QUERY_CAP);
    // Benign query flows rotate through the held-back benign rows, so families do not all reuse the same ones.
    const qb: number[] = [];
    for (let i = 0; i < q.length; i++) qb.push(heldBenign[(benignAt + i) % heldBenign.length]!);
    benignAt += q.length;
    validation.push({ support: gatherRows(t, supportRows), query: gatherRows(t, [...qb, ...q]) });
  }
  return { name: office.name, table: t, families: [...office.families], trainBenign: b.train, trainAttack, validation, seed: deriveSeed(seed, 'site', office.name) };
}

/** k rows of a pool (with repeats only when the pool is smaller than k). */
function pickSome(pool: Int32Array, k: number, rng: Rng): number[] {
  const out: number[] = [];
  const copy = Array.from(pool);
  rng.shuffle(copy);
  for (let i = 0; i < k; i++) out.push(i < copy.length ? copy[i]! : copy[rng.int(copy.length)]!);
  return out;
}

export interface LocalWork {
  episodes: number;
  shots: number;
  queryShots: number;
  innerSteps: number;
  innerLr: number;
  /** FedAvg's (and centralized training's) SGD step size. */
  sgdLr: number;
}

/**
 * A round's training episodes: each pits one of the site's families against the site's own benign traffic,
 * families taken in a shuffled cycle so a round covers as many as it can. Seeded by the site and the round.
 */
export function siteEpisodes(site: LabSite, work: LocalWork, round: number, taskSeed: number): Episode[] {
  const rng = createRng(deriveSeed(site.seed, 'episodes', round, taskSeed));
  const families = rng.shuffle([...site.families].filter((f) => (site.trainAttack.get(f)?.length ?? 0) > 0));
  if (families.length === 0 || site.trainBenign.length === 0) {
    throw new FedmetaError(ErrorCode.PRECONDITION, `site ${site.name} has no training flows of some class; give it more flows`);
  }
  const out: Episode[] = [];
  for (let e = 0; e < work.episodes; e++) {
    const family = families[e % families.length]!;
    out.push(
      buildEpisode(site.table, {
        family,
        shots: work.shots,
        queryShots: work.queryShots,
        rng,
        benignRows: site.trainBenign,
        attackRows: site.trainAttack.get(family)!,
      }),
    );
  }
  return out;
}

/** Support and query rows of every episode in one batch (what plain SGD trains on, for equal local work). */
export function pooledBatch(episodes: readonly Episode[]): Batch {
  const parts = episodes.flatMap((e) => [e.support, e.query]);
  const dim = parts[0]!.dim;
  const n = parts.reduce((a, b) => a + b.n, 0);
  const x = new Float32Array(n * dim);
  const y = new Int32Array(n);
  let at = 0;
  for (const p of parts) {
    x.set(p.x, at * dim);
    y.set(p.y, at);
    at += p.n;
  }
  return { x, y, n, dim };
}

export interface LocalResult {
  update: Float32Array;
  examples: number;
  supportLoss: number;
  queryLoss: number;
}

/** Meta-gradient of the round's episodes (mean over episodes), in the offer's layout. */
export function metaLocal(algorithm: MetaAlgorithm, spec: ModelSpec, params: Float32Array, episodes: readonly Episode[], inner: InnerLoopConfig): LocalResult {
  const r = metaGradientMean(algorithm, spec, params, episodes, inner);
  return { update: r.update, examples: r.metrics.examples, supportLoss: r.metrics.supportLoss, queryLoss: r.metrics.queryLoss };
}

/**
 * FedAvg's local work: plain minibatch SGD over the same flows a meta-learning site would use this round,
 * episodes × innerSteps steps of one episode's size each. update = params − trained.
 */
export function sgdLocal(spec: ModelSpec, params: Float32Array, episodes: readonly Episode[], work: LocalWork, seed: number): LocalResult {
  const batch = pooledBatch(episodes);
  const r = localTrain(spec, params, batch, {
    steps: work.episodes * work.innerSteps,
    lr: work.sgdLr,
    batchSize: 2 * (work.shots + work.queryShots),
    seed,
  });
  return { update: r.update, examples: r.metrics.examples, supportLoss: r.metrics.supportLoss, queryLoss: r.metrics.queryLoss };
}

/**
 * The site's validation score of a version: for each fixed validation episode, adapt on its support (or not,
 * when `inner` is null) and score the held-back flows at the threshold (set on the support under 'support');
 * counts pooled over the episodes.
 */
export function siteValidation(spec: ModelSpec, params: Float32Array, site: LabSite, inner: InnerLoopConfig | null, threshold: number | 'support'): number | undefined {
  if (site.validation.length === 0) return undefined;
  const total: Confusion = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (const ep of site.validation) {
    const p = inner === null ? params : adapt(spec, params, ep.support, inner);
    // Without adaptation the shots are not used at all, threshold included.
    const cut =
      threshold !== 'support' ? threshold : inner === null ? 0.5 : supportThreshold(predictScores(spec, p, ep.support.x, ep.support.n), ep.support.y);
    const c = confusionAt(predictScores(spec, p, ep.query.x, ep.query.n), ep.query.y, cut);
    total.tp += c.tp;
    total.fp += c.fp;
    total.tn += c.tn;
    total.fn += c.fn;
  }
  return f1Of(total);
}
