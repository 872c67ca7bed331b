// The table of what was injected and what held. Each fault test appends its row, once its assertions have passed,
// to the JSON-lines file named by FEDMETA_FAULTS_REPORT; scripts/run-faults.mjs and scripts/soak.ts print the
// rows as one table when the tests are done. Run on its own (no report file), a test prints its row to stderr.
import { appendFileSync, readFileSync } from 'node:fs';

export const REPORT_ENV = 'FEDMETA_FAULTS_REPORT';

export interface FaultRow {
  /** What was attacked, e.g. "crash: aggregate". */
  scenario: string;
  /** What was injected, with its count. */
  injected: string;
  /** The property that held, as checked. */
  held: string;
  /** Measured figures: counts, rates, latencies. */
  figures: string;
}

export function recordRow(row: FaultRow): void {
  const file = process.env[REPORT_ENV];
  const line = `${JSON.stringify(row)}\n`;
  if (file) appendFileSync(file, line);
  else process.stderr.write(`fault row: ${line}`);
}

export function readRows(file: string): FaultRow[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const rows: FaultRow[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      rows.push(JSON.parse(line) as FaultRow);
    } catch {
      // a torn last line of a test process that was killed
    }
  }
  return rows;
}

const COLUMNS: { key: keyof FaultRow; title: string; width: number }[] = [
  { key: 'scenario', title: 'Scenario', width: 26 },
  { key: 'injected', title: 'Injected', width: 44 },
  { key: 'held', title: 'What held', width: 52 },
  { key: 'figures', title: 'Figures', width: 60 },
];

/** Words wrapped to `width` columns; a word longer than that is cut. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let cur = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    const w = word.length > width ? word.slice(0, width) : word;
    if (cur === '') cur = w;
    else if (cur.length + 1 + w.length <= width) cur += ` ${w}`;
    else {
      lines.push(cur);
      cur = w;
    }
  }
  if (cur !== '') lines.push(cur);
  return lines.length > 0 ? lines : [''];
}

/** A plain-text table with wrapped cells, readable in a CI log. */
export function formatTable(rows: readonly FaultRow[], title = 'fault injection: what was injected and what held'): string {
  const sep = `+${COLUMNS.map((c) => '-'.repeat(c.width + 2)).join('+')}+`;
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd((COLUMNS[i] as { width: number }).width)).join(' | ')} |`;
  const out = [title, sep, line(COLUMNS.map((c) => c.title)), sep.replace(/-/g, '=')];
  for (const r of rows) {
    const wrapped = COLUMNS.map((c) => wrap(String(r[c.key] ?? ''), c.width));
    const height = Math.max(...wrapped.map((w) => w.length));
    for (let i = 0; i < height; i++) out.push(line(wrapped.map((w) => w[i] ?? '')));
    out.push(sep);
  }
  if (rows.length === 0) out.push('(no rows: no fault test completed)');
  return out.join('\n');
}

/** The q-quantile (0..1) of `values` by nearest rank; NaN for none. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
export const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
