import { PALETTE, barChart, escapeXml, lineChart, type Series } from './svg.js';
import type { RoundPoint, LearningCurve, MetricsAtK, ReportInput, ResultsLike } from './types.js';

/** What each method of the harness is, for readers of the report. */
export const METHOD_NOTES: Record<string, string> = {
  scratch: 'random start, fine-tuned on the K shots',
  'local-rf': 'random forest trained on the K shots only',
  'local-lr': 'logistic regression trained on the K shots only',
  fedavg: 'FedAvg global model, no fine-tuning',
  'fedavg+ft': 'FedAvg global model, fine-tuned on the K shots',
  'centralized+ft': 'model trained on the pooled data of all offices (privacy-violating upper bound), fine-tuned',
  reptile: 'Reptile meta-learned start, adapted on the K shots',
  fomaml: 'first-order MAML meta-learned start, adapted on the K shots',
  maml: 'second-order MAML meta-learned start, adapted on the K shots',
};

type MetricName = keyof MetricsAtK;

const METRIC_LABEL: Record<MetricName, string> = {
  f1: 'F1',
  f1At50: 'F1 at 50% prevalence',
  detectionRate: 'detection rate',
  fpr: 'false-positive rate',
  prAuc: 'PR-AUC',
};

/** Metrics where lower is better. */
const LOWER_IS_BETTER = new Set<MetricName>(['fpr']);

export function methodNames(results: ResultsLike): string[] {
  return Object.keys(results.methods);
}

/** The K values present in any method, ascending. */
export function kValues(results: ResultsLike): number[] {
  const ks = new Set<number>();
  for (const byK of Object.values(results.methods)) for (const k of Object.keys(byK)) ks.add(Number(k));
  return [...ks].filter(Number.isFinite).sort((a, b) => a - b);
}

function colorOf(methods: readonly string[], m: string): string {
  return PALETTE[Math.max(0, methods.indexOf(m)) % PALETTE.length]!;
}

