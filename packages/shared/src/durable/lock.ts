import { open, readFile, rename, stat, unlink, link, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ErrorCode, FedmetaError } from '../errors.js';
import { fsyncDir } from './atomic.js';

export const LOCK_NAME = 'LOCK';

interface LockInfo {
  pid: number;
  hostname: string;
  /** Tells this process's own lock apart from one left by an earlier process with the same pid (pid 1 in containers). */
  nonce: string;
  startedAt: string;
}

/** The program that holds a directory's lock; the refusal names it, so the operator knows what to stop. */
export type LockRole = 'coordinator' | 'agent';

const DIR_NOUN: Record<LockRole, string> = { coordinator: 'data directory', agent: 'state directory' };

export interface LockOptions {
  /** A lock from another host counts as abandoned once its heartbeat is older than this (default 30 s). */
  staleAfterMs?: number;
  /** How often the holder refreshes the lock's mtime (default 10 s). */
  heartbeatMs?: number;
}

export interface DirLock {
  readonly path: string;
  /** Pid of the dead holder whose lock was taken over, if any. */
  readonly tookOverFrom: number | undefined;
  release(): Promise<void>;
}

/** Nonces of the locks this process holds, so that a second opener in the same process is refused too. */
const heldNonces = new Set<string>();

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseLock(text: string): LockInfo | null {
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (typeof v.pid === 'number' && typeof v.hostname === 'string' && typeof v.nonce === 'string') {
      return { pid: v.pid, hostname: v.hostname, nonce: v.nonce, startedAt: String(v.startedAt) };
    }
  } catch {
    // fall through: a lock torn by a crash while it was being created
  }
  return null;
}

function isStale(info: LockInfo | null, mtimeMs: number, staleAfterMs: number): boolean {
  // An unreadable lock is either being written right now (microseconds) or torn by a crash.
  if (info === null) return Date.now() - mtimeMs > 2000;
  if (info.hostname !== hostname()) return Date.now() - mtimeMs > staleAfterMs;
  if (info.pid === process.pid) return !heldNonces.has(info.nonce);
  return !pidAlive(info.pid);
}

function lockedError(path: string, info: LockInfo | null, role: LockRole): FedmetaError {
  const who = info ? `process ${info.pid} on host ${info.hostname} (since ${info.startedAt})` : 'another process';
  return new FedmetaError(
    ErrorCode.STATE_LOCKED,
    `the ${DIR_NOUN[role]} is in use by ${who}; stop that ${role} first, or delete ${path} if you are sure ` +
      `no ${role} uses this directory`,
  );
}

async function tryCreate(path: string, info: LockInfo): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    await fh.writeFile(JSON.stringify(info));
    await fh.sync();
  } finally {
    await fh.close();
  }
  return true;
}

/**
 * Takes the directory's lock file, or refuses with STATE_LOCKED while a live process holds it, so that two
 * coordinators (or two agents) never write one directory at once. A lock whose holder is dead (same host: its pid
 * is gone; another host: its heartbeat stopped) is taken over.
 */
export async function acquireLock(dir: string, opts: LockOptions & { role: LockRole }): Promise<DirLock> {
  const role = opts.role;
  const staleAfterMs = opts.staleAfterMs ?? 30_000;
  const heartbeatMs = opts.heartbeatMs ?? 10_000;
  const path = join(dir, LOCK_NAME);
  const info: LockInfo = {
    pid: process.pid,
    hostname: hostname(),
    nonce: randomBytes(12).toString('hex'),
    startedAt: new Date().toISOString(),
  };
  let tookOverFrom: number | undefined;

  for (let attempt = 0; attempt < 4; attempt++) {
    if (await tryCreate(path, info)) {
      await fsyncDir(dir);
      heldNonces.add(info.nonce);
      const timer = setInterval(() => {
        const now = new Date();
        utimes(path, now, now).catch(() => undefined);
      }, heartbeatMs);
      timer.unref();
      let released = false;
      return {
        path,
        tookOverFrom,
        async release() {
          if (released) return;
          released = true;
          clearInterval(timer);
          heldNonces.delete(info.nonce);
          const current = await readFile(path, 'utf8').catch(() => '');
          if (parseLock(current)?.nonce === info.nonce) {
            await unlink(path);
            await fsyncDir(dir);
          }
        },
      };
    }
    let text: string;
    let mtimeMs: number;
    try {
      text = await readFile(path, 'utf8');
      mtimeMs = (await stat(path)).mtimeMs;
    } catch {
      continue; // released between our create and our read: try again
    }
    const holder = parseLock(text);
    if (!isStale(holder, mtimeMs, staleAfterMs)) throw lockedError(path, holder, role);

    // Move the stale lock aside rather than unlinking it, so that a lock another process created in the meantime
    // is noticed (its content differs) and put back instead of being deleted.
    const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await rename(path, aside);
    } catch {
      continue;
    }
    const moved = await readFile(aside, 'utf8').catch(() => '');
    if (moved !== text) {
      await link(aside, path).catch(() => undefined);
      await unlink(aside).catch(() => undefined);
      continue;
    }
    await unlink(aside).catch(() => undefined);
    if (holder) tookOverFrom = holder.pid;
  }
  throw lockedError(path, null, role);
}
