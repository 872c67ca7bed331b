import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { SiteUpdate } from './hub.js';

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
}

/**
 * Checks the content of an update addressed to the open round: shape, length and finiteness. The transport
 * has already checked the message schema; this repeats the checks the maths depends on, because a single
 * NaN would poison the aggregate. Messages name counts only, never values.
 */
export function checkUpdateContent(update: SiteUpdate, dim: number, masked = false): FedmetaError | null {
  if (masked) {
    // A securely aggregated round: no vector here (it comes masked); the signed keys are judged by the secure round.
    if (update.update !== null || typeof update.secagg !== 'object' || update.secagg === null) {
      return new FedmetaError(ErrorCode.SCHEMA, 'this round is securely aggregated: the update must carry its signed keys and no vector; upgrade the site agent');
    }
  } else if (!(update.update instanceof Float32Array)) {
    return new FedmetaError(ErrorCode.SCHEMA, 'the update vector must be a float32 array; upgrade the site agent');
  }
  if (update.update !== null && update.update.length !== dim) {
    return new FedmetaError(
      ErrorCode.WRONG_LENGTH,
      `the update has ${update.update.length} values but the model has ${dim}; restart the site agent so it loads the federation's current model`,
    );
  }
  const counts = update.counts as Partial<SiteUpdate['counts']> | undefined;
  if (!counts || !isCount(counts.examples) || !isCount(counts.episodes)) {
    return new FedmetaError(
      ErrorCode.SCHEMA,
      'the update must report whole, positive episode and example counts; check the site agent version',
    );
  }
  const m = update.metrics as Partial<SiteUpdate['metrics']> | undefined;
  if (!m || typeof m.supportLoss !== 'number' || typeof m.queryLoss !== 'number') {
    return new FedmetaError(ErrorCode.SCHEMA, 'the update must report its support and query losses; check the site agent version');
  }
  if (m.valF1 !== undefined && (typeof m.valF1 !== 'number' || !(m.valF1 >= 0 && m.valF1 <= 1))) {
    return new FedmetaError(ErrorCode.SCHEMA, 'the reported validation F1 must lie between 0 and 1; check the site agent version');
  }
  if (!Number.isFinite(m.supportLoss) || !Number.isFinite(m.queryLoss)) {
    return new FedmetaError(
      ErrorCode.NON_FINITE,
      "the site's losses are not finite: its local training diverged; lower the inner step size or check the site's data",
    );
  }
  const v = update.update ?? new Float32Array(0);
  let bad = 0;
  for (let i = 0; i < v.length; i++) {
    // x - x is 0 for finite x and NaN for NaN and both infinities: one test per value.
    if ((v[i] as number) - (v[i] as number) !== 0) bad++;
  }
  if (bad > 0) {
    return new FedmetaError(
      ErrorCode.NON_FINITE,
      `the update has ${bad} of ${v.length} values that are NaN or infinite: local training diverged; lower the inner step size or check the site's data`,
    );
  }
  return null;
}

/** The part of the open round that decides whether an update may be taken. */
export interface OpenRound {
  readonly round: number;
  readonly version: number;
  readonly sampledSet: ReadonlySet<string>;
  readonly answered: Set<string>;
  /** Set when the round is securely aggregated: its updates carry keys, not vectors. */
  readonly secure?: object | null;
}

/**
 * Decides whether `site`'s update is taken into the open round, or why not. `dim` is null while the engine is
 * not ready. A sampled site gets one answer per round: once its update has been judged on content, accepted or
 * not, it is marked as answered, because waiting for a second try would only hold the round up.
 */
export function judgeUpdate(site: string, update: SiteUpdate, open: OpenRound | null, dim: number | null): FedmetaError | null {
  if (dim === null) {
    return new FedmetaError(ErrorCode.NOT_READY, 'the coordinator is still restoring its state; the agent retries once it is ready');
  }
  if (typeof update !== 'object' || update === null || typeof update.round !== 'number' || typeof update.version !== 'number') {
    return new FedmetaError(ErrorCode.SCHEMA, 'the update does not say which round and version it is for; upgrade the site agent');
  }
  if (!open) {
    return new FedmetaError(ErrorCode.STALE_ROUND, `no round is open for updates (update for round ${update.round}); wait for the next offer`);
  }
  if (update.round !== open.round || update.version !== open.version) {
    return new FedmetaError(
      ErrorCode.STALE_ROUND,
      `the update is for round ${update.round} on version ${update.version} but round ${open.round} on version ${open.version} is open; the agent picks up the current offer`,
    );
  }
  if (!open.sampledSet.has(site)) {
    return new FedmetaError(ErrorCode.UNKNOWN_SITE, `this site was not asked to take part in round ${open.round}; wait for an offer`);
  }
  if (open.answered.has(site)) {
    return new FedmetaError(ErrorCode.DUPLICATE_UPDATE, `this site already answered round ${open.round}; send one update per round`);
  }
  const bad = checkUpdateContent(update, dim, open.secure !== undefined && open.secure !== null);
  if (bad) open.answered.add(site);
  return bad;
}
