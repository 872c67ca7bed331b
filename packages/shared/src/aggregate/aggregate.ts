import { ErrorCode, FedmetaError } from '../errors.js';
import type { AggregateOptions, AggregatorConfig, WeightedUpdate } from './types.js';
import { weightedMean, normClip } from './mean.js';
import { coordinateMedian, trimmedMean } from './order-stats.js';
import { multiKrum } from './krum.js';
import { centeredClipping } from './centered-clipping.js';

/**
 * Combines one round's site updates with the configured aggregator. Pure: the inputs are not modified and
 * the result is a new Float32Array. Each aggregator's preconditions are in its own doc comment;
 * `aggregatorPreconditions` checks the config-and-count part ahead of time.
 */
export function aggregate(
  config: AggregatorConfig,
  updates: readonly WeightedUpdate[],
  options: AggregateOptions = {},
): Float32Array {
  switch (config.kind) {
    case 'mean':
      return weightedMean(updates);
    case 'median':
      return coordinateMedian(updates);
    case 'trimmed-mean':
      return trimmedMean(updates, config.trim);
    case 'multi-krum':
      return multiKrum(updates, config.f, config.m);
    case 'centered-clipping':
      return centeredClipping(updates, config.tau, config.iterations, options.reference);
    case 'norm-clip':
      return normClip(updates, config.maxNorm);
    default: {
      const kind: unknown = (config as { kind: unknown }).kind;
      throw new FedmetaError(
        ErrorCode.CONFIG,
        `unknown aggregator kind ${JSON.stringify(kind)}; use mean, median, trimmed-mean, multi-krum, centered-clipping or norm-clip`,
      );
    }
  }
}