const fmt = (v: number, digits = 3): string => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${Math.round(n)} B`;
}

function metricChart(results: ResultsLike, metric: MetricName, ks: number[]): string {
  const methods = methodNames(results);
  const series: Series[] = methods.map((m) => ({
    name: m,
    color: colorOf(methods, m),
    points: ks.map((k) => {
      const v = results.methods[m]?.[String(k)]?.[metric];
      return v === undefined ? { x: k, y: null } : { x: k, y: v.mean, err: v.std };
    }),
  }));
  const label = METRIC_LABEL[metric];
  return lineChart({
    title: `${label} against K (mean ± std over draws)`,
    xLabel: 'K labelled flows from the held-out office',
    yLabel: label,
    series,
    categoricalX: ks,
    yDomain: [0, 1],
  });
}

function curveCharts(c: LearningCurve): string {
  const mark = c.releasedRound !== undefined && c.releasedRound !== null ? [{ x: c.releasedRound, label: 'released' }] : [];
  const pick = (f: (p: RoundPoint) => number | null | undefined) => c.points.map((p) => ({ x: p.round, y: f(p) ?? null }));
  const has = (f: (p: RoundPoint) => number | null | undefined) => c.points.some((p) => typeof f(p) === 'number');
  const loss = lineChart({
    title: `${c.label}: mean query loss per round`,
    xLabel: 'round',
    yLabel: 'query loss after adaptation',
    series: [{ name: 'mean over sites', points: pick((p) => p.queryLoss), color: PALETTE[0]! }],
    markers: mark,
  });
  const f1Series: Series[] = [];
  if (has((p) => p.valF1)) f1Series.push({ name: 'sites\u2019 validation F1 (mean)', points: pick((p) => p.valF1), color: PALETTE[2]! });
  const siteNames = [...new Set(c.points.flatMap((p) => Object.keys(p.sites ?? {})))].sort();
  siteNames.forEach((s, i) => {
    f1Series.push({ name: s, points: pick((p) => p.sites?.[s]), color: PALETTE[(i + 3) % PALETTE.length]!, dashed: true, dots: false });
  });
  // Validation scores often sit close to 1: start the axis a little under the lowest one, not at 0.
  const lowest = Math.min(1, ...f1Series.flatMap((s) => s.points.flatMap((p) => (p.y === null ? [] : [p.y]))));
  const floor = Math.max(0, Math.floor((lowest - 0.05) * 10) / 10);
  const f1 =
    f1Series.length === 0
      ? ''
      : lineChart({ title: `${c.label}: offices\u2019 validation F1 per round`, xLabel: 'round', yLabel: 'F1', series: f1Series, yDomain: [floor, 1], markers: mark });
  return `<div class="charts">${loss}${f1}</div>`;
}

/** The held-out score at the target K after each round, one line per federated method. */
function heldOutCurves(results: ResultsLike): string {
  const curves = results.curves ?? {};
  const names = Object.keys(curves).filter((m) => (curves[m]?.length ?? 0) > 0);
  if (names.length === 0) return '';
  const methods = methodNames(results);
  const t = results.target;
  const metric = t?.metric ?? 'f1';
  const label = metric === 'f1At50' ? 'F1 at 50% prevalence' : 'F1';
  return lineChart({
    title: `Held-out office: ${label}${t ? ` at K = ${t.K}` : ''} after each round`,
    xLabel: 'round (version adapted at the held-out office)',
    yLabel: label,
    series: names.map((m) => ({ name: m, color: colorOf(methods, m), points: curves[m]!.map((p) => ({ x: p.round, y: p[metric] })) })),
    yDomain: [0, 1],
    levels: t ? [{ y: t.value, label: `target ${t.value}` }] : [],
    width: 1092,
  });
}

function resultsTable(results: ResultsLike, ks: number[]): string {
  const methods = methodNames(results);
  const metrics: MetricName[] = ['f1', 'f1At50', 'detectionRate', 'fpr', 'prAuc'];
  const best = new Map<string, number>();
  for (const k of ks) {
    for (const metric of metrics) {
      const vals = methods.map((m) => results.methods[m]?.[String(k)]?.[metric]?.mean).filter((v): v is number => v !== undefined && Number.isFinite(v));
      if (vals.length > 0) best.set(`${k}/${metric}`, LOWER_IS_BETTER.has(metric) ? Math.min(...vals) : Math.max(...vals));
    }
  }
  let rows = '';
  for (const k of ks) {
    methods.forEach((m, i) => {
      const r = results.methods[m]?.[String(k)];
      const cells = metrics
        .map((metric) => {
          const v = r?.[metric];
          if (v === undefined) return '<td class="num muted">n/a</td>';
          const top = best.get(`${k}/${metric}`) === v.mean ? ' best' : '';
          const std = metric === 'f1' || metric === 'f1At50' ? ` <span class="std">± ${fmt(v.std)}</span>` : '';
          return `<td class="num${top}">${fmt(v.mean)}${std}</td>`;
        })
        .join('');
      const kCell = i === 0 ? `<th rowspan="${methods.length}" class="k">K = ${k}</th>` : '';
      rows += `<tr${i === 0 ? ' class="group"' : ''}>${kCell}<td><span class="swatch" style="background:${colorOf(methods, m)}"></span>${escapeXml(m)}</td>${cells}</tr>`;
    });
  }
  const head = metrics.map((metric) => `<th>${METRIC_LABEL[metric]}</th>`).join('');
  return `<table class="results"><thead><tr><th>K</th><th>method</th>${head}</tr></thead><tbody>${rows}</tbody></table>`;
}

function communicationSection(results: ResultsLike): string {
  const methods = methodNames(results);
  const entries = Object.entries(results.communication);
  const t = results.target;
  const target = t === undefined ? 'target F1' : `target ${t.metric === 'f1At50' ? 'F1 at 50% prevalence' : 'F1'}, K = ${t.K}`;
  if (entries.length === 0) return '<p class="muted">No communication figures in these results.</p>';
  // The axis counts in one unit (KiB or MiB) so that its ticks are round numbers of it.
  const largest = Math.max(0, ...entries.map(([, c]) => (c.roundsToTarget === null ? 0 : (c.bytesUploadedPerSite ?? 0))));
  const unit = largest >= 1024 * 1024 ? { div: 1024 * 1024, name: 'MiB' } : { div: 1024, name: 'KiB' };
  const chart = barChart({
    title: 'Bytes uploaded per site until the target was reached',
    xLabel: `${unit.name} uploaded per site`,
    bars: entries.map(([m, c]) => ({
      label: m,
      value: c.roundsToTarget === null || c.bytesUploadedPerSite === null ? null : c.bytesUploadedPerSite / unit.div,
      note:
        c.roundsToTarget === null
          ? 'target not reached'
          : c.roundsToTarget === 0
            ? 'reached before any round'
            : `${formatBytes(c.bytesUploadedPerSite ?? 0)} in ${c.roundsToTarget} round${c.roundsToTarget === 1 ? '' : 's'}`,
      color: colorOf(methods, m),
    })),
  });
  const rows = entries
    .map(
      ([m, c]) =>
        `<tr><td>${escapeXml(m)}</td><td class="num">${fmt(c.targetF1, 2)}</td><td class="num">${c.roundsToTarget ?? 'not reached'}</td>` +
        `<td class="num">${c.bytesUploadedPerSite === null ? 'n/a' : formatBytes(c.bytesUploadedPerSite)}</td></tr>`,
    )
    .join('');
  const table = `<table class="results"><thead><tr><th>method</th><th>${escapeXml(target)}</th><th>rounds to target</th><th>uploaded per site</th></tr></thead><tbody>${rows}</tbody></table>`;
  return `<div class="charts">${chart}</div>${table}`;
}

const STYLE = `
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1d2330;margin:0;background:#f6f7f9}
main{max-width:1160px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #e2e5ea;padding-bottom:4px}
.meta{color:#5a6270;margin:0 0 12px}.muted{color:#8a919c}
ul.facts{margin:8px 0;padding-left:20px}ul.facts li{margin:2px 0}
.findings p{background:#f3f6fb;border-left:3px solid #1f77b4;padding:8px 12px;margin:8px 0}
.charts{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0}
svg.chart{background:#fff;border:1px solid #e2e5ea;border-radius:4px;font-family:inherit}
.chart-title{font-size:13px;font-weight:600;fill:#1d2330}.tick{font-size:11px;fill:#5a6270}.legend{font-size:11.5px;fill:#1d2330}
.axis-label{font-size:12px;fill:#3a4250}.value{font-size:11.5px;fill:#1d2330}.value.muted{fill:#8a919c;font-style:italic}
.grid{stroke:#eceef2;stroke-width:1}.axis{stroke:#8a919c}.frame{fill:none;stroke:#c9cdd4}
.marker{stroke:#444;stroke-dasharray:3 3}.marker-label{font-size:11px;fill:#444}
table.results{border-collapse:collapse;margin:12px 0;font-size:13px}
table.results th,table.results td{border-bottom:1px solid #e8eaee;padding:4px 10px;text-align:left}
table.results thead th{background:#f3f4f6;font-weight:600}
table.results tr.group td,table.results tr.group th{border-top:2px solid #c9cdd4}
th.k{vertical-align:top;white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.best{font-weight:700}.std{color:#8a919c;font-size:11.5px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:baseline}
dl.methods{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px}dl.methods dt{font-weight:600}dl.methods dd{margin:0}
`;

/**
 * The whole report as one HTML page: inline CSS and inline SVG, no script, no external asset, so it opens
 * the same from a file, an attachment or an air-gapped SOC workstation.
 */
export function renderReport(input: ReportInput): string {
  const { results } = input;
  const ks = kValues(results);
  const methods = methodNames(results);
  const seeds = Array.isArray(results.seeds) ? results.seeds.length : results.seeds;
  const facts = (input.facts ?? []).map((f) => `<li>${escapeXml(f)}</li>`).join('');
  const findings = (input.findings ?? []).map((f) => `<p>${escapeXml(f)}</p>`).join('');
  const heldOut = heldOutCurves(results);
  const curves = input.curves.length === 0 ? '<p class="muted">No learning curve was recorded.</p>' : input.curves.map(curveCharts).join('');
  const glossary = methods
    .map((m) => `<dt><span class="swatch" style="background:${colorOf(methods, m)}"></span>${escapeXml(m)}</dt><dd>${escapeXml(input.methodNotes?.[m] ?? METHOD_NOTES[m] ?? '')}</dd>`)
    .join('');
  const kCharts = ks.length === 0 ? '<p class="muted">No few-shot results.</p>' : `<div class="charts">${(['f1', 'f1At50', 'fpr'] as const).map((m) => metricChart(results, m, ks)).join('')}</div>`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(input.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${escapeXml(input.title)}</h1>
<p class="meta">Dataset ${escapeXml(results.dataset)} · held-out ${escapeXml(results.evalFamilies.join(', '))} · ${seeds} seed${seeds === 1 ? '' : 's'} · generated ${escapeXml(input.generatedAt)}</p>
${facts ? `<ul class="facts">${facts}</ul>` : ''}
${findings ? `<section class="findings">${findings}</section>` : ''}
<h2>Learning curves</h2>
${curves}
${heldOut ? `<div class="charts">${heldOut}</div>` : ''}
<h2>Detection against K</h2>
${kCharts}
${resultsTable(results, ks)}
<h2>Communication</h2>
${communicationSection(results)}
<h2>Methods</h2>
<dl class="methods">${glossary}</dl>
</main>
</body>
</html>
`;
}
