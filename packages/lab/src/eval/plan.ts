import type { ModelSpec, OptimizerConfig } from '@fedmeta/shared';
import type { EvalConfig } from '../config.js';
import { parseMethod } from '../methods/names.js';
import type { MethodSpec } from '../methods/names.js';
import type { LocalWork } from '../methods/site.js';

/** What the config implies for a run, computed once: methods, trainings, model, local work, optimizers. */
export interface RunPlan {
  methods: MethodSpec[];
  /** One training per key (fedavg and fedavg+ft share one), by the first method that needs it. */
  trainings: MethodSpec[];
  spec: ModelSpec;
  work: LocalWork;
  /** Rounds at which the learning curve is measured. */
  curveRounds: number[];
}

const BUILTIN_OPTIMIZERS: Record<string, OptimizerConfig> = {
  // FedAvg is the mean of the sites' models: an outer SGD step of 1 on params − trained.
  fedavg: { kind: 'sgd', lr: 1 },
  reptile: { kind: 'sgd', lr: 1 },
  fomaml: { kind: 'adam', lr: 0.001 },
  maml: { kind: 'adam', lr: 0.001 },
};

/** The outer optimizer of a training: by its name, then its base algorithm, then `default`, then built in. */
export function optimizerFor(method: MethodSpec, config: Pick<EvalConfig, 'optimizer'>): OptimizerConfig {
  const base = method.algorithm ?? method.trainingKey;
  return config.optimizer[method.name] ?? config.optimizer[method.trainingKey] ?? config.optimizer[base] ?? config.optimizer['default'] ?? BUILTIN_OPTIMIZERS[base] ?? { kind: 'sgd', lr: 1 };
}

/** Every round up to 20 (where targets are usually crossed), then every `every` rounds, and the last. */
export function curveRounds(rounds: number, every: number): number[] {
  const out = new Set<number>();
  for (let r = 0; r <= rounds; r++) if (r <= 20 || r % every === 0 || r === rounds) out.add(r);
  return [...out].sort((a, b) => a - b);
}

export function planRun(config: EvalConfig, inputDim: number): RunPlan {
  const methods = config.methods.map(parseMethod);
  const trainings: MethodSpec[] = [];
  for (const m of methods) if (m.trained && !trainings.some((t) => t.trainingKey === m.trainingKey)) trainings.push(m);
  return {
    methods,
    trainings,
    spec: { inputDim, hidden: [...config.model.hidden], activation: config.model.activation, task: { kind: 'binary' } },
    work: {
      episodes: config.local.episodes,
      shots: config.local.shots,
      queryShots: config.local.queryShots,
      innerSteps: config.local.innerSteps,
      innerLr: config.local.innerLr,
      sgdLr: config.local.sgdLr ?? config.local.innerLr,
    },
    curveRounds: curveRounds(config.rounds, config.curves.every),
  };
}
