import { randomInt } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, FedmetaError, writeFileAtomic } from '@fedmeta/shared';

/**
 * What the agent keeps in its state directory: the credential it received at enrollment, its secret episode
 * seed, and the released model versions that `detect` uses. Secrets are written with mode 0600.
 */
const SECRET = /^[\x21-\x7e]{1,512}$/;

/** The stored credential, or undefined when the file does not exist yet (before enrollment). */
export async function readCredentialFile(path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FedmetaError(ErrorCode.CONFIG, `cannot read the credential file ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'}); check its owner and mode`);
  }
  const credential = text.trim();
  if (!SECRET.test(credential)) {
    throw new FedmetaError(ErrorCode.STATE_CORRUPT, `the credential file ${path} does not hold a credential; delete it and enroll again with a new token from \`fedmeta-coordinator sites add\``);
  }
  return credential;
}

/** Stores the credential atomically, readable by the agent's user only. */
export async function storeCredential(path: string, credential: string): Promise<void> {
  await writeFileAtomic(path, `${credential}\n`, 0o600);
}

/** True when a file exists at path. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The site's secret episode seed: the configured one, else the one kept in <stateDir>/site-seed, else a new
 * random one stored there. It never leaves the site: it keeps the coordinator from knowing which flows an
 * update was computed on.
 */
export async function resolveSiteSeed(stateDir: string, configured: number | undefined): Promise<number> {
  if (configured !== undefined) return configured;
  const file = join(stateDir, 'site-seed');
  try {
    const text = (await readFile(file, 'utf8')).trim();
    const seed = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(seed)) {
      throw new FedmetaError(ErrorCode.STATE_CORRUPT, `${file} does not hold a seed; delete it to draw a new one, or set seed in the configuration`);
    }
    return seed;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const seed = randomInt(0, 2 ** 47);
  await writeFileAtomic(file, `${seed}\n`, 0o600);
  return seed;
}

/** Where the agent caches released versions: <stateDir>/models/v<version>.fmodel, and released.fmodel for the latest. */
export function modelPath(stateDir: string, version?: number): string {
  return join(stateDir, 'models', version === undefined ? 'released.fmodel' : `v${version}.fmodel`);
}
