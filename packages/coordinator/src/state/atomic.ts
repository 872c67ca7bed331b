import { open, rename, unlink, readdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

/** Temporary files start with this prefix; any left in the data directory come from an interrupted write. */
export const TEMP_PREFIX = '.tmp-';

export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX);
}

/**
 * Makes a rename or an unlink in `dir` durable. Linux needs the directory itself fsync'd; platforms that cannot
 * open a directory for fsync (Windows) give EISDIR/EPERM, where the rename is already as durable as it gets.
 */
export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (process.platform === 'win32' && (code === 'EISDIR' || code === 'EPERM' || code === 'EINVAL')) return;
    throw e;
  } finally {
    await fh?.close();
  }
}

/** Test hook: lets a test stop a write between the fsync of the temporary file and the rename. */
export interface AtomicWriteHooks {
  beforeRename?: (tempPath: string) => Promise<void> | void;
}

/**
 * Writes `name` in `dir` so that a reader sees either the old file or the complete new one, after a crash too:
 * temporary file in the same directory, write, fsync, rename over the target, fsync of the directory.
 */
export async function writeFileAtomic(
  dir: string,
  name: string,
  chunks: Uint8Array[],
  hooks: AtomicWriteHooks = {},
): Promise<void> {
  const temp = join(dir, `${TEMP_PREFIX}${name}-${process.pid}-${randomBytes(6).toString('hex')}`);
  const fh = await open(temp, 'wx', 0o600);
  try {
    for (const chunk of chunks) {
      let off = 0;
      while (off < chunk.byteLength) {
        const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off);
        off += bytesWritten;
      }
    }
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  await hooks.beforeRename?.(temp);
  await rename(temp, join(dir, name));
  await fsyncDir(dir);
}

/** Removes the temporary files an interrupted write left behind; returns how many. Call only under the lock. */
export async function removeTempFiles(dir: string): Promise<number> {
  let removed = 0;
  for (const name of await readdir(dir)) {
    if (!isTempName(name)) continue;
    await unlink(join(dir, name)).catch(() => undefined);
    removed++;
  }
  if (removed > 0) await fsyncDir(dir);
  return removed;
}
