import { aggregate, createOptimizer, FedmetaError } from '@fedmeta/shared';
import type { AggregatorConfig, OptimizerConfig, OptimizerState } from '@fedmeta/shared';
import type { Checkpoint, RoundRecord } from '../state/types.js';
import type { SiteUpdate } from './hub.js';
import { allFinite } from './records.js';
import { LAST_AGGREGATE_KEY } from './restore.js';

export type OuterStep =
  | { ok: true; gradient: Float32Array; params: Float32Array; optimizer: OptimizerState }
  | { ok: false; reason: string; cause?: unknown };

/**
 * Aggregates the accepted updates and takes the outer optimizer step, without touching any state: the engine
 * adopts the result only once it is committed. Updates go in site-name order, so that the result does not
 * depend on the order they arrived in.
 */
export function outerStep(
  aggregator: AggregatorConfig,
  optimizer: OptimizerConfig,
  params: Float32Array,
  optState: OptimizerState,
  accepted: ReadonlyMap<string, SiteUpdate>,
  lastAggregate: Float32Array | null,
): OuterStep {
  const updates = [...accepted.keys()].sort().map((name) => {
    const u = accepted.get(name) as SiteUpdate;
    return { vector: u.update, weight: u.counts.examples };
  });
  try {
    // Centered clipping is anchored at the previous aggregate, as the method prescribes.
    const reference = aggregator.kind === 'centered-clipping' && lastAggregate ? lastAggregate : undefined;
    const gradient = aggregate(aggregator, updates, reference ? { reference } : {});
    if (!allFinite(gradient)) return { ok: false, reason: 'the aggregate of the updates is not finite; check the aggregator settings' };
    const opt = createOptimizer(optimizer, params.length, optState);
    const next = opt.step(params, gradient);
    if (!allFinite(next)) return { ok: false, reason: 'the optimizer step gave non-finite parameters; lower optimizer.lr' };
    return { ok: true, gradient, params: next, optimizer: opt.state() };
  } catch (e) {
    return { ok: false, reason: e instanceof FedmetaError ? e.message : 'the aggregator or the optimizer failed', cause: e };
  }
}

/** The checkpoint a committed round produces from the current one. */
export function nextCheckpoint(
  base: Checkpoint,
  step: Extract<OuterStep, { ok: true }>,
  round: number,
  config: { aggregator: AggregatorConfig; optimizer: OptimizerConfig; seed: number },
  history: readonly RoundRecord[],
  createdAt: string,
): Checkpoint {
  const extensions = { ...base.extensions };
  if (config.aggregator.kind === 'centered-clipping') extensions[LAST_AGGREGATE_KEY] = step.gradient;
  else delete extensions[LAST_AGGREGATE_KEY];
  const next: Checkpoint = {
    ...base,
    version: base.version + 1,
    nextRound: round + 1,
    params: step.params,
    optimizerConfig: { ...config.optimizer },
    optimizer: step.optimizer,
    aggregator: { ...config.aggregator },
    rngState: [config.seed],
    history: [...base.history, ...history],
    createdAt,
    extensions,
  };
  if (Object.keys(extensions).length === 0) delete next.extensions;
  return next;
}
