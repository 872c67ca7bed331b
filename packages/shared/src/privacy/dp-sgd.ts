import { ErrorCode, FedmetaError } from '../errors.js';
import { resolveInner } from '../meta/inner.js';
import type { Batch, Episode, InnerLoopConfig, MetaAlgorithm, MetaResult } from '../meta/types.js';
import { checkBatch, uploadBatch } from '../model/batch.js';
import type { BatchTensors } from '../model/batch.js';
import { disposeLayers, logits as forwardLogits, meanLoss, uploadLayers } from '../model/forward.js';
import type { DenseTensors } from '../model/forward.js';
import { layerCount, layerSlots, modelParamCount, validateSpec } from '../model/params.js';
import type { ModelSpec } from '../model/spec.js';
import { requireRuntime } from '../runtime/backend.js';
import { tf } from '../runtime/tf.js';
import type { MechanismSteps } from './accountant.js';
import { addGaussianNoise } from './noise.js';
import type { NoiseSource } from './noise.js';
import { clippedGradientSum } from './per-example.js';

/**
 * Record-level DP-SGD for a site's own training (Abadi et al. 2016): each example's gradient is clipped to L2
 * norm C, the clipped gradients are summed, Gaussian noise N(0, σ²C²) is added to every coordinate of the sum,
 * and the result is divided by the batch size. Everything leaving the site that is computed from these noisy
 * gradients (the adapted parameters, a Reptile update) is covered by the guarantee; the losses reported with
 * it are not (see the metrics note on dpMetaGradient).
 */
export interface DpSgdConfig {
  /** Per-example clipping bound C (L2 norm over all adapted parameters). */
  clipNorm: number;
  /** σ: the noise on the clipped sum has standard deviation σC. */
  noiseMultiplier: number;
  /**
   * Probability that a given record of the site's data is in a batch (Poisson sampling: expected batch size /
   * records). The accountant's analysis assumes Poisson sampling; for fixed-size or per-class sampling use
   * the largest inclusion probability of any record (shots / records of the smallest class).
   */
  samplingRate: number;
  /** For fomaml's query batch, when it is drawn at another rate (default samplingRate). */
  querySamplingRate?: number;
  /**
   * Divide the noisy sum by this fixed number (the expected batch size) instead of the batch's actual size,
   * which under Poisson sampling is itself data-dependent. Default: the actual size.
   */
  expectedBatchSize?: number;
}

export function checkDpSgdConfig(dp: DpSgdConfig): void {
  if (!(Number.isFinite(dp.clipNorm) && dp.clipNorm > 0)) throw new FedmetaError(ErrorCode.CONFIG, 'dp clipNorm must be a finite number > 0');
  if (!(Number.isFinite(dp.noiseMultiplier) && dp.noiseMultiplier >= 0)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'dp noiseMultiplier must be a finite number >= 0');
  }
  for (const [name, q] of [['samplingRate', dp.samplingRate], ['querySamplingRate', dp.querySamplingRate ?? dp.samplingRate]] as const) {
    if (!(Number.isFinite(q) && q > 0 && q <= 1)) throw new FedmetaError(ErrorCode.CONFIG, `dp ${name} must be a number in (0, 1]`);
  }
  const d = dp.expectedBatchSize;
  if (d !== undefined && !(Number.isFinite(d) && d > 0)) throw new FedmetaError(ErrorCode.CONFIG, 'dp expectedBatchSize must be a number > 0');
}

export interface DpGradient {
  /** The noisy mean gradient, flat in the model layout (layers not adapted are zero). */
  gradient: Float32Array;
  examples: number;
  /** Examples whose gradient was scaled down: a statistic of the raw data, for local tuning of C only. */
  clipped: number;
  /** Mean loss before the step (raw data: not covered by the guarantee), when asked for. */
  loss: number | undefined;
  /** What to give the accountant: one Gaussian mechanism on a sample drawn at samplingRate. */
  accounting: MechanismSteps;
}

/** The noisy gradient at given layer tensors on an uploaded batch. */
function noisyGradient(
  spec: ModelSpec,
  layers: readonly DenseTensors[],
  batch: BatchTensors,
  dp: DpSgdConfig,
  noise: NoiseSource,
  first: number,
  withLoss: boolean,
  samplingRate: number,
): DpGradient {
  const r = clippedGradientSum(spec, layers, batch, dp.clipNorm, first, withLoss);
  const g = r.sum;
  const slots = layerSlots(spec);
  const std = dp.noiseMultiplier * dp.clipNorm;
  // Noise on the adapted layers only: the others are not released by this step.
  const from = slots[first]!.kernelOffset;
  addGaussianNoise(g.subarray(from), std, noise);
  const denom = dp.expectedBatchSize ?? batch.n;
  for (let i = from; i < g.length; i++) g[i] = g[i]! / denom;
  return {
    gradient: g,
    examples: batch.n,
    clipped: r.clipped,
    loss: r.loss,
    accounting: { noiseMultiplier: dp.noiseMultiplier, samplingRate, steps: 1 },
  };
}

