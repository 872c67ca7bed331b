import { adapt, predictScores } from '@fedmeta/shared';
import type { ModelSpec } from '@fedmeta/shared';
import { LogisticRegression, RandomForest } from '../baselines/index.js';
import type { LogisticOptions } from '../baselines/index.js';
import { confusionAt, detectionMetrics, f1Of, supportThreshold } from '../metrics/index.js';
import type { DetectionMetrics } from '../metrics/index.js';
import { innerFor } from '../methods/training.js';
import type { MethodSpec } from '../methods/names.js';
import type { FewShotTask } from './protocol.js';

/** How a start is adapted to the K shots: SGD steps and step size (ignored under Meta-SGD's learned sizes). */
export interface Schedule {
  steps: number;
  lr: number;
}

/** A starting point an office can adapt: the model spec, the parameters and the method's inner loop. */
export interface MlpStart {
  spec: ModelSpec;
  params: Float32Array;
  method: MethodSpec;
  anilLayers: number;
}

/** A fixed threshold, or 'support': chosen on the K shots (see `supportThreshold`). */
export type ThresholdRule = number | 'support';

/** Query scores and the threshold they are cut at. */
export interface Scored {
  scores: Float32Array;
  threshold: number;
}

function thresholdOf(rule: ThresholdRule, supportScores: () => Float32Array, labels: Int32Array): number {
  return rule === 'support' ? supportThreshold(supportScores(), labels) : rule;
}

/** The parameters a start uses at the office: adapted on the support, or as they are without fine-tuning. */
export function adaptStart(start: MlpStart, schedule: Schedule | null, support: FewShotTask['support']): Float32Array {
  const { spec, method } = start;
  if (!method.fineTune || schedule === null || schedule.steps === 0) return start.params;
  return adapt(spec, start.params, support, innerFor(method, spec, schedule.steps, schedule.lr, start.anilLayers));
}

/**
 * Query scores of a start after adapting on the task's support. A start that is not fine-tuned is used as it
 * is, at 0.5: it takes nothing from the office's shots.
 */
export function scoreStart(start: MlpStart, schedule: Schedule | null, task: FewShotTask, rule: ThresholdRule = 'support'): Scored {
  const { spec } = start;
  const params = adaptStart(start, schedule, task.support);
  const s = task.support;
  const threshold = start.method.fineTune ? thresholdOf(rule, () => predictScores(spec, params, s.x, s.n), s.y) : typeof rule === 'number' ? rule : 0.5;
  return { scores: predictScores(spec, params, task.query.x, task.query.n), threshold };
}

export interface BaselineOptions {
  forest: { trees: number; maxDepth?: number | undefined };
  logistic: Required<LogisticOptions>;
}

/** Query scores of a model trained on the support set alone, cut by the same rule as the fine-tuned starts. */
export function scoreBaseline(kind: 'local-rf' | 'local-lr', task: FewShotTask, opts: BaselineOptions, seed: number, rule: ThresholdRule = 'support'): Scored {
  const s = task.support;
  const model =
    kind === 'local-rf'
      ? RandomForest.fit(s, { trees: opts.forest.trees, seed, ...(opts.forest.maxDepth !== undefined ? { maxDepth: opts.forest.maxDepth } : {}) })
      : LogisticRegression.fit(s, opts.logistic);
  return { scores: model.predict(task.query.x, task.query.n), threshold: thresholdOf(rule, () => model.predict(s.x, s.n), s.y) };
}

export function metricsOf(scored: Scored, task: FewShotTask): DetectionMetrics {
  return detectionMetrics(scored.scores, task.query.y, scored.threshold);
}

export interface TunedSchedule extends Schedule {
  /** Mean F1 on the validation family with this schedule. */
  validationF1: number;
}

/**
 * Chooses a start's adaptation schedule for each K on the validation family's tasks: every step count of the
 * grid with every step size (one size under Meta-SGD, whose sizes are learned), best mean F1 wins, ties to
 * fewer steps. Step counts are walked upwards on one trajectory per task: plain SGD has no state, so adapting
 * 5 then 5 more steps is exactly 10 steps.
 */
export function tuneSchedules(
  start: MlpStart,
  tasks: ReadonlyMap<number, readonly FewShotTask[]>,
  grid: { steps: readonly number[]; lr: readonly number[] },
  rule: ThresholdRule,
): Map<number, TunedSchedule> {
  const steps = [...new Set(grid.steps)].sort((a, b) => a - b);
  const lrs = start.method.metaSgd ? [grid.lr[0]!] : [...grid.lr];
  const { spec, method } = start;
  const out = new Map<number, TunedSchedule>();
  for (const [K, list] of tasks) {
    let best: TunedSchedule | null = null;
    for (const lr of lrs) {
      const f1s = steps.map(() => 0);
      for (const task of list) {
        let params = start.params;
        let done = 0;
        steps.forEach((s, i) => {
          params = adapt(spec, params, task.support, innerFor(method, spec, s - done, lr, start.anilLayers));
          done = s;
          const p = params;
          const sup = task.support;
          const threshold = thresholdOf(rule, () => predictScores(spec, p, sup.x, sup.n), sup.y);
          f1s[i]! += f1Of(confusionAt(predictScores(spec, p, task.query.x, task.query.n), task.query.y, threshold)) / list.length;
        });
      }
      steps.forEach((s, i) => {
        const f1 = f1s[i]!;
        if (best === null || f1 > best.validationF1 + 1e-12 || (Math.abs(f1 - best.validationF1) <= 1e-12 && s < best.steps)) {
          best = { steps: s, lr, validationF1: f1 };
        }
      });
    }
    out.set(K, best!);
  }
  return out;
}
