import { ErrorCode, FedmetaError, RdpAccountant, adapt, createRng, deriveSeed, dpGradient, initRuntime, predictScores, seededNoise } from '@fedmeta/shared';
import type { Batch, FlowTable, ModelSpec, Rng } from '@fedmeta/shared';
import type { EvalConfig } from '../config.js';
import { loadBase, seedWorld } from '../attacks/world.js';
import type { Dataset } from '../eval/data.js';
import { gatherRows } from '../eval/protocol.js';
import { silentProgress } from '../eval/progress.js';
import type { Progress } from '../eval/progress.js';
import { countPositives, firstLayerCandidates, labelRecovery } from './analytic.js';
import { dlgReconstruct } from './dlg.js';
import { batchGradient, sumUpdates } from './gradient.js';
import { marginalMedian, rowsOf, scoreRecovery } from './match.js';
import type { RecoveryScore } from './match.js';

/**
 * What the attacker (an honest-but-curious coordinator) gets to see of the victim site:
 * - none: the site's gradient on its batch (FedSGD, or one Reptile step);
 * - reptile: the protocol's Reptile update, params − the parameters after the configured inner steps;
 * - dp: the gradient under record-level DP-SGD (per-example clipping and Gaussian noise);
 * - secagg: only the sum of N sites' gradients, the victim's among them.
 */
export type Defence = 'none' | 'reptile' | 'dp' | 'secagg';
export const DEFENCES: readonly Defence[] = ['none', 'reptile', 'dp', 'secagg'];

export interface LeakageOptions {
  batchSizes?: number[];
  defences?: Defence[];
  /** Batches attacked per cell. */
  trials?: number;
  dlgIterations?: number;
  dlgLr?: number;
  /** A feature counts as recovered within this many standardised units. */
  tol?: number;
  /** Record-level DP-SGD of the victim's gradient. */
  dp?: { clipNorm: number; noiseMultiplier: number };
  /** Sites whose updates secure aggregation sums (the victim's among them). */
  secaggSites?: number;
  progress?: Progress;
  dataset?: Dataset;
}

export interface LeakageCell {
  analytic: RecoveryScore;
  dlg: RecoveryScore;
  baseline: RecoveryScore;
  /** Labels recovered (as a multiset), mean over trials. */
  labels: number;
}

export interface LeakageResults {
  kind: 'leakage';
  dataset: string;
  model: { inputDim: number; hidden: number[]; activation: string };
  victim: string;
  trials: number;
  tol: number;
  dlg: { iterations: number; lr: number };
  dp: { clipNorm: number; noiseMultiplier: number; delta: number; epsilonOneRound: Record<string, number> };
  reptile: { steps: number; lr: number };
  secaggSites: number;
  batchSizes: number[];
  defences: Defence[];
  cells: Record<string, Record<string, LeakageCell>>;
  wallSeconds: number;
}

function drawBatch(table: FlowTable, B: number, rng: Rng): Batch {
  if (table.n < B) throw new FedmetaError(ErrorCode.CONFIG, `a site holds ${table.n} flows, fewer than the batch size ${B}; use smaller batches`);
  const rows = rng.shuffle(Int32Array.from({ length: table.n }, (_, i) => i)).slice(0, B);
  return gatherRows(table, rows);
}

function positives(b: Batch): number {
  let k = 0;
  for (let i = 0; i < b.n; i++) k += b.y[i]!;
  return k;
}

function meanScores(list: readonly RecoveryScore[]): RecoveryScore {
  const n = list.length;
  return {
    mae: list.reduce((a, s) => a + s.mae, 0) / n,
    featureMatch: list.reduce((a, s) => a + s.featureMatch, 0) / n,
    rowMatch: list.reduce((a, s) => a + s.rowMatch, 0) / n,
  };
}

/** Dummy rows for the inversion: the marginal guess with a little noise, so the rows can move apart. */
function dummyInit(fallback: Float32Array, n: number, rng: Rng): Float32Array {
  const dim = fallback.length;
  const out = new Float32Array(n * dim);
  for (let r = 0; r < n; r++) for (let j = 0; j < dim; j++) out[r * dim + j] = fallback[j]! + 0.1 * rng.normal();
  return out;
}

/**
 * Attacks one site's update at the first round's parameters, for every batch size and defence: analytic
 * first-layer recovery, DLG-style inversion, and label recovery from the output layer; each against the
 * marginal guess. The same victim batches are attacked under every defence.
 */