function firstAdapted(spec: ModelSpec, adaptLast: number | undefined): number {
  const L = layerCount(spec);
  const k = adaptLast ?? L;
  if (!Number.isInteger(k) || k < 1 || k > L) throw new FedmetaError(ErrorCode.CONFIG, `adaptLast must be an integer from 1 to ${L} (the number of dense layers)`);
  return L - k;
}

/**
 * One DP-SGD gradient of the mean loss of `batch` at `params` (the model's own values). With adaptLast, only
 * the last layers are differentiated, clipped and noised (ANIL).
 */
export function dpGradient(
  spec: ModelSpec,
  params: Float32Array,
  batch: Batch,
  dp: DpSgdConfig,
  noise: NoiseSource,
  opts: { adaptLast?: number; withLoss?: boolean } = {},
): DpGradient {
  requireRuntime();
  validateSpec(spec);
  checkDpSgdConfig(dp);
  checkBatch(spec, batch);
  const size = modelParamCount(spec);
  if (params.length !== size) {
    throw new FedmetaError(ErrorCode.WRONG_LENGTH, `parameter vector has ${params.length} values but the model has ${size}`);
  }
  const first = firstAdapted(spec, opts.adaptLast);
  const layers = uploadLayers(spec, params);
  const bt = uploadBatch(spec, batch);
  try {
    return noisyGradient(spec, layers, bt, dp, noise, first, opts.withLoss === true, dp.samplingRate);
  } finally {
    disposeLayers(layers);
    bt.dispose();
  }
}

/** The accounting of k noisy steps on one sample: k Gaussian mechanisms compose to one with σ/√k. */
function sameSampleSteps(noiseMultiplier: number, steps: number, samplingRate: number): MechanismSteps {
  return steps === 0
    ? { noiseMultiplier, samplingRate, steps: 0 }
    : { noiseMultiplier: noiseMultiplier / Math.sqrt(steps), samplingRate, steps: 1 };
}

export interface DpAdaptResult {
  adapted: Float32Array;
  /** Mean support loss before the first step (raw data), NaN without steps. */
  supportLoss: number;
  clipped: number;
  /**
   * What to give the accountant. The k inner steps all use the same support sample, so they are one sampled
   * mechanism whose k Gaussian steps compose to a Gaussian with noise multiplier σ/√k (not k sampled steps).
   */
  accounting: MechanismSteps;
}

/** The inner loop with DP-SGD steps: k steps of params -= lr * noisy gradient on the support batch. */
export function dpAdapt(spec: ModelSpec, params: Float32Array, support: Batch, inner: InnerLoopConfig, dp: DpSgdConfig, noise: NoiseSource): DpAdaptResult {
  requireRuntime();
  checkDpSgdConfig(dp);
  const r = resolveInner(spec, params, inner);
  if (r.metaSgd) throw new FedmetaError(ErrorCode.CONFIG, 'DP-SGD runs with a scalar inner learning rate; drop the Meta-SGD step sizes when privacy is on');
  checkBatch(spec, support, 'support batch');
  const current = new Float32Array(params);
  const bt = uploadBatch(spec, support);
  let supportLoss = Number.NaN;
  let clipped = 0;
  try {
    for (let k = 0; k < r.steps; k++) {
      const layers = uploadLayers(spec, current);
      try {
        const g = noisyGradient(spec, layers, bt, dp, noise, r.first, k === 0, dp.samplingRate);
        if (k === 0) supportLoss = g.loss!;
        clipped += g.clipped;
        for (let i = 0; i < r.modelSize; i++) current[i] = current[i]! - r.lr * g.gradient[i]!;
      } finally {
        disposeLayers(layers);
      }
    }
  } finally {
    bt.dispose();
  }
  return { adapted: current, supportLoss, clipped, accounting: sameSampleSteps(dp.noiseMultiplier, r.steps, dp.samplingRate) };
}

/** Mean loss of a batch at params (a forward pass; for metrics). */
function batchLoss(spec: ModelSpec, params: Float32Array, batch: Batch): number {
  const layers = uploadLayers(spec, params);
  const bt = uploadBatch(spec, batch);
  try {
    const t = tf.tidy(() => meanLoss(spec, forwardLogits(spec, layers, bt.x), bt.target));
    const v = t.dataSync()[0] as number;
    t.dispose();
    return v;
  } finally {
    disposeLayers(layers);
    bt.dispose();
  }
}

