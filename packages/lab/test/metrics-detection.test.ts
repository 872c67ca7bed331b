import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  averagePrecision,
  confusionAt,
  detectionMetrics,
  f1At50Of,
  meanStd,
  pairedDifference,
  summarize,
  supportThreshold,
} from '../src/metrics/index.js';

const close = (a: number, b: number, eps = 1e-9): void => assert.ok(Math.abs(a - b) <= eps, `${a} is not ${b}`);

test('confusion, F1, detection rate, FPR and F1 at 50% prevalence match a hand-worked case', () => {
  // Flagged at 0.5: rows 0 (attack), 2 (benign), 5 (attack); row 1 is a missed attack; rows 3, 4 benign and quiet.
  const scores = [0.9, 0.4, 0.6, 0.2, 0.1, 0.7];
  const labels = [1, 1, 0, 0, 0, 1];
  assert.deepEqual(confusionAt(scores, labels, 0.5), { tp: 2, fp: 1, tn: 2, fn: 1 });
  const m = detectionMetrics(scores, labels);
  close(m.f1, 4 / 6);
  close(m.detectionRate, 2 / 3);
  close(m.fpr, 1 / 3);
  // 2·DR / (1 + DR + FPR) = (4/3) / 2
  close(m.f1At50, 2 / 3);
  // A score equal to the threshold is flagged.
  assert.deepEqual(confusionAt([0.5], [1], 0.5), { tp: 1, fp: 0, tn: 0, fn: 0 });
});

test('a detector that flags everything: F1 depends on the class balance, F1 at 50% does not', () => {
  const labels = [1, 1, 1, 1, 0];
  const m = detectionMetrics([1, 1, 1, 1, 1], labels);
  close(m.f1, 8 / 9); // 2·4 / (2·4 + 1)
  close(m.detectionRate, 1);
  close(m.fpr, 1);
  close(m.f1At50, 2 / 3);
  close(f1At50Of({ tp: 0, fp: 0, tn: 5, fn: 5 }), 0);
});

test('average precision is the step-wise area, with tied scores entering together', () => {
  // Ranks: + - + - +  → 1/3·1 + 1/3·2/3 + 1/3·3/5 = 34/45
  close(averagePrecision([0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 0, 1]), 34 / 45);
  // Order of the input does not matter.
  close(averagePrecision([0.5, 0.6, 0.7, 0.8, 0.9], [1, 0, 1, 0, 1]), 34 / 45);
  // A tie of one attack and one benign at the top: recall .5 at precision .5, then recall 1 at 2/3.
  close(averagePrecision([0.8, 0.8, 0.3], [1, 0, 1]), 0.25 + 0.5 * (2 / 3));
  close(averagePrecision([0.1, 0.9], [1, 0]), 0.5);
  close(averagePrecision([0.9, 0.1], [1, 0]), 1);
  assert.equal(averagePrecision([0.3, 0.2], [0, 0]), 0);
  assert.throws(() => averagePrecision([0.1], [1, 0]));
});

test('mean and sample standard deviation, and their summary per metric', () => {
  const s = meanStd([1, 2, 3, 4]);
  close(s.mean, 2.5);
  close(s.std, Math.sqrt(5 / 3));
  assert.deepEqual(meanStd([0.7]), { mean: 0.7, std: 0 });
  const runs = [detectionMetrics([0.9, 0.1], [1, 0]), detectionMetrics([0.1, 0.1], [1, 0])];
  const sum = summarize(runs);
  close(sum.f1.mean, 0.5);
  close(sum.f1.std, Math.SQRT1_2);
  close(sum.fpr.mean, 0);
  close(sum.prAuc.mean, (1 + 0.5) / 2);
});

test('paired difference: mean of the per-pair differences with a Student-t interval', () => {
  const d = pairedDifference([0.9, 0.8, 0.7], [0.8, 0.8, 0.6]);
  close(d.mean, 0.2 / 3);
  const sd = Math.sqrt(((0.1 - 0.2 / 3) ** 2 * 2 + (0.2 / 3) ** 2) / 2);
  const half = (4.303 * sd) / Math.sqrt(3);
  assert.ok(d.ci95 !== null);
  close(d.ci95[0], 0.2 / 3 - half, 1e-12);
  close(d.ci95[1], 0.2 / 3 + half, 1e-12);
  assert.equal(d.n, 3);
  assert.equal(pairedDifference([0.5], [0.4]).ci95, null);
});

test('the support threshold: best F1 on the shots, nearest 0.5 among ties, 0.5 without both classes', () => {
  // The attack shot scores 0.3 and the benign one 0.1: 0.5 would miss it; the midpoint separates them.
  close(supportThreshold([0.1, 0.3], [0, 1]), 0.2);
  // 0.5 already separates the shots: it is kept (of the cuts that separate them, it is the nearest to 0.5).
  close(supportThreshold([0.2, 0.9], [0, 1]), 0.5);
  close(supportThreshold([0.1, 0.4, 0.6, 0.8], [0, 0, 1, 1]), 0.5);
  // An attack shot below 0.5: the cut moves down to just above the highest benign shot.
  close(supportThreshold([0.1, 0.45, 0.3, 0.8], [0, 1, 0, 1]), (0.3 + 0.45) / 2);
  // Shots that no cut separates: the best F1 wins (flag 0.2 and above: tp 2, fp 1, F1 .8, against .67 at 0.5).
  close(supportThreshold([0.2, 0.6, 0.3, 0.1], [1, 1, 0, 0]), 0.15);
  assert.equal(supportThreshold([0.2, 0.7], [1, 1]), 0.5);
});
