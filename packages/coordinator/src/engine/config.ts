import { aggregatorPreconditions, ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { AggregatorConfig, MetaAlgorithm, OptimizerConfig, RoundTask } from '@fedmeta/shared';
import type { DpConfig } from './privacy.js';
import type { SecureAggregationConfig } from './secure-round.js';

/**
 * Accepted updates needed to commit a round: an absolute count, or a fraction of the sites sampled in that
 * round (ceil(fraction x sampled), at least 1), so that a fraction means the same whatever the round sampled.
 */
export type QuorumRule = { kind: 'count'; value: number } | { kind: 'fraction'; value: number };

export interface RoundsConfig {
  /** Fraction of the online sites asked each round, in (0, 1]. */
  sampleFraction: number;
  /** The fewest sites a round asks; a round starts once this many (and at least a count quorum) are online. */
  minSites: number;
  /** Accepted updates needed to commit a round; a bare number is a count. */
  quorum: QuorumRule | number;
  /** How long a round waits for updates (and, before sampling, for a quorum of sites to be online). */
  deadlineSeconds: number;
  algorithm: MetaAlgorithm;
  innerSteps: number;
  innerLr: number;
  shots: number;
  queryShots: number;
  episodes: number;
  /** Aborted attempts of one round in a row before `runRound` gives up with an error (default 5). */
  maxConsecutiveAborts?: number;
}

/** The rounds section as the engine keeps it: the quorum always as a rule. */
export interface ValidRoundsConfig extends RoundsConfig {
  quorum: QuorumRule;
}

export interface EngineConfig {
  rounds: RoundsConfig;
  aggregator: AggregatorConfig;
  optimizer: OptimizerConfig;
  /** Seeds site sampling and the round tasks; recorded in every checkpoint. */
  seed: number;
  /** Differential privacy (off when absent); checked by the engine with `validateDpConfig`. */
  privacy?: DpConfig;
  /** Secure aggregation (off when absent); checked by the engine with `validateSecureConfig`. */
  secureAggregation?: SecureAggregationConfig;
}

export const DEFAULT_MAX_CONSECUTIVE_ABORTS = 5;

const ALGORITHMS: readonly MetaAlgorithm[] = ['reptile', 'fomaml', 'maml'];

function fail(field: string, rule: string): never {
  throw new FedmetaError(ErrorCode.CONFIG, `${field} must be ${rule}; fix it in the coordinator configuration`);
}

function positiveInt(field: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) fail(field, 'a whole number of at least 1');
}

function positiveFinite(field: string, v: number): void {
  if (!Number.isFinite(v) || v <= 0) fail(field, 'a positive number');
}

export interface ValidEngineConfig extends EngineConfig {
  rounds: ValidRoundsConfig;
}

function quorumRule(q: unknown): QuorumRule {
  if (typeof q === 'number') {
    positiveInt('rounds.quorum', q);
    return { kind: 'count', value: q };
  }
  const rule = q as Partial<QuorumRule> | null;
  if (rule?.kind === 'count') {
    positiveInt('rounds.quorum.value', rule.value as number);
    return { kind: 'count', value: rule.value as number };
  }
  if (rule?.kind === 'fraction') {
    const v = rule.value as number;
    if (!(Number.isFinite(v) && v > 0 && v <= 1)) fail('rounds.quorum.value', 'a fraction greater than 0 and at most 1');
    return { kind: 'fraction', value: v };
  }
  return fail('rounds.quorum', 'a count ({ kind: "count", value: N }) or a fraction of the sampled sites ({ kind: "fraction", value: f })');
}

/** Accepted updates a round that sampled `sampled` sites needs to commit. */
export function quorumFor(rule: QuorumRule, sampled: number): number {
  if (rule.kind === 'count') return rule.value;
  return Math.max(1, Math.ceil(rule.value * sampled));
}

/** Sites that must be online before a round is sampled: minSites, and never fewer than a count quorum. */
export function sitesToStart(rounds: Pick<ValidRoundsConfig, 'minSites' | 'quorum'>): number {
  return rounds.quorum.kind === 'count' ? Math.max(rounds.minSites, rounds.quorum.value) : rounds.minSites;
}

/** Checks the engine's options once at construction and returns a frozen copy the engine keeps. */
export function validateEngineConfig(config: EngineConfig): Readonly<ValidEngineConfig> {
  const r = config.rounds;
  if (!(Number.isFinite(r.sampleFraction) && r.sampleFraction > 0 && r.sampleFraction <= 1)) {
    fail('rounds.sampleFraction', 'greater than 0 and at most 1');
  }
  positiveInt('rounds.minSites', r.minSites);
  const quorum = quorumRule(r.quorum);
  positiveFinite('rounds.deadlineSeconds', r.deadlineSeconds);
  if (!ALGORITHMS.includes(r.algorithm)) fail('rounds.algorithm', `one of ${ALGORITHMS.join(', ')}`);
  positiveInt('rounds.innerSteps', r.innerSteps);
  positiveFinite('rounds.innerLr', r.innerLr);
  positiveInt('rounds.shots', r.shots);
  positiveInt('rounds.queryShots', r.queryShots);
  positiveInt('rounds.episodes', r.episodes);
  if (r.maxConsecutiveAborts !== undefined) positiveInt('rounds.maxConsecutiveAborts', r.maxConsecutiveAborts);
  if (!Number.isSafeInteger(config.seed) || config.seed < 0) fail('seed', 'a non-negative whole number');
  if (quorum.kind === 'count' && quorum.value > r.minSites && r.sampleFraction < 1) {
    // With a sample fraction, a round may ask only minSites sites; a count above that could never be met.
    fail('rounds.quorum', `at most rounds.minSites (${r.minSites}) when rounds.sampleFraction is below 1`);
  }
  // The fewest updates a committing round can hold: the quorum of the smallest sample a round can start with.
  const fewest = quorumFor(quorum, sitesToStart({ minSites: r.minSites, quorum }));
  const why = aggregatorPreconditions(config.aggregator, fewest);
  if (why !== null) {
    const shown = quorum.kind === 'count' ? String(quorum.value) : `${quorum.value} of ${r.minSites} sampled sites (${fewest})`;
    throw new FedmetaError(
      ErrorCode.CONFIG,
      `rounds.quorum ${shown} is too small for the ${config.aggregator.kind} aggregator (${why}); raise rounds.quorum or rounds.minSites, or change the aggregator`,
    );
  }
  return Object.freeze({
    rounds: Object.freeze({ ...r, quorum: Object.freeze(quorum) }),
    aggregator: Object.freeze({ ...config.aggregator }),
    optimizer: Object.freeze({ ...config.optimizer }),
    seed: config.seed,
  });
}

export function roundTask(rounds: RoundsConfig, seed: number): RoundTask {
  return {
    algorithm: rounds.algorithm,
    innerSteps: rounds.innerSteps,
    innerLr: rounds.innerLr,
    shots: rounds.shots,
    queryShots: rounds.queryShots,
    episodes: rounds.episodes,
    seed,
  };
}
