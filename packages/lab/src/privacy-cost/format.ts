import { f3, textTable } from '../attacks/format.js';
import type { PrivacyCostResults, PrivacyCostRow } from './run.js';

/** ε to three significant figures (large ones whole), '-' where there is no guarantee. */
function epsilonText(e: number | null): string {
  if (e === null) return '-';
  if (!Number.isFinite(e)) return '∞';
  return e >= 1000 ? e.toExponential(2) : e >= 100 ? e.toFixed(0) : e.toPrecision(3);
}

const points = (v: number | null): string => (v === null ? '' : `${v >= 0 ? '-' : '+'}${Math.abs(v).toFixed(1)}`);

function cells(r: PrivacyCostRow): string[] {
  return [
    r.label,
    `${f3(r.f1)}±${f3(r.f1Std)}`,
    points(r.pointsLost),
    epsilonText(r.epsilon),
    r.delta === null ? '-' : String(r.delta),
    r.clipNorm === null ? '-' : r.clipNorm.toPrecision(3),
    r.samplingRate === null ? '-' : r.samplingRate.toPrecision(2),
    r.setting === 'init' ? '-' : r.seconds.toFixed(0),
  ];
}

/** The printed table: per held-out family, every setting's F1, the points DP costs, ε at δ, clip and time. */
export function formatPrivacyCost(r: PrivacyCostResults): string {
  const out = [
    `what differential privacy costs: ${r.method}, ${r.sites} simulated sites (${r.sampled} sampled per round, q = ${r.samplingRate}), ${r.rounds} rounds, K = ${r.K}, ${r.seeds} seed(s) x ${r.draws} support draws`,
    'held-out F1 after adaptation (mean ± std of the per-seed means); points = F1 points lost against no DP',
    `central DP: site-level (each site's whole update clipped to the median honest update norm at the initial parameters, Gaussian noise on the sum), ε at δ = ${r.delta}, q = sites sampled / sites`,
  ];
  if (r.local) {
    out.push(`local DP-SGD: record-level (each flow's gradient clipped to ${r.local.clipNorm}, noise in every inner and query step), ε of the worst site at δ = ${r.local.delta}, q = flows drawn per class / rows of that site's smallest class`);
  }
  out.push("ε is what the round engine's accountant reports after the last round (the largest over seeds), q its sampling rate; seconds = one training");
  for (const family of r.families) {
    const rows = r.rows[family] ?? [];
    out.push('', `${family} held out`, textTable(['setting', 'F1', 'points', 'ε', 'δ', 'clip', 'q', 'seconds'], rows.map(cells)));
  }
  out.push('', `wall time ${(r.wallSeconds / 60).toFixed(1)} min`);
  return out.join('\n');
}
