import type { InnerLoopConfig, ModelSpec, OptimizerConfig } from '@fedmeta/shared';
import type { MethodSpec } from './names.js';
import type { LabSite, LocalWork } from './site.js';

/** Everything one training run needs, whatever the method. */
export interface TrainingSetup {
  method: MethodSpec;
  spec: ModelSpec;
  sites: LabSite[];
  work: LocalWork;
  rounds: number;
  optimizer: OptimizerConfig;
  /** Initial parameters (with Meta-SGD step sizes appended for +metasgd methods). */
  init: Float32Array;
  /** Seeds the engine's site sampling and round tasks. */
  seed: number;
  validateEvery: number;
  threshold: number | 'support';
  /** Layers adapted by +anil methods. */
  anilLayers: number;
}

export interface TrainingHooks {
  /** Called for version 0 and after every committed round, with that version's parameters. */
  onVersion?: (version: number, params: Float32Array) => void | Promise<void>;
  /** Called after every round. */
  onRound?: (round: number, total: number) => void;
}

/** A trained starting point: every version, and the versions the sites' own scores favour. */
export interface TrainedStart {
  trainingKey: string;
  lastVersion: number;
  paramsOf(version: number): Float32Array;
  /** Best version by the sites' validation score after adaptation (what `release --best` picks). */
  bestAdapted: number | null;
  /** Best version by the sites' validation score without adaptation (for a start used as it is). */
  bestPlain: number | null;
  /** Mean site validation score per validated version, adapted and plain. */
  validation: Array<{ version: number; adapted?: number; plain?: number }>;
  /** Float32 values each site uploads per round (0 for a method that is not federated). */
  uploadValuesPerRound: number;
  wallSeconds: number;
}

/** The inner loop a method adapts with, in training and at the held-out office. */
export function innerFor(method: MethodSpec, spec: ModelSpec, steps: number, lr: number, anilLayers: number): InnerLoopConfig {
  const inner: InnerLoopConfig = { steps, lr };
  if (method.anil) inner.adaptLast = Math.min(anilLayers, spec.hidden.length + 1);
  return inner;
}

/** Highest score wins; ties go to the newer version (it has seen more rounds). */
export function bestVersion(scores: ReadonlyArray<{ version: number; score: number | undefined }>): number | null {
  let best: { version: number; score: number } | null = null;
  for (const s of scores) {
    if (s.score === undefined) continue;
    if (best === null || s.score > best.score || (s.score === best.score && s.version > best.version)) best = { version: s.version, score: s.score };
  }
  return best?.version ?? null;
}

export function mean(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  return values.reduce((a, b) => a + b, 0) / values.length;
}