export interface DpMetaResult extends MetaResult {
  /** Everything to give the accountant for this result (consecutive identical mechanisms merged). */
  accounting: MechanismSteps[];
  clipped: number;
}

type DpAlgorithm = Exclude<MetaAlgorithm, 'maml'>;

function checkAlgorithm(algorithm: MetaAlgorithm): asserts algorithm is DpAlgorithm {
  if (algorithm !== 'reptile' && algorithm !== 'fomaml') {
    throw new FedmetaError(ErrorCode.CONFIG, 'DP-SGD supports the reptile and fomaml algorithms; second-order maml has no per-example clipping, choose one of those');
  }
}

/**
 * The DP counterpart of `metaGradient` for one episode:
 * - reptile: params - dpAdapt(support); only the support sample is used, through noisy steps;
 * - fomaml: a noisy query gradient (one more mechanism, on the query sample) at the DP-adapted parameters.
 * Metrics: supportLoss and queryLoss are computed on the raw data and are NOT covered by the guarantee; a
 * site that reports them to the coordinator leaks a little through them.
 */
export function dpMetaGradient(
  algorithm: MetaAlgorithm,
  spec: ModelSpec,
  params: Float32Array,
  episode: Episode,
  inner: InnerLoopConfig,
  dp: DpSgdConfig,
  noise: NoiseSource,
): DpMetaResult {
  checkAlgorithm(algorithm);
  const a = dpAdapt(spec, params, episode.support, inner, dp, noise);
  const examples = episode.support.n + episode.query.n;
  const accounting = a.accounting.steps > 0 ? [a.accounting] : [];
  const supportLoss = Number.isNaN(a.supportLoss) ? batchLoss(spec, params, episode.support) : a.supportLoss;
  if (algorithm === 'reptile') {
    const update = new Float32Array(params.length);
    for (let i = 0; i < update.length; i++) update[i] = params[i]! - a.adapted[i]!;
    const queryLoss = batchLoss(spec, a.adapted, episode.query.n > 0 ? episode.query : episode.support);
    return { update, metrics: { supportLoss, queryLoss, examples }, accounting, clipped: a.clipped };
  }
  if (episode.query.n === 0) throw new FedmetaError(ErrorCode.SHAPE, 'first-order MAML needs a non-empty query batch; sample episodes with query examples');
  const q = dpGradient(spec, a.adapted, episode.query, dp, noise, { withLoss: true });
  q.accounting.samplingRate = dp.querySamplingRate ?? dp.samplingRate;
  accounting.push(q.accounting);
  return {
    update: q.gradient,
    metrics: { supportLoss, queryLoss: q.loss!, examples },
    accounting,
    clipped: a.clipped + q.clipped,
  };
}

/** Merges identical mechanisms, adding their steps (RDP composition does not depend on the order). */
export function mergeAccounting(list: readonly MechanismSteps[]): MechanismSteps[] {
  const out: MechanismSteps[] = [];
  for (const m of list) {
    if (m.steps === 0) continue;
    const same = out.find((o) => o.noiseMultiplier === m.noiseMultiplier && o.samplingRate === m.samplingRate);
    if (same) same.steps += m.steps;
    else out.push({ ...m });
  }
  return out;
}

/**
 * The DP counterpart of `metaGradientMean`: the mean of dpMetaGradient over the episodes, each drawn as its
 * own sample (so their mechanisms compose: the accounting lists each mechanism with its count).
 */
export function dpMetaGradientMean(
  algorithm: MetaAlgorithm,
  spec: ModelSpec,
  params: Float32Array,
  episodes: readonly Episode[],
  inner: InnerLoopConfig,
  dp: DpSgdConfig,
  noise: NoiseSource,
): DpMetaResult {
  checkAlgorithm(algorithm);
  if (episodes.length === 0) throw new FedmetaError(ErrorCode.PRECONDITION, 'a meta-gradient needs at least one episode');
  const sum = new Float64Array(params.length);
  let supportLoss = 0;
  let queryLoss = 0;
  let examples = 0;
  let clipped = 0;
  const used: MechanismSteps[] = [];
  for (const ep of episodes) {
    const r = dpMetaGradient(algorithm, spec, params, ep, inner, dp, noise);
    for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + r.update[i]!;
    supportLoss += r.metrics.supportLoss;
    queryLoss += r.metrics.queryLoss;
    examples += r.metrics.examples;
    clipped += r.clipped;
    used.push(...r.accounting);
  }
  const k = episodes.length;
  const update = Float32Array.from(sum, (v) => v / k);
  return { update, metrics: { supportLoss: supportLoss / k, queryLoss: queryLoss / k, examples }, accounting: mergeAccounting(used), clipped };
}
