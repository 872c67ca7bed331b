import type { AttackMatrixResults, MatrixCell } from './matrix.js';

/** Left-aligned first column, right-aligned others, two spaces apart. */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  return all.map((r) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join('  ')).join('\n');
}

/** A score in [0, 1] as .xxx. */
export const f3 = (v: number): string => (Number.isFinite(v) ? v.toFixed(3).replace(/^0\./, '.').replace(/^-0\./, '-.') : '-');
const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;
/** F1 points lost (shown with a minus) or gained (plus). */
const points = (lost: number): string => `${lost >= 0 ? '-' : '+'}${Math.abs(lost).toFixed(1)}`;

/** The printed matrix: F1 with the points lost against the clean mean run, per fraction; then the backdoor. */
export function formatAttackMatrix(r: AttackMatrixResults): string {
  const out: string[] = [];
  const ref = r.reference;
  out.push(
    `${r.family} held out, K=${r.K}, ${r.method}, ${r.sites} simulated sites, ${r.rounds} rounds, ${r.seeds} seed(s) x ${r.draws} support draws`,
    `held-out F1 after adaptation; (x.x) = F1 points against the clean run with the plain mean (F1 ${f3(ref.f1)})`,
  );
  const cellText = (c: MatrixCell): string => `${f3(c.f1)} (${points((ref.f1 - c.f1) * 100)})`;
  for (const fr of r.fractions) {
    const k = String(fr);
    out.push('', `${Math.round(fr * 100)}% malicious (${r.malicious[k] ?? '?'} of ${r.sites} sites)`);
    const rows: string[][] = [['clean', ...r.aggregators.map((a) => cellText(r.clean[a]![k]!))]];
    for (const atk of r.attacks) rows.push([atk, ...r.aggregators.map((a) => cellText(r.attacked[atk]![a]![k]!))]);
    out.push(textTable(['attack', ...r.aggregators], rows));
  }
  if (Object.keys(r.backdoor).length > 0) {
    out.push('', 'backdoor: triggered held-out attack flows scored benign after adaptation [same aggregator, clean run; plain miss rate under the backdoor]');
    const rows = r.fractions.map((fr) => {
      const k = String(fr);
      return [`${Math.round(fr * 100)}% malicious`, ...r.aggregators.map((a) => `${pct(r.backdoor[a]![k]!.triggeredBenign)} [${pct(r.clean[a]![k]!.triggeredBenign)}; ${pct(r.backdoor[a]![k]!.plainMiss)}]`)];
    });
    out.push(textTable(['', ...r.aggregators], rows));
  }
  out.push('', 'goal at 20%: the best aggregator loses at most 5 F1 points on every attack, and the backdoor succeeds on < 10% of triggered flows');
  for (const fr of r.fractions) {
    const s = r.summary[String(fr)]!;
    const bd = s.backdoorSuccess === null ? '' : `, backdoor success ${pct(s.backdoorSuccess)}`;
    out.push(`${Math.round(fr * 100)}%: best aggregator ${s.bestAggregator}, worst loss ${s.worstDropPoints.toFixed(1)} points (${s.worstAttack})${bd}`);
  }
  return out.join('\n');
}
