import { writeSync } from 'node:fs';

/**
 * TEST HOOKS, OFF BY DEFAULT. The fault-injection suite (test/faults) uses them to stop the coordinator at an
 * exact point of a round, as a power cut or the kernel's OOM killer would, and to widen the window in which it
 * restores its state. They are driven by two environment variables, read once when this module loads:
 *
 *   FEDMETA_TEST_CRASH_AT=point:n[,point:n]  the n-th time (counted from 1 in this process) the coordinator
 *                                            reaches `point`, it sends itself SIGKILL (kill -9): no handler,
 *                                            no flush, no cleanup runs.
 *   FEDMETA_TEST_PAUSE_AT=point:ms[,point:ms] waits `ms` milliseconds every time it reaches `point`.
 *
 * Unset, as in every deployment, each hook is a single comparison with null and returns at once. A value that
 * does not parse is ignored rather than guessed at: a typo must not crash a coordinator.
 */

/** Where a crash can be injected; the round engine and the checkpoint writer mark these places. */
export type CrashPoint =
  /** An update has just been accepted into the open round. */
  | 'collect'
  /** The round's updates are aggregated and the optimizer step is taken, nothing is written yet. */
  | 'aggregate'
  /** The new checkpoint is written to its temporary file and synced, not yet renamed into place. */
  | 'checkpoint'
  /** The new checkpoint is durable (renamed, manifest written); the engine has not moved on to it yet. */
  | 'commit'
  /** A round's offer, carrying the newest version, has gone to the first sampled site and not yet to the rest. */
  | 'broadcast'
  /** Secure aggregation: this phase's messages have gone to the sites, whose answers are awaited. */
  | 'secure-share'
  | 'secure-mask'
  | 'secure-confirm'
  | 'secure-unmask';

/** Where a delay can be injected. */
export type PausePoint =
  /** The coordinator listens (and refuses sites with NOT_READY) but has not restored its state yet. */
  'restore';

export const CRASH_ENV = 'FEDMETA_TEST_CRASH_AT';
export const PAUSE_ENV = 'FEDMETA_TEST_PAUSE_AT';

function parse(value: string | undefined): Map<string, number> | null {
  if (value === undefined || value.trim() === '') return null;
  const out = new Map<string, number>();
  for (const part of value.split(',')) {
    const m = /^\s*([a-z-]+):(\d+)\s*$/.exec(part);
    if (m?.[1] !== undefined && m[2] !== undefined) out.set(m[1], Number(m[2]));
  }
  return out.size > 0 ? out : null;
}

const crashAt = parse(process.env[CRASH_ENV]);
const pauseAt = parse(process.env[PAUSE_ENV]);
const reached = new Map<string, number>();

/** Kills this process with SIGKILL when FEDMETA_TEST_CRASH_AT names this point and this is its n-th time. */
export function crashPoint(point: CrashPoint): void {
  if (crashAt === null) return;
  const n = (reached.get(point) ?? 0) + 1;
  reached.set(point, n);
  if (crashAt.get(point) !== n) return;
  // Written synchronously, so that the test can tell the hook's kill from any other death.
  writeSync(2, `${CRASH_ENV}: SIGKILL at ${point} #${n}\n`);
  process.kill(process.pid, 'SIGKILL');
}

/** Waits when FEDMETA_TEST_PAUSE_AT names this point; otherwise resolves at once. */
export async function pausePoint(point: PausePoint): Promise<void> {
  const ms = pauseAt?.get(point);
  if (ms === undefined || ms <= 0) return;
  writeSync(2, `${PAUSE_ENV}: pausing ${ms} ms at ${point}\n`);
  await new Promise((resolve) => setTimeout(resolve, ms));
}
