import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EvalResults } from '../eval/results.js';
import { METHOD_NOTES, renderReport } from '../report/index.js';
import type { RoundPoint, LearningCurve, ReportInput } from '../report/index.js';
import type { FederationRun } from './federation-run.js';
import type { DemoPlan } from './plan.js';
import type { DemoSettings } from './settings.js';
import type { OfficeFile } from './split-sites.js';

export interface DemoReportData {
  results: EvalResults;
  federation: FederationRun;
  plan: DemoPlan;
  settings: DemoSettings;
  offices: OfficeFile[];
  wallSeconds: number;
}

/**
 * The federation's learning curve from the coordinator's round history. A round's metrics describe the version
 * the offices were offered (they adapt it and score it), so each point sits at that version.
 */
export function federationCurve(run: FederationRun, label: string): LearningCurve {
  const points: RoundPoint[] = run.history
    .filter((r) => r.status === 'committed')
    .map((r) => ({
      round: r.fromVersion,
      queryLoss: r.meanQueryLoss ?? null,
      valF1: r.meanValF1 ?? null,
      sites: Object.fromEntries(r.sites.filter((s) => s.valF1 !== undefined).map((s) => [s.siteId, s.valF1!])),
    }));
  return { label, points, releasedRound: run.released };
}

function thresholdFact(rule: unknown): string {
  return rule === 'support' ? 'Each detector\u2019s alert threshold is chosen on the K shots.' : `Alert threshold ${String(rule ?? 0.5)}.`;
}

const f = (v: number): string => v.toFixed(3).replace(/^0\./, '.').replace(/^-0\./, '-.');

/**
 * Plain statements of who won at each K, meta-learned start against the usual federated model and against the
 * best of everything else, including where it lost.
 */
export function findings(results: EvalResults, meta: string): string[] {
  const out: string[] = [];
  for (const K of results.K) {
    const at = (m: string) => results.methods[m]?.[String(K)];
    const mine = at(meta);
    if (mine === undefined) continue;
    const others = Object.keys(results.methods).filter((m) => m !== meta && at(m) !== undefined);
    const best = others.reduce<string | null>((b, m) => (b === null || at(m)!.f1.mean > at(b)!.f1.mean ? m : b), null);
    const fedavg = at('fedavg+ft');
    let line = `K = ${K}: ${meta} F1 ${f(mine.f1.mean)} (FPR ${f(mine.fpr.mean)})`;
    if (fedavg !== undefined) line += `, ${mine.f1.mean - fedavg.f1.mean >= 0 ? '+' : ''}${f(mine.f1.mean - fedavg.f1.mean)} against fedavg+ft (${f(fedavg.f1.mean)})`;
    if (best !== null) {
      const b = at(best)!;
      line +=
        mine.f1.mean >= b.f1.mean
          ? `; ahead of every other method (next: ${best}, ${f(b.f1.mean)}).`
          : `; ${best} did better (${f(b.f1.mean)}): meta-learning did not win here.`;
    }
    out.push(line);
  }
  return out;
}

/** Writes out/demo/report.html (atomically: a browser never opens half a page). */
export async function writeDemoReport(outDir: string, d: DemoReportData): Promise<string> {
  const s = d.settings;
  const meta = s.algorithm;
  const trainOffices = d.offices.filter((o) => o.role === 'site');
  const held = d.offices.find((o) => o.role === 'held-out');
  const adaptation = d.results.adaptation[meta];
  const input: ReportInput = {
    title: `fedmeta demo: ${d.plan.evalFamily} at a branch office no one trained on`,
    results: d.results,
    curves: [federationCurve(d.federation, `${meta} over ${trainOffices.length} offices`)],
    facts: [
      `Training offices (one agent process each, socket.io over loopback): ${trainOffices.map((o) => `${o.name} (${Object.keys(o.attacks).join(', ')}; ${o.benign} benign)`).join('; ')}.`,
      `Held-out office: ${held ? `${held.name}, ${Object.entries(held.attacks).map(([k, v]) => `${v} ${k}`).join(', ')} flows and ${held.benign} benign flows of its own` : d.plan.evalFamily}. Validation office (adaptation settings only): ${d.plan.validationFamily}.`,
      `Model ${d.federation.spec.inputDim}→${s.hidden.join('→')}→1 (${s.activation}), ${d.federation.params.get(d.federation.released)?.length ?? 0} parameters. ${s.rounds} rounds of ${meta}: ${s.local.episodes} episodes × ${s.local.innerSteps} inner steps (lr ${s.local.innerLr}) per office per round, Adam outer lr ${s.outerLr}.`,
      `Released version ${d.federation.released} of ${d.federation.lastVersion} (best validation F1 the offices reported). Its adaptation at the held-out office, chosen on the validation office: ${adaptation ? Object.entries(adaptation).map(([k, a]) => `K=${k}: ${a.steps} steps, lr ${a.lr ?? 'learned'}`).join('; ') : 'n/a'}.`,
      `Baselines computed in-process on the same offices and the same support draws: ${Object.keys(d.results.methods).filter((m) => m !== meta).join(', ')}. fedavg has the same rounds and local work as the federation.`,
      `K labelled flows of each class (K benign + K ${d.plan.evalFamily}) from the held-out office; ${d.results.supportDraws} support draws per K, 1 training seed; the rest of the office's flows are the query. ${thresholdFact(d.results.settings['threshold'])}`,
      `Wall time ${d.wallSeconds.toFixed(0)} s. Class balance of the sample is artificial: read F1 at 50% prevalence and the false-positive rate beside F1.`,
    ],
    findings: findings(d.results, meta),
    methodNotes: { [meta]: `${METHOD_NOTES[meta] ?? meta}; trained by the demo's federation of processes (coordinator + one agent per office)` },
    generatedAt: new Date().toISOString(),
  };
  const file = join(outDir, 'report.html');
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, renderReport(input));
  await rename(tmp, file);
  return file;
}
