import { mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/** Temporary files start with this prefix; any left in a directory come from an interrupted write. */
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
 * Writes `path` so that a reader sees either the old file or the complete new one, after a crash too: temporary
 * file in the same directory (created with the final mode, so a secret is never readable by others even for a
 * moment), write, fsync, rename over the target, fsync of the directory so the rename itself survives a power cut.
 * The directory is created (mode 0700) when missing. A hook that throws leaves the temporary file behind, as a
 * crash would; removeTempFiles clears such leftovers.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array | readonly Uint8Array[],
  mode = 0o600,
  hooks: AtomicWriteHooks = {},
): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = join(dir, `${TEMP_PREFIX}${basename(path)}-${process.pid}-${randomBytes(6).toString('hex')}`);
  const fh = await open(temp, 'wx', mode);
  try {
    for (const chunk of chunksOf(data)) {
      let off = 0;
      while (off < chunk.byteLength) {
        const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off);
        off += bytesWritten;
      }
    }
    // The umask may have narrowed the mode; a secret must not end up wider than asked either.
    await fh.chmod(mode);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  await hooks.beforeRename?.(temp);
  try {
    await rename(temp, path);
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    throw e;
  }
  await fsyncDir(dir);
}

function chunksOf(data: string | Uint8Array | readonly Uint8Array[]): readonly Uint8Array[] {
  if (typeof data === 'string') return [Buffer.from(data, 'utf8')];
  return data instanceof Uint8Array ? [data] : data;
}

/** Removes the temporary files an interrupted write left in `dir`; returns how many. Call only under the lock. */
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
