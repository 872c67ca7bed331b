import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes a file so that a reader sees either the old content or the new one, never a part: temporary file in the
 * same folder (created with the final mode, so a secret is never readable by others even for a moment), fsync,
 * rename over the target, fsync of the folder so the rename itself survives a power cut.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    try {
      await fh.writeFile(data);
      // The umask may have narrowed the mode; a secret must not end up wider than asked either.
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await syncDir(dir);
}

async function syncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Some file systems (and Windows) cannot fsync a directory; the rename is still atomic there.
  } finally {
    await fh?.close();
  }
}
