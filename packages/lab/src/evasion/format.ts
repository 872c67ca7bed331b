import { f3, textTable } from '../attacks/format.js';
import type { EvasionResults } from './run.js';

const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;
const signed = (v: number): string => `${v >= 0 ? '+' : '-'}${Math.abs(v).toFixed(1)}`;

/** Detection rate against the budget, per start; then what adversarial meta-training costs and buys. */
export function formatEvasion(r: EvasionResults): string {
  const unit = r.norm === 'linf' ? 'L∞' : 'L2';
  const out = [
    `evasion: ${r.family} held out, K=${r.K}, ${r.method}, ${r.rounds} rounds, ${r.seeds} seed(s) x ${r.draws} draws`,
    `PGD (${r.steps} steps, from the flow and from a random start; ${unit} budget in standardised units) on ${r.controlled.length} attacker-controlled features, raw values kept >= 0`,
    "share of the held-out family's flows still flagged by the office's adapted detector",
    '',
  ];
  const header = ['start', 'clean F1', 'FPR', ...r.budgets.map((b) => `ε=${b}`)];
  const rows = Object.entries(r.starts).map(([kind, s]) => [kind, `${f3(s.cleanF1)}±${f3(s.cleanF1Std)}`, pct(s.cleanFpr), ...s.detection.map(pct)]);
  out.push(textTable(header, rows));
  if (r.adversarial !== undefined) {
    const a = r.adversarial;
    out.push(
      '',
      `adversarial meta-training (PGD ε=${a.epsilon}, ${a.steps} steps, against the adapted detector, added to every training episode's ${r.method === 'reptile' ? 'support' : 'query'}):`,
      `clean F1 cost ${a.cleanF1CostPoints.toFixed(1)} points; detection gain under attack (points): ${r.budgets.map((b, i) => `ε=${b} ${signed(a.detectionGainPoints[i]!)}`).join(', ')}`,
    );
  }
  return out.join('\n');
}
