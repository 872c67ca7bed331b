import { f3, textTable } from '../attacks/format.js';
import type { RecoveryScore } from './match.js';
import type { LeakageResults } from './run.js';

const pct = (v: number): string => `${(v * 100).toFixed(0)}%`;
const triple = (s: RecoveryScore): string => `${pct(s.rowMatch)} / ${pct(s.featureMatch)} / ${f3(s.mae)}`;

/** The leakage table: per defence and batch size, each attack against the marginal guess. */
export function formatLeakage(r: LeakageResults): string {
  const names: Record<string, string> = { none: 'undefended', reptile: `Reptile ${r.reptile.steps} steps`, dp: 'DP-SGD', secagg: 'secure agg.' };
  const out = [
    `gradient leakage: one site's update at the first round's parameters, MLP ${r.model.inputDim}->${r.model.hidden.join('->')}->1 ${r.model.activation}, ${r.trials} batch(es) per cell`,
    `each cell: flows recovered exactly (every feature within ${r.tol} standardised units) / feature values within it / mean abs. error`,
    `DP-SGD: clip ${r.dp.clipNorm}, noise multiplier ${r.dp.noiseMultiplier}; ε of this one release at δ=${r.dp.delta}: ${Object.entries(r.dp.epsilonOneRound).map(([B, e]) => `B=${B} ${e.toFixed(2)}`).join(', ')}`,
    `secure aggregation: the coordinator sees the sum of ${r.secaggSites} sites' updates (the victim's among them)`,
    '',
  ];
  const rows: string[][] = [];
  for (const d of r.defences) {
    for (const B of r.batchSizes) {
      const c = r.cells[d]?.[String(B)];
      if (c === undefined) continue;
      rows.push([names[d] ?? d, String(B), triple(c.analytic), triple(c.dlg), triple(c.baseline), pct(c.labels)]);
    }
  }
  out.push(textTable(['attacker sees', 'B', 'analytic (1st layer)', `DLG (${r.dlg.iterations} Adam steps)`, 'marginal guess', 'labels'], rows));
  return out.join('\n');
}
