import type { Activation, MetaAlgorithm } from '@fedmeta/shared';
import { parseEvalConfig } from '../config.js';
import type { EvalConfig } from '../config.js';
import type { FederationSettings } from './federation.js';
import type { DemoPlan } from './plan.js';

/** Every knob of the demo. The defaults fit the 5-minute budget on 2 cores. */
export interface DemoSettings {
  rounds: number;
  seed: number;
  K: number[];
  /** Support draws per K on the held-out office (one training seed: the federation is trained once). */
  supportDraws: number;
  hidden: number[];
  activation: Activation;
  algorithm: MetaAlgorithm;
  local: { episodes: number; shots: number; queryShots: number; innerSteps: number; innerLr: number };
  /** Adam step size of the coordinator's outer optimizer. */
  outerLr: number;
  /** The held-out score whose first crossing gives the communication figures. */
  target: { K: number; metric: 'f1' | 'f1At50'; value: number };
  /** Seconds a round waits for the offices' updates. */
  deadlineSeconds: number;
}

export const DEMO_DEFAULTS: DemoSettings = {
  rounds: 100,
  seed: 2017,
  K: [1, 5, 10, 20],
  supportDraws: 10,
  hidden: [64, 64],
  activation: 'relu',
  algorithm: 'fomaml',
  local: { episodes: 4, shots: 10, queryShots: 10, innerSteps: 5, innerLr: 0.05 },
  outerLr: 0.001,
  target: { K: 1, metric: 'f1At50', value: 0.9 },
  deadlineSeconds: 60,
};

/** The coordinator's side of the settings. */
export function federationSettings(s: DemoSettings): FederationSettings {
  return {
    hidden: s.hidden,
    activation: s.activation,
    algorithm: s.algorithm,
    rounds: s.rounds,
    innerSteps: s.local.innerSteps,
    innerLr: s.local.innerLr,
    shots: s.local.shots,
    queryShots: s.local.queryShots,
    episodes: s.local.episodes,
    outerLr: s.outerLr,
    deadlineSeconds: s.deadlineSeconds,
    seed: s.seed,
  };
}

/**
 * The harness's configuration of the same experiment: the same offices, rounds, local work and K, with the
 * baselines the demo computes in-process. The federation's own method is not in it: the real processes train it.
 */
export function demoEvalConfig(plan: DemoPlan, s: DemoSettings, root: string): EvalConfig {
  return parseEvalConfig(
    {
      dataset: 'cic-ids2017-sample',
      data: { files: [plan.dataset] },
      schema: plan.schema,
      sites: plan.sites,
      validationFamily: plan.validationFamily,
      evalFamilies: [plan.evalFamily],
      normalization: 'site',
      model: { hidden: s.hidden, activation: s.activation },
      rounds: s.rounds,
      local: s.local,
      methods: ['scratch', 'local-rf', 'local-lr', 'fedavg', 'fedavg+ft'],
      K: s.K,
      seeds: 1,
      supportDraws: s.supportDraws,
      seed: s.seed,
      release: 'best',
      target: s.target,
      // More curve draws than the harness's default: the curve gives the communication figures, and K = 1 is noisy.
      curves: { every: 1, draws: 4 },
    },
    root,
    'the demo settings',
  );
}
