import { predictScores } from '@fedmeta/shared';
import type { FeatureStats } from '@fedmeta/shared';
import type { FewShotTask } from '../eval/protocol.js';
import { adaptStart, metricsOf, scoreStart } from '../eval/scoring.js';
import type { MlpStart, Schedule, ThresholdRule } from '../eval/scoring.js';
import { applyTrigger } from './poison.js';
import type { Trigger } from './poison.js';

/** Mean held-out F1 of a start over the support draws (each adapted on its own K shots). */
export function heldOutF1(start: MlpStart, schedule: Schedule | null, tasks: readonly FewShotTask[], rule: ThresholdRule): number {
  let sum = 0;
  for (const task of tasks) sum += metricsOf(scoreStart(start, schedule, task, rule), task).f1;
  return sum / tasks.length;
}

export interface BackdoorScore {
  /** Triggered attack flows scored benign (below the office's threshold), as a fraction of them. */
  success: number;
  /** The same attack flows without the trigger scored benign: the detector's plain miss rate. */
  plainMiss: number;
  f1: number;
}

/**
 * The backdoor measured where it matters: at the held-out office, after it adapted the start on its own clean
 * K shots and set its threshold on them, the share of its attack flows that the trigger turns benign.
 */
export function backdoorScore(start: MlpStart, schedule: Schedule | null, tasks: readonly FewShotTask[], rule: ThresholdRule, trigger: Trigger, stats: FeatureStats): BackdoorScore {
  const { spec } = start;
  let success = 0;
  let plainMiss = 0;
  let f1 = 0;
  for (const task of tasks) {
    // The office's own scoring (threshold rule included); adaptation is deterministic, so adapting again
    // gives the very parameters that scored the query.
    const { scores, threshold } = scoreStart(start, schedule, task, rule);
    const params = adaptStart(start, schedule, task.support);
    const q = task.query;
    const attackRows: number[] = [];
    for (let i = 0; i < q.n; i++) if (q.y[i] === 1) attackRows.push(i);
    const x = new Float32Array(attackRows.length * q.dim);
    attackRows.forEach((r, k) => x.set(q.x.subarray(r * q.dim, (r + 1) * q.dim), k * q.dim));
    const triggered = predictScores(spec, params, applyTrigger(x, q.dim, trigger, stats), attackRows.length);
    let hit = 0;
    let miss = 0;
    attackRows.forEach((r, k) => {
      if (triggered[k]! < threshold) hit++;
      if (scores[r]! < threshold) miss++;
    });
    success += hit / attackRows.length;
    plainMiss += miss / attackRows.length;
    f1 += metricsOf({ scores, threshold }, task).f1;
  }
  const n = tasks.length;
  return { success: success / n, plainMiss: plainMiss / n, f1: f1 / n };
}
