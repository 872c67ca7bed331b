import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { Readable } from 'node:stream';
import { ErrorCode, FedmetaError } from '@fedmeta/shared';

/**
 * A flow file that a collector keeps appending to, read as one endless stream (`detect --follow`): from its
 * start, then whatever is appended, until the signal aborts. A file that is rotated (renamed away and created
 * anew) is finished first and then the new one is read from its start; a file truncated in place
 * (copytruncate) is read again from its start. A new file that starts with the same header line as the first
 * one has that line skipped, so the CSV reader sees one header and one stream of rows. Changes are noticed
 * through a watch on the folder, with a slow poll as well for file systems that do not report them (network
 * mounts).
 */
export interface FollowOptions {
  signal?: AbortSignal;
  /** Poll interval when no change is reported (default 250 ms). */
  pollMs?: number;
  /** Bytes read at a time (default 256 KiB). */
  chunkBytes?: number;
}

class ChangeWaiter {
  private wake: (() => void) | null = null;
  private changed = false;
  private readonly watcher: FSWatcher | null;

  constructor(path: string) {
    const name = basename(path);
    let w: FSWatcher | null = null;
    try {
      w = watch(dirname(path), (_event, file) => {
        if (file === null || String(file) === name) this.poke();
      });
      w.on('error', () => w?.close());
    } catch {
      // No watch available: the poll alone notices growth.
    }
    this.watcher = w;
  }

  poke(): void {
    this.changed = true;
    this.wake?.();
  }

  /** Resolves at the next change, after `ms` at the latest, or at once if something changed since the last wait. */
  wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.changed || signal?.aborted === true) {
      this.changed = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.wake = null;
        this.changed = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  close(): void {
    this.watcher?.close();
    this.wake?.();
  }
}

async function openFollowed(path: string): Promise<{ fh: FileHandle; ino: number }> {
  try {
    const fh = await open(path, 'r');
    return { fh, ino: (await fh.stat()).ino };
  } catch (e) {
    throw new FedmetaError(ErrorCode.DATA_FILE, `cannot open ${basename(path)} to follow it (${(e as NodeJS.ErrnoException).code ?? 'error'}); check the --input path`);
  }
}

export function followFile(path: string, opts: FollowOptions = {}): Readable {
  const pollMs = opts.pollMs ?? 250;
  const size = opts.chunkBytes ?? 256 * 1024;
  const signal = opts.signal;
  async function* chunks(): AsyncGenerator<Buffer> {
    let { fh, ino } = await openFollowed(path);
    const changes = new ChangeWaiter(path);
    let pos = 0;
    /** The first line of the first file, with its newline, once read; null until then. */
    let header: Buffer | null = null;
    let firstSeen = Buffer.alloc(0);
    let checkHeader = false;
    try {
      while (signal?.aborted !== true) {
        const buf = Buffer.allocUnsafe(size);
        const { bytesRead } = await fh.read(buf, 0, size, pos);
        if (bytesRead > 0) {
          const data = buf.subarray(0, bytesRead);
          if (header === null) {
            firstSeen = Buffer.concat([firstSeen, data.subarray(0, 64 * 1024)]);
            const nl = firstSeen.indexOf(0x0a);
            if (nl >= 0 || firstSeen.length >= 64 * 1024) header = firstSeen.subarray(0, nl + 1);
          }
          if (checkHeader && header !== null && header.length > 0) {
            const n = Math.min(data.length, header.length);
            if (data.subarray(0, n).equals(header.subarray(0, n))) {
              if (n < header.length) {
                // Only part of the new file's first line is there yet: decide once it is whole.
                await changes.wait(pollMs, signal);
                continue;
              }
              pos += n;
              checkHeader = false;
              continue;
            }
          }
          checkHeader = false;
          pos += bytesRead;
          yield data;
          continue;
        }
        const now = await stat(path).catch(() => null);
        if (now !== null && now.ino !== ino) {
          // Rotated: everything of the old file has been read (this read found its end); go on with the new one.
          await fh.close();
          ({ fh, ino } = await openFollowed(path));
          pos = 0;
          checkHeader = true;
          continue;
        }
        if ((await fh.stat()).size < pos) {
          pos = 0;
          checkHeader = true;
          continue;
        }
        await changes.wait(pollMs, signal);
      }
    } finally {
      changes.close();
      await fh.close();
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}
