import { kValues, methodNames } from './html.js';
import type { ResultsLike } from './types.js';

const num = (v: number | undefined, digits = 3): string => (v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits).replace(/^0\./, '.'));

/**
 * The detection results as a plain-text table for a terminal: one row per method, one column group per K,
 * with F1 (± std over draws), F1 at 50% prevalence and the false-positive rate. The best F1 at each K is
 * starred.
 */
export function formatResultsTable(results: ResultsLike): string {
  const ks = kValues(results);
  const methods = methodNames(results);
  const nameW = Math.max(8, ...methods.map((m) => m.length)) + 2;
  const cellW = 25;
  const best = new Map<number, number>();
  for (const k of ks) {
    const f1s = methods.map((m) => results.methods[m]?.[String(k)]?.f1.mean).filter((v): v is number => v !== undefined && Number.isFinite(v));
    if (f1s.length > 0) best.set(k, Math.max(...f1s));
  }
  const lines: string[] = [];
  lines.push('method'.padEnd(nameW) + ks.map((k) => `K=${k}`.padEnd(cellW)).join(''));
  lines.push(''.padEnd(nameW) + ks.map(() => 'F1 ±std    F1@50  FPR'.padEnd(cellW)).join(''));
  lines.push('-'.repeat(nameW + cellW * ks.length - 4));
  for (const m of methods) {
    let row = m.padEnd(nameW);
    for (const k of ks) {
      const r = results.methods[m]?.[String(k)];
      if (r === undefined) {
        row += 'n/a'.padEnd(cellW);
        continue;
      }
      const star = best.get(k) === r.f1.mean ? '*' : ' ';
      const f1 = `${num(r.f1.mean)}${star}±${num(r.f1.std, 2)}`;
      row += `${f1.padEnd(11)}${num(r.f1At50.mean).padEnd(7)}${num(r.fpr.mean)}`.padEnd(cellW);
    }
    lines.push(row.trimEnd());
  }
  lines.push(`* best F1 at that K. F1@50 = F1 at 50% prevalence, 2·DR / (1 + DR + FPR); FPR = false-positive rate.`);
  return lines.join('\n');
}