export async function runLeakage(config: EvalConfig, opts: LeakageOptions = {}): Promise<LeakageResults> {
  const started = performance.now();
  await initRuntime();
  const progress = opts.progress ?? silentProgress;
  const batchSizes = opts.batchSizes ?? [1, 8, 32, 128];
  const defences = opts.defences ?? [...DEFENCES];
  const trials = opts.trials ?? 3;
  const iterations = opts.dlgIterations ?? 300;
  const lr = opts.dlgLr ?? 0.05;
  const tol = opts.tol ?? 0.05;
  const dp = opts.dp ?? { clipNorm: 1, noiseMultiplier: 1 };
  const nSites = opts.secaggSites ?? 10;
  const delta = 1e-5;
  const base = await loadBase(config, 'fomaml', undefined, opts.dataset);
  const world = seedWorld(base, 0, 1, 1, nSites);
  const spec: ModelSpec = base.plan.spec;
  const reptile = { steps: base.plan.work.innerSteps, lr: base.plan.work.innerLr };
  const params = world.init;
  const victim = world.sites[0]!;
  const others = world.sites.slice(1);
  const dim = spec.inputDim;
  const fallback = marginalMedian(victim.table.x, victim.table.n, dim);
  // The attacker's estimate of the model's mean score on such flows, from traffic it may see (another office).
  const v = world.split.validation.table;
  const ref = predictScores(spec, params, v.x, v.n);
  const meanScore = ref.reduce((a, b) => a + b, 0) / ref.length;
  const accountant = new RdpAccountant();
  const cells: LeakageResults['cells'] = {};
  const epsilonOneRound: Record<string, number> = {};

  for (const defence of defences) {
    cells[defence] = {};
    for (const B of batchSizes) {
      const analytic: RecoveryScore[] = [];
      const dlg: RecoveryScore[] = [];
      const baseline: RecoveryScore[] = [];
      let labels = 0;
      const q = B / victim.table.n;
      if (defence === 'dp') epsilonOneRound[String(B)] = accountant.epsilonAfter(dp.noiseMultiplier, q, 1, delta).epsilon;
      for (let t = 0; t < trials; t++) {
        const rng = createRng(deriveSeed(world.seed, 'leak', B, t));
        const batch = drawBatch(victim.table, B, rng);
        let seen: Float32Array;
        let examples = B;
        let share = 1;
        if (defence === 'none') seen = batchGradient(spec, params, batch);
        else if (defence === 'reptile') {
          const adapted = adapt(spec, params, batch, { steps: reptile.steps, lr: reptile.lr });
          // params − adapted is lr × the sum of the steps' gradients; rescaled to their mean gradient.
          seen = params.map((p, i) => (p - adapted[i]!) / (reptile.lr * reptile.steps));
        } else if (defence === 'dp') {
          seen = dpGradient(spec, params, batch, { clipNorm: dp.clipNorm, noiseMultiplier: dp.noiseMultiplier, samplingRate: q }, seededNoise(deriveSeed(world.seed, 'dp', B, t))).gradient;
        } else {
          const updates = [batchGradient(spec, params, batch), ...others.map((o) => batchGradient(spec, params, drawBatch(o.table, B, rng)))];
          // The coordinator sees the sum; each term is a mean over B, so sum / N is the mean over all N·B flows.
          seen = sumUpdates(updates).map((x) => x / updates.length);
          examples = B * updates.length;
          share = updates.length;
        }
        const total = countPositives(spec, seen, examples, meanScore);
        // Under secure aggregation the count is the federation's; the victim's share is a guess.
        labels += labelRecovery(Math.round(total / share), positives(batch), B);
        analytic.push(scoreRecovery(batch.x, B, dim, firstLayerCandidates(spec, seen), fallback, tol));
        baseline.push(scoreRecovery(batch.x, B, dim, [], fallback, tol));
        const dummyLabels = new Int32Array(examples);
        dummyLabels.fill(1, 0, total);
        const inverted = dlgReconstruct(spec, params, seen, examples, { iterations, lr, labels: dummyLabels, init: dummyInit(fallback, examples, rng) });
        dlg.push(scoreRecovery(batch.x, B, dim, rowsOf(inverted.x, examples, dim), fallback, tol));
      }
      cells[defence]![String(B)] = { analytic: meanScores(analytic), dlg: meanScores(dlg), baseline: meanScores(baseline), labels: labels / trials };
      progress.event('leak-cell', { defence, B, seconds: Number(((performance.now() - started) / 1000).toFixed(1)) });
    }
  }
  return {
    kind: 'leakage',
    dataset: config.dataset,
    model: { inputDim: dim, hidden: [...spec.hidden], activation: spec.activation },
    victim: victim.name,
    trials,
    tol,
    dlg: { iterations, lr },
    dp: { ...dp, delta, epsilonOneRound },
    reptile,
    secaggSites: nSites,
    batchSizes,
    defences,
    cells,
    wallSeconds: (performance.now() - started) / 1000,
  };
}
