/**
 * Detection scores for a binary detector: attack is the positive class. Used by the trainer (valF1) and by
 * `detect` (choosing the threshold on the analyst's labelled shots).
 */
export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export function confusionAt(scores: ArrayLike<number>, labels: ArrayLike<number>, threshold: number): Confusion {
  const c: Confusion = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < scores.length; i++) {
    const flagged = scores[i]! >= threshold;
    const attack = labels[i] === 1;
    if (flagged && attack) c.tp++;
    else if (flagged) c.fp++;
    else if (attack) c.fn++;
    else c.tn++;
  }
  return c;
}

/** F1 of the attack class; 0 when nothing is flagged and nothing should be, since there is nothing to detect. */
export function f1(c: Confusion): number {
  const denom = 2 * c.tp + c.fp + c.fn;
  return denom === 0 ? 0 : (2 * c.tp) / denom;
}

export function accuracy(c: Confusion): number {
  const n = c.tp + c.fp + c.tn + c.fn;
  return n === 0 ? 0 : (c.tp + c.tn) / n;
}

/** Combines confusion counts (micro-averaging over episodes). */
export function addConfusion(a: Confusion, b: Confusion): Confusion {
  return { tp: a.tp + b.tp, fp: a.fp + b.fp, tn: a.tn + b.tn, fn: a.fn + b.fn };
}

/**
 * The threshold with the best F1 on labelled scores. Candidates are 0.5 and the midpoints between consecutive
 * distinct scores, so the cut never sits on a labelled example; among equally good cuts the one nearest 0.5
 * wins, which keeps a detector whose shots separate perfectly from hugging one class. Returns 0.5 when the
 * shots hold no attack or no benign flow (there is nothing to choose between).
 */
export function bestF1Threshold(scores: ArrayLike<number>, labels: ArrayLike<number>): { threshold: number; f1: number } {
  let pos = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === 1) pos++;
  if (pos === 0 || pos === labels.length) return { threshold: 0.5, f1: f1(confusionAt(scores, labels, 0.5)) };
  const sorted = [...new Set(Array.from(scores))].sort((a, b) => a - b);
  const candidates = [0.5];
  for (let i = 0; i + 1 < sorted.length; i++) candidates.push((sorted[i]! + sorted[i + 1]!) / 2);
  let best = { threshold: 0.5, f1: -1 };
  for (const t of candidates) {
    const score = f1(confusionAt(scores, labels, t));
    const better = score > best.f1 + 1e-12 || (Math.abs(score - best.f1) <= 1e-12 && Math.abs(t - 0.5) < Math.abs(best.threshold - 0.5));
    if (better) best = { threshold: t, f1: score };
  }
  return best;
}
