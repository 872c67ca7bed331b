import { aggregate, createOptimizer, ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { AggregatorConfig, OptimizerConfig, OptimizerState } from '@fedmeta/shared';
import type { Checkpoint, RoundRecord } from '../state/types.js';
import type { SiteUpdate } from './hub.js';
import { allFinite, boundHistory } from './records.js';
import { centralMean, noiseSecureSum } from './privacy.js';
import type { CentralRound } from './privacy.js';
import { LAST_AGGREGATE_KEY } from './restore.js';

/**
 * What a securely aggregated round yields instead of individual updates: the unmasked sum of the contributors'
 * clipped, weighted updates (Σ w·clip(x)) and the unmasked total weight Σ w, over `sites` contributors.
 */
export interface SecureSum {
  kind: 'secure-sum';
  sum: Float64Array;
  totalWeight: number;
  sites: number;
}

/** The outer step's input: the accepted updates by site, or a secure sum. */
export type StepInput = ReadonlyMap<string, SiteUpdate> | SecureSum;

function isSecureSum(input: StepInput): input is SecureSum {
  return (input as Partial<SecureSum>).kind === 'secure-sum';
}

/**
 * The aggregate of a secure sum: Σ w·clip(x) / Σ w, the weighted mean of the clipped updates (whatever the
 * aggregator: the sites clipped to the tighter of the secure-aggregation and norm-clip bounds, and centered
 * clipping degrades to that mean, having no individual updates to clip around its reference). Under central
 * DP the noise goes on the unmasked sum, and the sum (of updates of weight 1) is divided by the sampled sites.
 */
function secureAggregate(s: SecureSum, central: CentralRound | undefined): Float32Array {
  if (central) return noiseSecureSum(Float32Array.from(s.sum), central.sites, central, central.noise);
  if (!(s.totalWeight > 0)) throw new FedmetaError(ErrorCode.PRECONDITION, 'the secure sum has no weight: every contributor weighed its update 0');
  const out = new Float32Array(s.sum.length);
  for (let i = 0; i < out.length; i++) out[i] = (s.sum[i] as number) / s.totalWeight;
  return out;
}

export type OuterStep =
  | { ok: true; gradient: Float32Array; params: Float32Array; optimizer: OptimizerState }
  | { ok: false; reason: string; cause?: unknown };

/**
 * Aggregates the accepted updates and takes the outer optimizer step, without touching any state: the engine
 * adopts the result only once it is committed. Updates go in site-name order, so that the result does not
 * depend on the order they arrived in. With `central` (central differential privacy), the aggregate is the
 * clipped, noised mean of the updates instead of the configured aggregator's.
 */
export function outerStep(
  aggregator: AggregatorConfig,
  optimizer: OptimizerConfig,
  params: Float32Array,
  optState: OptimizerState,
  input: StepInput,
  lastAggregate: Float32Array | null,
  central?: CentralRound,
): OuterStep {
  try {
    if (isSecureSum(input)) return optimizerStep(optimizer, params, optState, secureAggregate(input, central));
    const updates = [...input.keys()].sort().map((name) => {
      const u = input.get(name) as SiteUpdate;
      if (u.update === null) throw new FedmetaError(ErrorCode.PRECONDITION, `the update of site ${name} carries no vector; a securely aggregated round yields a secure sum`);
      return { vector: u.update, weight: u.counts.examples };
    });
    // Centered clipping is anchored at the previous aggregate, as the method prescribes.
    const reference = aggregator.kind === 'centered-clipping' && lastAggregate ? lastAggregate : undefined;
    const gradient = central
      ? centralMean(aggregator, updates.map((u) => u.vector), central)
      : aggregate(aggregator, updates, reference ? { reference } : {});
    return optimizerStep(optimizer, params, optState, gradient);
  } catch (e) {
    return { ok: false, reason: e instanceof FedmetaError ? e.message : 'the aggregator or the optimizer failed', cause: e };
  }
}

function optimizerStep(optimizer: OptimizerConfig, params: Float32Array, optState: OptimizerState, gradient: Float32Array): OuterStep {
  if (!allFinite(gradient)) return { ok: false, reason: 'the aggregate of the updates is not finite; check the aggregator settings' };
  const opt = createOptimizer(optimizer, params.length, optState);
  const next = opt.step(params, gradient);
  if (!allFinite(next)) return { ok: false, reason: 'the optimizer step gave non-finite parameters; lower optimizer.lr' };
  return { ok: true, gradient, params: next, optimizer: opt.state() };
}

/**
 * The checkpoint a committed round produces from the current one. `features` is state optional features
 * spend on the round (the privacy ledger), written into `extensions` in the same atomic commit.
 */
export function nextCheckpoint(
  base: Checkpoint,
  step: Extract<OuterStep, { ok: true }>,
  round: number,
  config: { aggregator: AggregatorConfig; optimizer: OptimizerConfig; seed: number },
  history: readonly RoundRecord[],
  createdAt: string,
  features: Readonly<Record<string, unknown>> = {},
): Checkpoint {
  const extensions = { ...base.extensions, ...features };
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
    history: boundHistory([...base.history, ...history], base.released),
    createdAt,
    extensions,
  };
  if (Object.keys(extensions).length === 0) delete next.extensions;
  return next;
}
