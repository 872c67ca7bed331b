export {
  METRIC_NAMES,
  averagePrecision,
  confusionAt,
  detectionMetrics,
  detectionRateOf,
  f1At50Of,
  f1Of,
  fprOf,
  supportThreshold,
} from './detection.js';
export type { Confusion, DetectionMetrics, MetricName } from './detection.js';
export { meanStd, pairedDifference, summarize } from './summary.js';
export type { MeanStd, MetricSummary, PairedDifference } from './summary.js';
