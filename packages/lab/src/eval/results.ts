import { z } from 'zod';
import { ErrorCode, FedmetaError } from '@fedmeta/shared';

/**
 * The results file. The required part (dataset, evalFamilies, seeds, methods, communication) is the format
 * other tools read; the rest adds detail. `methods` pools every evaluation family; `byFamily` splits them.
 * Metric values are means and sample standard deviations over seeds × support draws.
 */
const meanStd = z.object({ mean: z.number(), std: z.number() }).strict();
const metricSummary = z.object({ f1: meanStd, f1At50: meanStd, detectionRate: meanStd, fpr: meanStd, prAuc: meanStd }).strict();
const byK = z.record(z.string().regex(/^\d+$/), metricSummary);
const byMethod = z.record(z.string(), byK);

const communicationEntry = z
  .object({
    /** The target value of the config's metric (F1 or F1 at 50% prevalence, see `target.metric`). */
    targetF1: z.number(),
    roundsToTarget: z.number().int().min(0).nullable(),
    bytesUploadedPerSite: z.number().int().min(0).nullable(),
  })
  .strict();

const curvePoint = z.object({ round: z.number().int().min(0), f1: z.number(), f1At50: z.number() }).strict();

const pairedEntry = z
  .object({ against: z.string(), meanDiff: z.number(), ci95: z.tuple([z.number(), z.number()]).nullable(), pairs: z.number().int() })
  .strict();

export const resultsSchema = z
  .object({
    dataset: z.string(),
    evalFamilies: z.array(z.string()).min(1),
    seeds: z.number().int().min(1),
    methods: byMethod,
    communication: z.record(z.string(), communicationEntry),
    supportDraws: z.number().int().min(1),
    K: z.array(z.number().int().min(1)),
    byFamily: z.record(z.string(), byMethod),
    target: z.object({ family: z.string(), K: z.number().int(), metric: z.enum(['f1', 'f1At50']), value: z.number() }).strict(),
    /** Held-out score at the target (family, K) after each round, mean over seeds and the curve draws. */
    curves: z.record(z.string(), z.array(curvePoint)),
    /** Each meta-learning method against fedavg+ft: per-seed mean F1 difference and its 95% interval. */
    paired: z.record(z.string(), z.record(z.string(), z.record(z.string(), pairedEntry))),
    /** Adaptation schedule chosen on the validation family, per method and K. */
    adaptation: z.record(z.string(), z.record(z.string(), z.object({ steps: z.number().int(), lr: z.number().nullable(), validationF1: z.number() }).strict())),
    /** Version handed to the held-out office, per family, method and seed. */
    releases: z.record(z.string(), z.record(z.string(), z.array(z.number().int()))),
    settings: z.record(z.string(), z.unknown()),
    timing: z.object({ wallSeconds: z.number(), trainingSeconds: z.record(z.string(), z.number()) }).strict(),
  })
  .strict();

export type EvalResults = z.infer<typeof resultsSchema>;
export type MethodResults = EvalResults['methods'];
export type CommunicationResults = EvalResults['communication'];
export type CurvePoint = z.infer<typeof curvePoint>;

/** Refuses a results object that is not in the format (a bug in the harness, never a user error). */
export function checkResults(value: unknown): EvalResults {
  const r = resultsSchema.safeParse(value);
  if (!r.success) {
    const detail = r.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.join('.')}: ${i.message}`)
      .join('; ');
    throw new FedmetaError(ErrorCode.SCHEMA, `the results are not in the results.json format (${detail})`);
  }
  return r.data;
}

const fmt = (v: number): string => (Number.isFinite(v) ? v.toFixed(3).replace(/^0\./, '.').replace(/^-0\./, '-.') : ' n/a');

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')).join('\n');
}

/** The human summary: F1 (mean ± std) and FPR per K, per family, then the communication each method needed. */
export function formatResults(r: EvalResults): string {
  const out: string[] = [];
  const families = Object.keys(r.byFamily);
  for (const family of families) {
    const methods = r.byFamily[family]!;
    out.push(`${family} held out (${r.seeds} seeds x ${r.supportDraws} support draws): F1 mean±std [FPR]`);
    const header = ['method', ...r.K.map((k) => `K=${k}`)];
    const rows = [header];
    for (const [name, ks] of Object.entries(methods)) {
      rows.push([name, ...r.K.map((k) => {
        const m = ks[String(k)];
        return m ? `${fmt(m.f1.mean)}±${fmt(m.f1.std)} [${fmt(m.fpr.mean)}]` : '-';
      })]);
    }
    out.push(table(rows), '');
    out.push(`${family}: F1 at 50% prevalence mean / PR-AUC mean`);
    const rows50 = [header];
    for (const [name, ks] of Object.entries(methods)) {
      rows50.push([name, ...r.K.map((k) => {
        const m = ks[String(k)];
        return m ? `${fmt(m.f1At50.mean)} / ${fmt(m.prAuc.mean)}` : '-';
      })]);
    }
    out.push(table(rows50), '');
  }
  const t = r.target;
  out.push(`communication: rounds until ${t.metric} >= ${t.value} with ${t.family} held out at K = ${t.K}`);
  const rows = [['method', 'rounds', 'bytes uploaded per site']];
  for (const [name, c] of Object.entries(r.communication)) {
    rows.push([name, c.roundsToTarget === null ? 'not reached' : String(c.roundsToTarget), c.bytesUploadedPerSite === null ? '-' : String(c.bytesUploadedPerSite)]);
  }
  out.push(table(rows));
  return out.join('\n');
}
