import type { RoundTask } from '@fedmeta/shared';
import type { Checkpoint, RoundRecord, SiteRoundMetrics } from '../state/types.js';
import type { RoundOffer, SiteUpdate } from './hub.js';

/** The offer of a round on checkpoint `cp`: its parameters and the model they belong to, spec included. */
export function roundOffer(cp: Checkpoint, round: number, task: RoundTask, deadline: number): RoundOffer {
  return {
    round,
    version: cp.version,
    task,
    spec: { ...cp.spec, hidden: [...cp.spec.hidden], task: { ...cp.spec.task } },
    manifest: cp.manifest,
    params: cp.params,
    deadline,
  };
}

/** A duration in milliseconds, to the microsecond, for logs and events. */
export function millis(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export function allFinite(v: Float32Array): boolean {
  for (let i = 0; i < v.length; i++) {
    if ((v[i] as number) - (v[i] as number) !== 0) return false;
  }
  return true;
}

/** Per-site metrics in site-name order, so that records do not depend on arrival order. */
export function siteMetrics(accepted: ReadonlyMap<string, SiteUpdate>): SiteRoundMetrics[] {
  return [...accepted.keys()].sort().map((siteId) => {
    const u = accepted.get(siteId) as SiteUpdate;
    const m: SiteRoundMetrics = {
      siteId,
      examples: u.counts.examples,
      episodes: u.counts.episodes,
      supportLoss: u.metrics.supportLoss,
      queryLoss: u.metrics.queryLoss,
    };
    if (u.metrics.valF1 !== undefined) m.valF1 = u.metrics.valF1;
    return m;
  });
}

/** Example-weighted means of the sites' query loss and (over the sites that report it) validation F1. */
export function weightedMeans(sites: readonly SiteRoundMetrics[]): { meanQueryLoss?: number; meanValF1?: number } {
  let w = 0;
  let loss = 0;
  let wf = 0;
  let f1 = 0;
  for (const s of sites) {
    w += s.examples;
    loss += s.examples * s.queryLoss;
    if (s.valF1 !== undefined) {
      wf += s.examples;
      f1 += s.examples * s.valF1;
    }
  }
  const out: { meanQueryLoss?: number; meanValF1?: number } = {};
  if (w > 0) out.meanQueryLoss = loss / w;
  if (wf > 0) out.meanValF1 = f1 / wf;
  return out;
}

export interface RecordInput {
  round: number;
  fromVersion: number;
  status: RoundRecord['status'];
  startedAt: string;
  endedAt: string;
  sampled: readonly string[];
  accepted: ReadonlyMap<string, SiteUpdate>;
  rejected: Record<string, number>;
  reason?: string;
  secureAggregation?: RoundRecord['secureAggregation'];
}

export function buildRecord(input: RecordInput): RoundRecord {
  const sites = siteMetrics(input.accepted);
  const record: RoundRecord = {
    round: input.round,
    fromVersion: input.fromVersion,
    status: input.status,
    startedAt: input.startedAt,
    endedAt: input.endedAt,
    sampled: [...input.sampled],
    accepted: input.accepted.size,
    rejected: { ...input.rejected },
    ...weightedMeans(sites),
    sites,
  };
  if (input.reason !== undefined) record.reason = input.reason;
  if (input.secureAggregation !== undefined) record.secureAggregation = input.secureAggregation;
  return record;
}

/**
 * The version the sites' own measurements favour. A round's metrics are measured by adapting the version it
 * started from, so they score `fromVersion`: the newest version has no score until a round has run on it.
 * Highest mean validation F1 wins; without any F1, lowest mean query loss; ties go to the newer version.
 */
export function pickBestVersion(history: readonly RoundRecord[], available: ReadonlySet<number>): number | null {
  const scored = history.filter((r) => r.status === 'committed' && available.has(r.fromVersion));
  const withF1 = scored.filter((r) => r.meanValF1 !== undefined);
  let best: RoundRecord | null = null;
  if (withF1.length > 0) {
    for (const r of withF1) {
      if (best === null || (r.meanValF1 as number) > (best.meanValF1 as number) || ((r.meanValF1 as number) === best.meanValF1 && r.fromVersion > best.fromVersion)) best = r;
    }
    return best?.fromVersion ?? null;
  }
  for (const r of scored) {
    if (r.meanQueryLoss === undefined) continue;
    if (best === null || r.meanQueryLoss < (best.meanQueryLoss as number) || (r.meanQueryLoss === best.meanQueryLoss && r.fromVersion > best.fromVersion)) best = r;
  }
  return best?.fromVersion ?? null;
}

/** Round summaries the checkpoint keeps (besides those of released versions): the dashboard's curves, `release --best`. */
export const HISTORY_ROUNDS = 1000;
/**
 * Per-site metrics kept in the checkpoint, counted over the kept rounds, newest first: with 10 sites, those of
 * every kept round; with 1,000 sites, those of the last 20. Older records keep their summary only.
 */
export const SITE_DETAIL_BUDGET = 20_000;

/**
 * The history a checkpoint keeps. The checkpoint is rewritten at every commit, so an unbounded history would
 * make each round slower and the state directory larger for as long as the federation runs: this keeps the
 * newest HISTORY_ROUNDS records, plus the committed records of released versions (whose scores `release
 * --best` and the dashboard still show), and drops per-site metrics beyond SITE_DETAIL_BUDGET entries. The
 * full record of every round is also in the coordinator's log ('round committed', 'round aborted').
 */
export function boundHistory(records: readonly RoundRecord[], released: readonly number[]): RoundRecord[] {
  const keepVersion = new Set(released);
  const out: RoundRecord[] = [];
  let detail = SITE_DETAIL_BUDGET;
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i] as RoundRecord;
    const recent = records.length - i <= HISTORY_ROUNDS;
    if (!recent && !(r.status === 'committed' && keepVersion.has(r.fromVersion))) continue;
    if (r.sites.length <= detail) {
      detail -= r.sites.length;
      out.push(r);
    } else {
      detail = 0;
      out.push(r.sites.length === 0 ? r : { ...r, sites: [] });
    }
  }
  return out.reverse();
}
