import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatResultsTable, lineChart, niceTicks, renderReport } from '../src/report/index.js';
import type { MetricsAtK, ReportInput, ResultsLike } from '../src/report/index.js';

const at = (f1: number, fpr: number): MetricsAtK => ({
  f1: { mean: f1, std: 0.02 },
  f1At50: { mean: f1 - 0.01, std: 0.03 },
  detectionRate: { mean: f1 + 0.01, std: 0.01 },
  fpr: { mean: fpr, std: 0.01 },
  prAuc: { mean: f1, std: 0.02 },
});

const results: ResultsLike = {
  dataset: 'cic-ids2017 sample',
  evalFamilies: ['Botnet'],
  seeds: [1, 2, 3],
  methods: {
    scratch: { '1': at(0.61, 0.3), '5': at(0.8, 0.12), '20': at(0.9, 0.05) },
    'local-rf': { '1': at(0.65, 0.25), '5': at(0.83, 0.1), '20': at(0.97, 0.02) },
    'fedavg+ft': { '1': at(0.8, 0.1), '5': at(0.86, 0.08), '20': at(0.92, 0.06) },
    'fomaml <fed & "co">': { '1': at(0.84, 0.09), '5': at(0.9, 0.05), '20': at(0.93, 0.05) },
  },
  communication: {
    'fedavg+ft': { targetF1: 0.8, roundsToTarget: 12, bytesUploadedPerSite: 12 * 4 * 9000 },
    'fomaml <fed & "co">': { targetF1: 0.8, roundsToTarget: null, bytesUploadedPerSite: null },
  },
};

const input: ReportInput = {
  title: 'fedmeta demo',
  results,
  curves: [
    {
      label: 'fomaml over 4 offices',
      releasedRound: 3,
      points: [0, 1, 2, 3, 4].map((r) => ({
        round: r,
        queryLoss: 0.7 - r * 0.1,
        valF1: 0.5 + r * 0.1,
        sites: { 'office-a': 0.5 + r * 0.08, 'office-b': 0.55 + r * 0.07 },
      })),
    },
  ],
  facts: ['4 offices, 5 rounds'],
  findings: ['Meta-learning did not beat the random forest at K = 20.'],
  generatedAt: '2024-01-01T00:00:00.000Z',
};

const VOID = new Set(['meta', 'br', 'hr', 'img', 'link', 'input']);

/** Checks that every element is closed in order (the SVG must be well-formed XML to render inline). */
function assertBalanced(html: string): void {
  const stack: string[] = [];
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:[^>"']|"[^"]*"|'[^']*')*?)(\/?)>/g;
  for (const m of html.matchAll(tag)) {
    const [, close, name, , selfClose] = m;
    const n = name!.toLowerCase();
    if (selfClose === '/' || (close === '' && VOID.has(n))) continue;
    if (close === '') stack.push(n);
    else assert.equal(stack.pop(), n, `</${n}> closes the wrong element`);
  }
  assert.deepEqual(stack, [], 'every element is closed');
}

test('the report is one self-contained, well-formed page with the charts and every method', () => {
  const html = renderReport(input);
  assert.match(html, /^<!DOCTYPE html>/);
  assertBalanced(html);
  // Learning curves (loss and F1), F1 / F1@50 / FPR against K, and the communication bars.
  const svgs = html.match(/<svg[\s>]/g) ?? [];
  assert.equal(svgs.length, 6);
  for (const title of ['mean query loss per round', 'F1 per round', 'F1 against K', 'F1 at 50% prevalence against K', 'false-positive rate against K', 'Bytes uploaded per site']) {
    assert.ok(html.includes(title), `a chart titled "${title}"`);
  }
  // Every method appears, escaped, and nothing raw from the data reaches the markup.
  for (const m of ['scratch', 'local-rf', 'fedavg+ft']) assert.ok(html.includes(`>${m}<`), `method ${m} is shown`);
  assert.ok(html.includes('fomaml &lt;fed &amp; &quot;co&quot;&gt;'));
  assert.ok(!html.includes('<fed &'), 'data text is escaped');
  // Self-contained: no script, no external resource.
  assert.ok(!/<script/i.test(html));
  assert.ok(!/(src|href)\s*=/i.test(html));
  const urls = [...html.matchAll(/https?:\/\/[^\s"'<)]+/g)].map((m) => m[0]);
  assert.deepEqual([...new Set(urls)], ['http://www.w3.org/2000/svg']);
  // The numbers of the table: the best F1 at K = 20 (the random forest) is in bold.
  assert.match(html, /<td class="num best">0\.970/);
  assert.ok(html.includes('target not reached'));
  assert.ok(html.includes('Meta-learning did not beat the random forest at K = 20.'));
  // One series per method in the K charts, each a path.
  const kChart = html.slice(html.indexOf('F1 against K'), html.indexOf('</svg>', html.indexOf('F1 against K')));
  assert.equal((kChart.match(/<path /g) ?? []).length, 4);
});

test('a curve with gaps breaks its line instead of joining across the gap', () => {
  const svg = lineChart({
    title: 't',
    xLabel: 'x',
    yLabel: 'y',
    series: [{ name: 's', points: [{ x: 0, y: 1 }, { x: 1, y: null }, { x: 2, y: 2 }, { x: 3, y: 3 }] }],
  });
  const d = /<path d="([^"]*)"/.exec(svg)![1]!;
  assert.equal((d.match(/M/g) ?? []).length, 2, 'two pen-down moves around the gap');
  assert.equal((d.match(/L/g) ?? []).length, 1);
});

test('axis ticks are round numbers covering the range', () => {
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0, 100, 4), [0, 25, 50, 75, 100]);
});

test('the terminal table has a row per method and a column group per K, best F1 starred', () => {
  const text = formatResultsTable(results);
  const lines = text.split('\n');
  assert.match(lines[0]!, /K=1\s+K=5\s+K=20/);
  for (const m of Object.keys(results.methods)) assert.ok(lines.some((l) => l.startsWith(m)), `a row for ${m}`);
  const rf = lines.find((l) => l.startsWith('local-rf'))!;
  assert.match(rf, /\.970\*/);
  const fomaml = lines.find((l) => l.startsWith('fomaml'))!;
  assert.match(fomaml, /\.840\*±\.02/);
});
