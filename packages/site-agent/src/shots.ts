import { Detector, ErrorCode, FedmetaError, StatsAccumulator, adapt, loadFlowTable, standardizeRows } from '@fedmeta/shared';
import type { FeatureSchema, FeatureStats } from '@fedmeta/shared';
import { bestF1Threshold, confusionAt, f1 } from './metrics.js';
import type { ModelFile } from './model-file.js';

/**
 * Adapting the meta-parameters to the office's few labelled flows (the "shots"): k steps of SGD from the
 * meta-learned initialisation, exactly the inner loop the federation trained for.
 *
 * Standardisation: with the site's own statistics when the model file carries them (a file cached by
 * `fedmeta-agent run`), else with statistics of the shots themselves.
 *
 * Threshold, unless given: the best-F1 cut on the shots' scores after adaptation, taken halfway between two
 * neighbouring scores (never on a labelled flow) and, among equally good cuts, the one nearest 0.5. With
 * shots of one class only there is nothing to choose between, and 0.5 is used.
 */
export interface AdaptOptions {
  steps?: number;
  lr?: number;
  threshold?: number;
}

export interface AdaptedDetector {
  detector: Detector;
  threshold: number;
  /** F1 on the shots at the threshold (optimistic: the detector was adapted on them). */
  shotsF1: number;
  stats: FeatureStats;
  shots: { benign: number; attack: number };
  steps: number;
  lr: number;
}

/** Inner-loop defaults when the model file does not say how it was trained (the coordinator's defaults). */
const DEFAULT_STEPS = 5;
const DEFAULT_LR = 0.05;

export async function adaptToShots(model: ModelFile, shotsPath: string, schema: FeatureSchema, opts: AdaptOptions = {}): Promise<AdaptedDetector> {
  if (model.spec.task.kind !== 'binary') {
    throw new FedmetaError(ErrorCode.CONFIG, 'detect runs binary (benign against attack) detectors; this model is a multiclass triage model');
  }
  const table = await loadFlowTable(shotsPath, schema);
  const stats = model.stats ?? StatsAccumulator.forSchema(schema).addTable(table).finalize();
  const x = standardizeRows(table.x.slice(), table.dim, stats);
  let attack = 0;
  for (let i = 0; i < table.n; i++) attack += table.labels[i]!;
  const steps = opts.steps ?? model.inner?.steps ?? DEFAULT_STEPS;
  const lr = opts.lr ?? model.inner?.lr ?? DEFAULT_LR;
  const support = { x, y: table.labels, n: table.n, dim: table.dim };
  const adapted = adapt(model.spec, model.params, support, { steps, lr });
  for (let i = 0; i < adapted.length; i++) {
    if (!Number.isFinite(adapted[i]!)) {
      throw new FedmetaError(ErrorCode.NON_FINITE, `adapting to the shots diverged (NaN or infinity) at step size ${lr}; use a smaller --lr or fewer --steps`);
    }
  }
  const detector = new Detector(model.spec, adapted);
  try {
    const scores = detector.predict(x, table.n);
    const threshold = opts.threshold ?? bestF1Threshold(scores, table.labels).threshold;
    const shotsF1 = f1(confusionAt(scores, table.labels, threshold));
    return { detector, threshold, shotsF1, stats, shots: { benign: table.n - attack, attack }, steps, lr };
  } catch (e) {
    detector.dispose();
    throw e;
  }
}
