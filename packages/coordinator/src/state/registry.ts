import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorCode, FedmetaError, identityFromCredential } from '@fedmeta/shared';
import type { StateStore } from './store.js';
import type { SiteRecord } from './types.js';

/**
 * Site enrollment and authentication. Secrets are 32 random bytes (base64url) behind a prefix that says what they
 * are, so a token pasted where a credential belongs is recognised. The store keeps only their sha256: the secrets
 * have 256 bits of entropy, so a fast hash is enough and a stolen registry reveals nothing usable.
 */
export const ENROLLMENT_TOKEN_PREFIX = 'fmE_';
export const CREDENTIAL_PREFIX = 'fmC_';
const SECRET_BYTES = 32;
const SECRET_RE = /^[A-Za-z0-9_-]{43}$/;
const SITE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ZERO_HASH = '0'.repeat(64);

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

function newSecret(prefix: string): string {
  return prefix + randomBytes(SECRET_BYTES).toString('base64url');
}

/** Compares two hex sha256 digests in time that does not depend on where they differ. */
export function hashesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  if (x.length !== 32 || y.length !== 32) {
    timingSafeEqual(x.length === 32 ? x : Buffer.alloc(32), Buffer.alloc(32));
    return false;
  }
  return timingSafeEqual(x, y);
}

function looksLike(secret: string, prefix: string): boolean {
  return secret.startsWith(prefix) && SECRET_RE.test(secret.slice(prefix.length));
}

export function checkSiteName(name: string): void {
  if (!SITE_NAME_RE.test(name)) {
    throw new FedmetaError(
      ErrorCode.PRECONDITION,
      'a site name is 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit',
    );
  }
}

/** A new site record and its one-time enrollment token (shown once to the operator, never stored). */
export function createEnrollment(name: string, now: Date = new Date()): { token: string; record: SiteRecord } {
  checkSiteName(name);
  const token = newSecret(ENROLLMENT_TOKEN_PREFIX);
  const record: SiteRecord = {
    name,
    createdAt: now.toISOString(),
    enrollmentTokenHash: hashSecret(token),
    credentialHash: null,
    identityKey: null,
    revoked: false,
    lastSeen: null,
    usedEnrollmentTokenHash: null,
    enrolledAt: null,
    revokedAt: null,
  };
  return { token, record };
}

/**
 * Registers a site and returns its enrollment token. An existing name is refused unless `reissue` is set, which
 * replaces its enrollment (and any credential, and a revocation) with a fresh token: the way to re-admit a site.
 */
export async function addSite(
  store: StateStore,
  name: string,
  opts: { reissue?: boolean } = {},
): Promise<{ token: string; record: SiteRecord }> {
  const { token, record } = createEnrollment(name);
  const saved = await store.updateSite(name, (cur) => {
    if (cur && !opts.reissue) {
      throw new FedmetaError(
        ErrorCode.PRECONDITION,
        `site ${name} is already registered; choose another name, or reissue its enrollment to replace its credential`,
      );
    }
    return cur ? { ...record, createdAt: cur.createdAt } : record;
  });
  return { token, record: saved };
}

function unknownSite(name: string): FedmetaError {
  // The name comes from the peer: echo it only when it is a well-formed name, never arbitrary text into a log.
  if (!SITE_NAME_RE.test(name)) {
    return new FedmetaError(ErrorCode.UNKNOWN_SITE, 'the site name given is not a valid site name; check the agent config');
  }
  return new FedmetaError(
    ErrorCode.UNKNOWN_SITE,
    `no site named ${name} is registered; ask the coordinator's operator to add it (sites add ${name})`,
  );
}

function revokedSite(name: string): FedmetaError {
  return new FedmetaError(
    ErrorCode.REVOKED,
    `site ${name} has been revoked; ask the coordinator's operator to reissue its enrollment`,
  );
}

/**
 * The pure decision behind `enroll`: what a presented enrollment token means for this record. Returns the record
 * after enrollment, with the credential's hash; throws the coded refusal otherwise.
 */
