import { METRIC_NAMES } from './detection.js';
import type { DetectionMetrics } from './detection.js';

export interface MeanStd {
  mean: number;
  std: number;
}

export type MetricSummary = Record<keyof DetectionMetrics, MeanStd>;

/**
 * Mean and sample standard deviation (n − 1 in the denominator; 0 for a single value). The spread is that of
 * the individual runs (seeds × support draws), not the standard error of the mean.
 */
export function meanStd(values: readonly number[]): MeanStd {
  const n = values.length;
  if (n === 0) return { mean: Number.NaN, std: Number.NaN };
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / n;
  if (n === 1) return { mean, std: 0 };
  let ss = 0;
  for (const v of values) ss += (v - mean) * (v - mean);
  return { mean, std: Math.sqrt(ss / (n - 1)) };
}

export function summarize(runs: readonly DetectionMetrics[]): MetricSummary {
  const out = {} as MetricSummary;
  for (const name of METRIC_NAMES) out[name] = meanStd(runs.map((r) => r[name]));
  return out;
}

/** Two-sided 97.5% quantile of Student's t for small samples (df 1..30), then the normal value. */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11,
  2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

export interface PairedDifference {
  /** Mean of (a − b) over the pairs. */
  mean: number;
  /** 95% confidence interval of the mean difference (Student's t); null with fewer than two pairs. */
  ci95: [number, number] | null;
  n: number;
}

/** Paired difference a − b, pair by pair (the same seed and support draw for both). */
export function pairedDifference(a: readonly number[], b: readonly number[]): PairedDifference {
  const n = Math.min(a.length, b.length);
  const d = Array.from({ length: n }, (_, i) => a[i]! - b[i]!);
  const { mean, std } = meanStd(d);
  if (n < 2) return { mean, ci95: null, n };
  const t = T975[n - 2] ?? 1.96;
  const half = (t * std) / Math.sqrt(n);
  return { mean, ci95: [mean - half, mean + half], n };
}
