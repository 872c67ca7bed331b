import { aggregatorPreconditions, ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { AggregatorConfig, MetaAlgorithm, OptimizerConfig, RoundTask } from '@fedmeta/shared';

export interface RoundsConfig {
  /** Fraction of the online sites asked each round, in (0, 1]. */
  sampleFraction: number;
  /** The fewest sites a round asks when that many are online. */
  minSites: number;
  /** Accepted updates needed to commit a round. */
  quorum: number;
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

export interface EngineConfig {
  rounds: RoundsConfig;
  aggregator: AggregatorConfig;
  optimizer: OptimizerConfig;
  /** Seeds site sampling and the round tasks; recorded in every checkpoint. */
  seed: number;
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

/** Checks the engine's options once at construction and returns a frozen copy the engine keeps. */
export function validateEngineConfig(config: EngineConfig): Readonly<EngineConfig> {
  const r = config.rounds;
  if (!(Number.isFinite(r.sampleFraction) && r.sampleFraction > 0 && r.sampleFraction <= 1)) {
    fail('rounds.sampleFraction', 'greater than 0 and at most 1');
  }
  positiveInt('rounds.minSites', r.minSites);
  positiveInt('rounds.quorum', r.quorum);
  positiveFinite('rounds.deadlineSeconds', r.deadlineSeconds);
  if (!ALGORITHMS.includes(r.algorithm)) fail('rounds.algorithm', `one of ${ALGORITHMS.join(', ')}`);
  positiveInt('rounds.innerSteps', r.innerSteps);
  positiveFinite('rounds.innerLr', r.innerLr);
  positiveInt('rounds.shots', r.shots);
  positiveInt('rounds.queryShots', r.queryShots);
  positiveInt('rounds.episodes', r.episodes);
  if (r.maxConsecutiveAborts !== undefined) positiveInt('rounds.maxConsecutiveAborts', r.maxConsecutiveAborts);
  if (!Number.isSafeInteger(config.seed) || config.seed < 0) fail('seed', 'a non-negative whole number');
  if (r.quorum > r.minSites && r.sampleFraction < 1) {
    // With a fraction, a round may ask only minSites sites; a quorum above that could never be met.
    fail('rounds.quorum', `at most rounds.minSites (${r.minSites}) when rounds.sampleFraction is below 1`);
  }
  const why = aggregatorPreconditions(config.aggregator, r.quorum);
  if (why !== null) {
    throw new FedmetaError(
      ErrorCode.CONFIG,
      `rounds.quorum ${r.quorum} is too small for the ${config.aggregator.kind} aggregator (${why}); raise rounds.quorum or change the aggregator`,
    );
  }
  return Object.freeze({
    rounds: Object.freeze({ ...r }),
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