export function redeemEnrollment(
  name: string,
  current: SiteRecord | null,
  token: string,
  credentialHash: string,
  now: Date = new Date(),
): SiteRecord {
  if (!current) throw unknownSite(name);
  if (current.revoked) throw revokedSite(name);
  if (looksLike(token, CREDENTIAL_PREFIX)) {
    throw new FedmetaError(
      ErrorCode.UNAUTHENTICATED,
      'a site credential was given where the enrollment token is expected; configure the agent with it as its credential',
    );
  }
  const presented = hashSecret(token);
  if (current.enrollmentTokenHash === null) {
    if (current.usedEnrollmentTokenHash && hashesEqual(presented, current.usedEnrollmentTokenHash)) {
      throw new FedmetaError(
        ErrorCode.TOKEN_REUSED,
        `the enrollment token of site ${name} has already been used; configure the agent with the credential it ` +
          'received, or ask the operator to reissue the enrollment',
      );
    }
    throw new FedmetaError(
      ErrorCode.UNAUTHENTICATED,
      `site ${name} has no pending enrollment and this token is not its; use the site's credential`,
    );
  }
  if (!looksLike(token, ENROLLMENT_TOKEN_PREFIX) || !hashesEqual(presented, current.enrollmentTokenHash)) {
    throw new FedmetaError(
      ErrorCode.UNAUTHENTICATED,
      `the enrollment token for site ${name} is wrong; copy the token that "sites add" printed`,
    );
  }
  return {
    ...current,
    enrollmentTokenHash: null,
    usedEnrollmentTokenHash: presented,
    credentialHash,
    enrolledAt: now.toISOString(),
  };
}

/**
 * The site's Ed25519 identity public key (hex), as secure aggregation verifies its signatures: derived from the
 * credential (HKDF, `identityFromCredential`), so the site needs nothing beyond the credential it stores.
 */
export function identityKeyOf(credential: string): string {
  return Buffer.from(identityFromCredential(credential).publicKey).toString('hex');
}

/**
 * Exchanges a one-time enrollment token for the site's long-lived credential; durable before it is returned.
 * The record keeps the credential's hash and the identity public key derived from it, never the credential.
 */
export async function enroll(store: StateStore, name: string, token: string): Promise<string> {
  const credential = newSecret(CREDENTIAL_PREFIX);
  const credentialHash = hashSecret(credential);
  const identityKey = identityKeyOf(credential);
  await store.updateSite(name, (cur) => ({ ...redeemEnrollment(name, cur, token, credentialHash), identityKey }));
  return credential;
}

/**
 * The identity public key of a site that has just authenticated with `credential`. A site enrolled before the
 * registry kept identity keys has none: it is derived from the credential now (the coordinator sees the
 * credential at every connection anyway, so this learns nothing more than enrollment would have) and stored,
 * so the site joins securely aggregated rounds without re-enrolling.
 */
export async function siteIdentity(store: StateStore, record: SiteRecord, credential: string): Promise<Uint8Array> {
  const derived = identityKeyOf(credential);
  if (record.identityKey !== derived) {
    await store.updateSite(record.name, (cur) => {
      if (!cur) throw unknownSite(record.name);
      // A credential reissued meanwhile has its own key: leave that record alone.
      return cur.credentialHash === record.credentialHash ? { ...cur, identityKey: derived } : cur;
    });
  }
  return new Uint8Array(Buffer.from(derived, 'hex'));
}

/** The pure decision behind `authenticate`. */
export function checkCredential(name: string, current: SiteRecord | null, credential: string): SiteRecord {
  const presented = hashSecret(credential);
  if (!current) {
    hashesEqual(presented, ZERO_HASH); // same work as a known site, so timing does not tell names apart as much
    throw unknownSite(name);
  }
  if (current.revoked) throw revokedSite(name);
  if (current.credentialHash === null) {
    throw new FedmetaError(
      ErrorCode.UNAUTHENTICATED,
      `site ${name} has not enrolled yet; start the agent with the enrollment token that "sites add" printed`,
    );
  }
  const matches = hashesEqual(presented, current.credentialHash);
  if (!matches || !looksLike(credential, CREDENTIAL_PREFIX)) {
    const hint = looksLike(credential, ENROLLMENT_TOKEN_PREFIX)
      ? 'an enrollment token was given where the credential is expected'
      : 'the credential is wrong';
    throw new FedmetaError(
      ErrorCode.UNAUTHENTICATED,
      `${hint} for site ${name}; configure the agent with the credential it received at enrollment`,
    );
  }
  return current;
}

/** Checks a site's credential; returns its record. Updating `lastSeen` is left to the caller. */
export async function authenticate(store: StateStore, name: string, credential: string): Promise<SiteRecord> {
  return checkCredential(name, await store.getSite(name), credential);
}

/** Revokes a site: its credential and any pending enrollment stop working at once. Idempotent. */
export async function revoke(store: StateStore, name: string, now: Date = new Date()): Promise<SiteRecord> {
  return store.updateSite(name, (cur) => {
    if (!cur) throw unknownSite(name);
    if (cur.revoked) return cur;
    return { ...cur, revoked: true, enrollmentTokenHash: null, revokedAt: now.toISOString() };
  });
}
