import type { SiteView } from '../admin/admin-api.js';
import type { RoundJobStatus, RoundSummary } from '../admin/round-runner.js';
import type { RoundInFlight } from '../engine/types.js';
import type { PrivacyView } from '../metrics/privacy.js';
import type { RoundRecord } from '../state/types.js';

/** Human-readable renderings of the admin API's answers; `--json` prints the answers themselves. */

export interface StatusView {
  coordinatorVersion: string;
  uptimeSeconds: number;
  ready: boolean;
  version: number | null;
  nextRound: number | null;
  roundInFlight: RoundInFlight | null;
  sitesOnline: string[];
  lastRound: RoundRecord | null;
  released: number | null;
  releases: number[];
  rounds: RoundJobStatus;
  /** Absent from coordinators that predate differential privacy. */
  privacy?: PrivacyView;
  rejected: Record<string, number>;
}

export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

function counts(r: Record<string, number>): string {
  const parts = Object.entries(r)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([code, n]) => `${code.replace(/^FEDMETA_ERR_/, '').toLowerCase()} ${n}`);
  return parts.length ? parts.join(', ') : 'none';
}

const num = (v: number | undefined, digits = 4): string => (v === undefined ? 'n/a' : v.toFixed(digits));

export function formatRecord(r: RoundRecord | RoundSummary): string {
  const sampled = typeof r.sampled === 'number' ? r.sampled : r.sampled.length;
  const head = `round ${r.round} ${r.status}` + (r.status === 'committed' ? ` (version ${r.fromVersion} -> ${r.fromVersion + 1})` : '');
  const body = `${r.accepted} of ${sampled} sampled sites accepted, mean query loss ${num(r.meanQueryLoss)}, mean validation F1 ${num(r.meanValF1, 3)}, rejected: ${counts(r.rejected)}`;
  const reason = 'reason' in r && r.reason ? `; ${r.reason}` : '';
  const eps = 'epsilon' in r ? r.epsilon : 'privacy' in r ? r.privacy?.epsilon : undefined;
  const spent = eps === undefined ? '' : `, privacy spent ε ${num(eps, 3)}`;
  return `${head}: ${body}${spent}${reason}`;
}

export function formatJob(j: RoundJobStatus): string {
  if (j.mode === null) return 'no rounds requested since start';
  const of = j.requested === null ? '' : ` of ${j.requested}`;
  const state = j.running ? 'running' : j.lastError ? `stopped: ${j.lastError.message}` : 'finished';
  return `${j.mode === 'continuous' ? 'continuous' : 'rounds'}: ${j.done}${of} done, ${state}`;
}

/** The privacy budget in words: what is spent, of what, and whether rounds can still run. */
export function formatPrivacy(p: PrivacyView | undefined): string {
  if (!p?.enabled) return 'differential privacy: off';
  const at = p.delta === null ? '' : ` at δ ${p.delta}`;
  if (p.epsilonBudget === null) return `differential privacy: ε ${p.epsilonSpent.toFixed(3)} spent${at}`;
  const share = Math.round((100 * p.epsilonSpent) / p.epsilonBudget);
  return `differential privacy: ε ${p.epsilonSpent.toFixed(3)} of ${p.epsilonBudget} spent${at} (${share}% of the budget)`;
}

export function formatStatus(s: StatusView): string {
  const lines = [`coordinator ${s.coordinatorVersion}, up ${duration(s.uptimeSeconds)}, ${s.ready ? 'ready' : 'restoring state'}`];
  const rel = s.released === null ? 'nothing released yet' : `released version ${s.released} (release history ${s.releases.join(', ')})`;
  lines.push(`model version ${s.version ?? 'none'}, next round ${s.nextRound ?? 'n/a'}; ${rel}`);
  const f = s.roundInFlight;
  lines.push(
    f
      ? `round in flight: ${f.round} (attempt ${f.attempt}, ${f.phase}), ${f.answered} of ${f.sampled} answered, ${f.accepted} accepted, deadline ${new Date(f.deadline).toISOString()}`
      : 'round in flight: none',
  );
  lines.push(`sites online (${s.sitesOnline.length}): ${s.sitesOnline.length ? s.sitesOnline.join(', ') : 'none'}`);
  lines.push(`last round: ${s.lastRound ? formatRecord(s.lastRound) : 'none yet'}`);
  lines.push(formatJob(s.rounds));
  lines.push(formatPrivacy(s.privacy));
  lines.push(`refused messages since start: ${counts(s.rejected)}`);
  return lines.join('\n');
}

export function formatSites(sites: SiteView[]): string {
  if (sites.length === 0) return 'no sites registered; add one with "sites add <name>"';
  const rows = sites.map((s) => [
    s.name,
    s.revoked ? 'revoked' : s.enrolled ? 'enrolled' : s.pendingEnrollment ? 'awaiting enrollment' : 'no credential',
    s.online ? 'online' : '-',
    s.enrolledAt ?? '-',
  ]);
  const header = ['SITE', 'STATE', 'ONLINE', 'ENROLLED AT'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function formatEnrollment(name: string, token: string): string {
  return [
    `site ${name} registered. Its one-time enrollment token (shown only now; the coordinator keeps only a hash):`,
    '',
    `  ${token}`,
    '',
    'Put it in the agent\'s configuration; on first connect the agent exchanges it for its long-lived credential.',
  ].join('\n');
}
