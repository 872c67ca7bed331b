import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, FedmetaError, writeFileAtomic } from '@fedmeta/shared';
import { ContainerKind, decodeContainer, encodeContainer } from './container.js';
import { packState, unpackState } from './checkpoint-codec.js';
import type { SiteRecord } from './types.js';

export const MANIFEST_NAME = 'MANIFEST';
export const SITES_NAME = 'sites.fmst';

/**
 * The manifest is what says that state exists: once a version has been committed, a directory whose checkpoints
 * are gone is damage to report, never a fresh start. It also remembers every version ever released, which pruning
 * must keep even after a rollback took it off the release stack.
 */
export interface StoreManifest {
  formatVersion: 1;
  latestVersion: number;
  everReleased: number[];
  updatedAt: string;
}

export type ManifestRead =
  | { state: 'absent' }
  | { state: 'ok'; manifest: StoreManifest }
  | { state: 'corrupt'; detail: string };

async function readOptional(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function isManifest(v: unknown): v is StoreManifest {
  if (typeof v !== 'object' || v === null) return false;
  const m = v as Record<string, unknown>;
  return (
    m.formatVersion === 1 &&
    Number.isSafeInteger(m.latestVersion) &&
    Array.isArray(m.everReleased) &&
    m.everReleased.every((x) => Number.isSafeInteger(x))
  );
}

export async function readManifest(dir: string): Promise<ManifestRead> {
  const bytes = await readOptional(join(dir, MANIFEST_NAME));
  if (bytes === null) return { state: 'absent' };
  const c = decodeContainer(bytes, ContainerKind.manifest);
  if (!c.ok) return { state: 'corrupt', detail: c.detail };
  try {
    const v = unpackState(c.payload);
    if (isManifest(v)) return { state: 'ok', manifest: v };
  } catch {
    // reported below
  }
  return { state: 'corrupt', detail: 'manifest verifies but does not hold a manifest' };
}

export async function writeManifest(dir: string, manifest: StoreManifest): Promise<void> {
  await writeFileAtomic(join(dir, MANIFEST_NAME), encodeContainer(ContainerKind.manifest, packState(manifest)));
}

interface SitesPayload {
  formatVersion: 1;
  sites: SiteRecord[];
}

function isSiteRecord(v: unknown): v is SiteRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  const hashOrNull = (x: unknown) => x === null || typeof x === 'string';
  return (
    typeof r.name === 'string' &&
    typeof r.createdAt === 'string' &&
    hashOrNull(r.enrollmentTokenHash) &&
    hashOrNull(r.credentialHash) &&
    typeof r.revoked === 'boolean'
  );
}

/**
 * The site registry has no older copy to fall back to (it holds the credential hashes), so damage refuses the
 * start: continuing without it would lock every site out or, worse, let revoked ones back in.
 */
export async function readSites(dir: string): Promise<SiteRecord[]> {
  const path = join(dir, SITES_NAME);
  const bytes = await readOptional(path);
  if (bytes === null) return [];
  const c = decodeContainer(bytes, ContainerKind.sites);
  let payload: unknown = null;
  if (c.ok) {
    try {
      payload = unpackState(c.payload);
    } catch {
      payload = null;
    }
  }
  const p = payload as Partial<SitesPayload> | null;
  if (!c.ok || p?.formatVersion !== 1 || !Array.isArray(p.sites) || !p.sites.every(isSiteRecord)) {
    throw new FedmetaError(
      ErrorCode.STATE_CORRUPT,
      `the site registry ${path} is damaged (${c.ok ? 'content is not a site list' : c.detail}); restore it from ` +
        'a backup, or move it away and enroll the sites again',
    );
  }
  return p.sites;
}

export async function writeSites(dir: string, sites: SiteRecord[]): Promise<void> {
  const payload: SitesPayload = { formatVersion: 1, sites };
  await writeFileAtomic(join(dir, SITES_NAME), encodeContainer(ContainerKind.sites, packState(payload)));
}
