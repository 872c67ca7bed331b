import { ErrorCode, FedmetaError } from '@fedmeta/shared';

/**
 * Detection scores of a binary detector on labelled flows: attack (label 1) is the positive class, a flow is
 * flagged when its score is at or above the threshold.
 */
export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export interface DetectionMetrics {
  f1: number;
  /** F1 the detector would score on a query set with as many attacks as benign flows: 2·DR / (1 + DR + FPR). */
  f1At50: number;
  /** Recall of the attack class. */
  detectionRate: number;
  /** Share of benign flows flagged. */
  fpr: number;
  /** Average precision (area under the step-wise precision-recall curve). */
  prAuc: number;
}

export const METRIC_NAMES = ['f1', 'f1At50', 'detectionRate', 'fpr', 'prAuc'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

function checkLengths(scores: ArrayLike<number>, labels: ArrayLike<number>): void {
  if (scores.length !== labels.length) {
    throw new FedmetaError(ErrorCode.SHAPE, `${scores.length} scores for ${labels.length} labels; score every query flow once`);
  }
}

export function confusionAt(scores: ArrayLike<number>, labels: ArrayLike<number>, threshold = 0.5): Confusion {
  checkLengths(scores, labels);
  const c: Confusion = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < scores.length; i++) {
    const flagged = scores[i]! >= threshold;
    if (labels[i] === 1) {
      if (flagged) c.tp++;
      else c.fn++;
    } else if (flagged) c.fp++;
    else c.tn++;
  }
  return c;
}

/** F1 of the attack class; 0 when there is nothing to detect and nothing flagged (no true positive is possible). */
export function f1Of(c: Confusion): number {
  const d = 2 * c.tp + c.fp + c.fn;
  return d === 0 ? 0 : (2 * c.tp) / d;
}

export function detectionRateOf(c: Confusion): number {
  const p = c.tp + c.fn;
  return p === 0 ? 0 : c.tp / p;
}

export function fprOf(c: Confusion): number {
  const n = c.fp + c.tn;
  return n === 0 ? 0 : c.fp / n;
}

/**
 * F1 at 50% prevalence: precision and recall recomputed as if the query held equally many attacks and benign
 * flows, so that the figure does not depend on the sample's artificial class balance.
 */
export function f1At50Of(c: Confusion): number {
  const dr = detectionRateOf(c);
  const fpr = fprOf(c);
  return dr === 0 ? 0 : (2 * dr) / (1 + dr + fpr);
}

/**
 * Average precision, step-wise: Σ over distinct score levels, from the highest, of (R_k − R_{k−1}) · P_k, where
 * flows with equal scores enter together. No interpolation, so a detector is not credited with precision it
 * never reaches. 0 when there is no attack to find.
 */
export function averagePrecision(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  checkLengths(scores, labels);
  const n = scores.length;
  let positives = 0;
  for (let i = 0; i < n; i++) if (labels[i] === 1) positives++;
  if (positives === 0) return 0;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  let tp = 0;
  let fp = 0;
  let ap = 0;
  let lastRecall = 0;
  for (let k = 0; k < n; ) {
    const level = scores[order[k]!]!;
    while (k < n && scores[order[k]!]! === level) {
      if (labels[order[k]!] === 1) tp++;
      else fp++;
      k++;
    }
    const recall = tp / positives;
    ap += (recall - lastRecall) * (tp / (tp + fp));
    lastRecall = recall;
  }
  return ap;
}

/** Every metric of one scored query set, at the given threshold (PR-AUC does not use it). */
export function detectionMetrics(scores: ArrayLike<number>, labels: ArrayLike<number>, threshold = 0.5): DetectionMetrics {
  const c = confusionAt(scores, labels, threshold);
  return {
    f1: f1Of(c),
    f1At50: f1At50Of(c),
    detectionRate: detectionRateOf(c),
    fpr: fprOf(c),
    prAuc: averagePrecision(scores, labels),
  };
}

/**
 * The threshold an office would set from its labelled shots: the cut with the best F1 on the support scores.
 * Candidates are 0.5 and the midpoints between consecutive distinct scores, so the cut never sits on a shot;
 * among equally good cuts the one nearest 0.5 wins. With shots of one class only there is nothing to choose
 * between and 0.5 is kept. This turns a start whose ranking is right but whose scores sit on the wrong side of
 * 0.5 for a new family into a working detector, as `fedmeta-agent detect` does with the analyst's shots.
 */
export function supportThreshold(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  checkLengths(scores, labels);
  let pos = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === 1) pos++;
  if (pos === 0 || pos === labels.length) return 0.5;
  const sorted = [...new Set(Array.from(scores))].sort((a, b) => a - b);
  const candidates = [0.5];
  for (let i = 0; i + 1 < sorted.length; i++) candidates.push((sorted[i]! + sorted[i + 1]!) / 2);
  let best = 0.5;
  let bestF1 = -1;
  for (const t of candidates) {
    const f = f1Of(confusionAt(scores, labels, t));
    if (f > bestF1 + 1e-12 || (Math.abs(f - bestF1) <= 1e-12 && Math.abs(t - 0.5) < Math.abs(best - 0.5))) {
      best = t;
      bestF1 = f;
    }
  }
  return best;
}
