import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { ReleaseView } from '../admin/admin-api.js';
import type { RoundJobStatus } from '../admin/round-runner.js';
import { adminClient, print } from './context.js';
import type { CliIo, CommonArgs } from './context.js';
import { formatJob, formatRecord, formatStatus } from './format.js';
import type { StatusView } from './format.js';

/** `status`, `rounds run`, `release`, `rollback`: through the running coordinator's admin API. */

export async function status(args: CommonArgs, io: CliIo): Promise<void> {
  const s = await adminClient(args, io).get<StatusView>('/status');
  print(io, args, s, () => formatStatus(s));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Starts N rounds on the coordinator and, unless --no-wait, follows them to the end, printing each round's
 * outcome. Exits 1 when the rounds stopped on an error (for example no quorum).
 */
export async function roundsRun(args: CommonArgs & { count: number; wait?: boolean; pollMs?: number }, io: CliIo): Promise<void> {
  const client = adminClient(args, io);
  const started = await client.post<{ job: RoundJobStatus }>('/rounds', { count: args.count });
  if (args.wait === false) {
    print(io, args, started, () => `started ${args.count} round(s); follow them with "status"`);
    return;
  }
  if (!args.json) io.stdout(`running ${args.count} round(s)...`);
  let shown = 0;
  let s: StatusView;
  for (;;) {
    s = await client.get<StatusView>('/status');
    const job = s.rounds;
    if (!args.json) {
      // `recent` holds the job's last rounds: print those not printed yet, numbered within the job.
      const first = job.done - job.recent.length;
      for (let i = Math.max(shown, first); i < job.done; i++) {
        const r = job.recent[i - first];
        if (r) io.stdout(`${i + 1}/${job.requested ?? '?'} ${formatRecord(r)}`);
      }
      shown = job.done;
    }
    if (!job.running) break;
    await sleep(args.pollMs ?? 500);
  }
  const job = s.rounds;
  print(io, args, { job, version: s.version, lastRound: s.lastRound }, () => `${formatJob(job)}; model version ${s.version ?? 'none'}`);
  if (job.lastError) throw new FedmetaError(job.lastError.code, job.lastError.message.replace(/^FEDMETA_ERR_[A-Z_]+: /, ''));
}

export async function release(args: CommonArgs & { 'version-number'?: string; best?: boolean }, io: CliIo): Promise<void> {
  let body: { best: true } | { version: number };
  if (args.best) {
    if (args['version-number'] !== undefined) throw new FedmetaError(ErrorCode.CONFIG, 'give a version or --best, not both');
    body = { best: true };
  } else {
    const given = args['version-number'];
    const v = Number(given);
    if (given === undefined || given === '' || !Number.isSafeInteger(v) || v < 0) {
      throw new FedmetaError(ErrorCode.CONFIG, 'give the version to release (a whole number, see "status"), or --best');
    }
    body = { version: v };
  }
  const r = await adminClient(args, io).post<ReleaseView>('/release', body);
  print(io, args, r, () => `released version ${r.version} for detection (release history: ${r.releases.join(', ')})`);
}

export async function rollback(args: CommonArgs, io: CliIo): Promise<void> {
  const r = await adminClient(args, io).post<ReleaseView>('/rollback');
  print(io, args, r, () => `rolled back: version ${r.version} is the current release again (release history: ${r.releases.join(', ')})`);
}
