import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { RoundRecord } from '@fedmeta/coordinator';
import type { DemoAdmin } from './admin-client.js';

export interface RoundProgress {
  /** Rounds committed so far by this job. */
  done: number;
  total: number;
  /** The last round the coordinator finished (committed or aborted). */
  last: RoundRecord;
  online: number;
  elapsedMs: number;
}

const fmt = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '  -  ' : v.toFixed(3));

/** One progress line: round k/N, the sites that answered, the mean query loss and validation F1 they reported. */
export function formatRoundProgress(p: RoundProgress): string {
  const r = p.last;
  const status = r.status === 'aborted' ? `  aborted (${r.reason ?? 'no quorum'}), re-issued` : '';
  return (
    `round ${String(p.done).padStart(String(p.total).length)}/${p.total}` +
    `  sites ${r.accepted}/${r.sampled.length}` +
    `  query loss ${fmt(r.meanQueryLoss)}` +
    `  valF1 ${fmt(r.meanValF1)}` +
    `  ${(p.elapsedMs / 1000).toFixed(1)} s${status}`
  );
}

/**
 * Starts `count` rounds through the admin API and follows them until the job ends, calling `onRound` for each
 * round the coordinator finishes. Fails with the coordinator's own error when the job stops early, and when no
 * round finishes within `stallMs` (a deadline that keeps passing without a quorum, for instance).
 */
export async function runRoundsWithProgress(
  admin: DemoAdmin,
  count: number,
  onRound: (p: RoundProgress) => void,
  opts: { pollMs?: number; stallMs: number },
): Promise<number> {
  const start = Date.now();
  const before = (await admin.status()).lastRound;
  let lastKey = before === null ? '' : `${before.round}/${before.status}/${before.fromVersion}`;
  let lastChange = Date.now();
  await admin.runRounds(count);
  for (;;) {
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 200));
    const s = await admin.status();
    const r = s.lastRound;
    const key = r === null ? '' : `${r.round}/${r.status}/${r.fromVersion}`;
    if (r !== null && key !== lastKey) {
      lastKey = key;
      lastChange = Date.now();
      onRound({ done: s.rounds.done, total: count, last: r, online: s.sitesOnline.length, elapsedMs: Date.now() - start });
    }
    if (!s.rounds.running) {
      if (s.rounds.lastError !== null) {
        const e = s.rounds.lastError;
        throw new FedmetaError(ErrorCode.PRECONDITION, `the coordinator stopped the rounds after ${s.rounds.done} of ${count}: ${e.code}: ${e.message}`);
      }
      if (s.rounds.done < count) throw new FedmetaError(ErrorCode.PRECONDITION, `the coordinator ran ${s.rounds.done} of ${count} rounds and stopped; see its log`);
      return s.rounds.done;
    }
    if (Date.now() - lastChange > opts.stallMs) {
      throw new FedmetaError(ErrorCode.PRECONDITION, `no round finished for ${Math.round(opts.stallMs / 1000)} s (${s.sitesOnline.length} sites online); see the coordinator's and the agents' logs`);
    }
  }
}
