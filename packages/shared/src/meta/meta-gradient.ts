import { ErrorCode, FedmetaError } from '../errors.js';
import { checkBatch, uploadBatch } from '../model/batch.js';
import { requireRuntime } from '../runtime/backend.js';
import { disposeLayers, uploadLayers } from '../model/forward.js';
import type { ModelSpec } from '../model/spec.js';
import { fomaml, reptile } from './first-order.js';
import type { EpisodeTensors } from './first-order.js';
import { resolveInner, uploadStepSizes } from './inner.js';
import type { ResolvedInner } from './inner.js';
import { maml } from './maml.js';
import type { Episode, InnerLoopConfig, MetaAlgorithm, MetaResult } from './types.js';

const ALGORITHMS: readonly MetaAlgorithm[] = ['reptile', 'fomaml', 'maml'];

function uploadEpisode(spec: ModelSpec, algorithm: MetaAlgorithm, episode: Episode): EpisodeTensors {
  checkBatch(spec, episode.support, 'support batch');
  const emptyQuery = episode.query.n === 0;
  if (emptyQuery && algorithm !== 'reptile') {
    throw new FedmetaError(ErrorCode.SHAPE, `${algorithm} needs a non-empty query batch; sample episodes with query examples`);
  }
  if (!emptyQuery) checkBatch(spec, episode.query, 'query batch');
  const support = uploadBatch(spec, episode.support);
  const query = emptyQuery ? undefined : uploadBatch(spec, episode.query);
  return { support, query, examples: episode.support.n + episode.query.n };
}

function disposeEpisode(ep: EpisodeTensors): void {
  ep.support.dispose();
  ep.query?.dispose();
}

/** Runs every episode from the same starting parameters, uploaded once. */
function run(
  algorithm: MetaAlgorithm,
  spec: ModelSpec,
  params: Float32Array,
  episodes: readonly Episode[],
  inner: InnerLoopConfig,
  each: (r: MetaResult) => void,
): ResolvedInner {
  if (!ALGORITHMS.includes(algorithm)) {
    throw new FedmetaError(ErrorCode.CONFIG, `unknown meta-learning algorithm; use one of ${ALGORITHMS.join(', ')}`);
  }
  requireRuntime();
  const r = resolveInner(spec, params, inner);
  const start = uploadLayers(spec, params.subarray(0, r.modelSize));
  const sizes = uploadStepSizes(spec, params, r);
  try {
    for (const episode of episodes) {
      const ep = uploadEpisode(spec, algorithm, episode);
      try {
        if (algorithm === 'reptile') each(reptile(spec, params, start, ep, r));
        else if (algorithm === 'fomaml') each(fomaml(spec, params, start, ep, r, sizes));
        else each(maml(spec, params, start, ep, r, sizes));
      } finally {
        disposeEpisode(ep);
      }
    }
  } finally {
    disposeLayers(start);
    if (sizes) disposeLayers(sizes);
  }
  return r;
}

/**
 * The meta-gradient of one episode, in the flat-parameter layout with a gradient's sign (the outer optimizer
 * does params -= lr * step(update)):
 * - reptile: params - adapted;
 * - fomaml: gradient of the query loss at the adapted parameters;
 * - maml: gradient of the query loss with respect to the initial parameters, through the inner steps.
 */
export function metaGradient(
  algorithm: MetaAlgorithm,
  spec: ModelSpec,
  params: Float32Array,
  episode: Episode,
  inner: InnerLoopConfig,
): MetaResult {
  let result: MetaResult | undefined;
  run(algorithm, spec, params, [episode], inner, (r) => (result = r));
  return result!;
}

/** The mean of `metaGradient` over episodes (each weighs the same); losses averaged, examples summed. */
export function metaGradientMean(
  algorithm: MetaAlgorithm,
  spec: ModelSpec,
  params: Float32Array,
  episodes: readonly Episode[],
  inner: InnerLoopConfig,
): MetaResult {
  if (episodes.length === 0) throw new FedmetaError(ErrorCode.PRECONDITION, 'a meta-gradient needs at least one episode');
  const sum = new Float64Array(params.length);
  let supportLoss = 0;
  let queryLoss = 0;
  let examples = 0;
  run(algorithm, spec, params, episodes, inner, (r) => {
    addInto(sum, r.update);
    supportLoss += r.metrics.supportLoss;
    queryLoss += r.metrics.queryLoss;
    examples += r.metrics.examples;
  });
  const k = episodes.length;
  const update = new Float32Array(params.length);
  for (let i = 0; i < sum.length; i++) update[i] = (sum[i] as number) / k;
  return { update, metrics: { supportLoss: supportLoss / k, queryLoss: queryLoss / k, examples } };
}

function addInto(sum: Float64Array, v: Float32Array): void {
  const n = sum.length;
  for (let i = 0; i < n; i++) sum[i] = (sum[i] as number) + (v[i] as number);
}
