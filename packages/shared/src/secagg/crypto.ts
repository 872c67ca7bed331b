import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { ErrorCode, FedmetaError } from '../errors.js';
import type { SecAggIdentity } from './types.js';

/**
 * The primitives of secure aggregation, all from node:crypto: X25519 key agreement, HKDF-SHA256, AES-256-GCM
 * for the shares and Ed25519 signatures for the key messages. Every derivation and every signed or
 * authenticated payload starts with a domain label and the round context digest, so a value made for one
 * purpose or one round never verifies as another.
 */
export const KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const AEAD_OVERHEAD = NONCE_BYTES + TAG_BYTES;

/*
 * node:crypto takes keys as DER, PEM, JWK or KeyObjects, not raw bytes. Raw public keys go through JWK, which
 * imports about ten times faster than DER; a private key rebuilt from its raw bytes has no public half for a
 * JWK, so it goes through the PKCS#8 DER wrapper of RFC 8410.
 */
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');

function rawPublic(key: KeyObject): Uint8Array {
  const x = key.export({ format: 'jwk' }).x;
  return new Uint8Array(Buffer.from(x ?? '', 'base64url'));
}

function publicFromRaw(raw: Uint8Array, crv: 'X25519' | 'Ed25519'): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv, x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

function authError(what: string): FedmetaError {
  return new FedmetaError(ErrorCode.SECAGG_AUTH, what);
}

function checkRaw(bytes: Uint8Array, what: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== KEY_BYTES) {
    throw new FedmetaError(ErrorCode.WRONG_LENGTH, `${what} must be ${KEY_BYTES} raw bytes`);
  }
}

/** Length-prefixed concatenation, so that no two different part lists give the same bytes. */
export function encodeParts(parts: readonly (Uint8Array | string | number)[]): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const body = typeof p === 'string' ? Buffer.from(p, 'utf8') : typeof p === 'number' ? u32(p) : Buffer.from(p);
    chunks.push(u32(body.length), body);
  }
  return Buffer.concat(chunks);
}

function u32(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new FedmetaError(ErrorCode.PRECONDITION, 'an encoded integer must lie in 0..2^32-1');
  }
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

// ---------------------------------------------------------------------------------------------- identities

/**
 * A site's signing identity derived from its credential: HKDF(credential) is the Ed25519 seed. The site needs
 * nothing beyond the credential it already stores. The coordinator sees the credential once, when it issues
 * it, and records only the public key then; a coordinator that kept the credential could sign as the site, so
 * where the server is not trusted with that, use `generateIdentity` and enroll the public key instead.
 */
export function identityFromCredential(credential: string): SecAggIdentity {
  if (credential.length === 0) throw new FedmetaError(ErrorCode.PRECONDITION, 'a credential is needed to derive the secure-aggregation identity');
  const seed = new Uint8Array(hkdfSync('sha256', Buffer.from(credential, 'utf8'), 'fedmeta-secagg-v1', 'identity', KEY_BYTES));
  return identityFromSeed(seed);
}

export function generateIdentity(): SecAggIdentity {
  return identityFromSeed(new Uint8Array(randomBytes(KEY_BYTES)));
}

export function identityFromSeed(seed: Uint8Array): SecAggIdentity {
  checkRaw(seed, 'an identity seed');
  const key = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, seed]), format: 'der', type: 'pkcs8' });
  return { privateKey: new Uint8Array(seed), publicKey: rawPublic(createPublicKey(key)) };
}

/** The KeyObject of an identity seed; callers keep it, as building one costs more than a signature. */
export function identitySigningKey(seed: Uint8Array): KeyObject {
  checkRaw(seed, 'an identity seed');
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, seed]), format: 'der', type: 'pkcs8' });
}

/** The raw public key of a signing KeyObject (to compare with the roster). */
export function signingPublicKey(key: KeyObject): Uint8Array {
  return rawPublic(createPublicKey(key));
}

/** The KeyObject of a raw Ed25519 public key, or null when the bytes are not one. */
export function identityVerifyKey(publicKey: Uint8Array): KeyObject | null {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== KEY_BYTES) return null;
  try {
    return publicFromRaw(publicKey, 'Ed25519');
  } catch {
    return null;
  }
}

export function signParts(key: KeyObject, parts: readonly (Uint8Array | string | number)[]): Uint8Array {
  return new Uint8Array(sign(null, encodeParts(parts), key));
}

export function verifyParts(key: KeyObject | null, signature: Uint8Array, parts: readonly (Uint8Array | string | number)[]): boolean {
  if (key === null || !(signature instanceof Uint8Array) || signature.length !== SIGNATURE_BYTES) return false;
  try {
    return verify(null, encodeParts(parts), key, signature);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------- X25519

export interface X25519Pair {
  privateKey: KeyObject;
  publicKey: Uint8Array;
}

export function generateX25519(): X25519Pair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey, publicKey: rawPublic(publicKey) };
}

export function x25519PrivateRaw(key: KeyObject): Uint8Array {
  return new Uint8Array(Buffer.from(key.export({ format: 'jwk' }).d ?? '', 'base64url'));
}

export function x25519FromRaw(raw: Uint8Array): X25519Pair {
  checkRaw(raw, 'an X25519 private key');
  const privateKey = createPrivateKey({ key: Buffer.concat([X25519_PKCS8, raw]), format: 'der', type: 'pkcs8' });
  return { privateKey, publicKey: rawPublic(createPublicKey(privateKey)) };
}

export function x25519PublicKey(raw: Uint8Array): KeyObject {
  checkRaw(raw, 'an X25519 public key');
  try {
    return publicFromRaw(raw, 'X25519');
  } catch {
    throw authError('a peer advertised bytes that are not an X25519 key; the round must be re-run without that site');
  }
}

/**
 * HKDF-SHA256 of the X25519 shared secret, salted with the round context and labelled with the purpose and
 * the ordered pair of sites. A low-order public key (all-zero shared secret) is refused.
 */
export function agree(privateKey: KeyObject, peerPublic: KeyObject, context: Uint8Array, label: string, a: number, b: number): Uint8Array {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey, publicKey: peerPublic });
  } catch {
    throw authError('a peer advertised an invalid X25519 key; the round must be re-run without that site');
  }
  return new Uint8Array(hkdfSync('sha256', shared, context, encodeParts([label, a, b]), KEY_BYTES));
}

/** HKDF of a 32-byte seed into a PRG key for one purpose in one round. */
export function deriveKey(seed: Uint8Array, context: Uint8Array, label: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', seed, context, encodeParts([label]), KEY_BYTES));
}

// ---------------------------------------------------------------------------------------------- shares AEAD

function shareAad(context: Uint8Array, from: number, to: number): Buffer {
  return encodeParts(['fedmeta-secagg-v1 share', context, from, to]);
}

/** AES-256-GCM under a pairwise key; the AAD binds the round context and the (from, to) pair. */
export function sealShare(key: Uint8Array, context: Uint8Array, from: number, to: number, plaintext: Uint8Array): Uint8Array {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(shareAad(context, from, to));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return new Uint8Array(Buffer.concat([nonce, body, cipher.getAuthTag()]));
}

export function openShare(key: Uint8Array, context: Uint8Array, from: number, to: number, sealed: Uint8Array): Uint8Array {
  if (!(sealed instanceof Uint8Array) || sealed.length < AEAD_OVERHEAD) {
    throw authError(`the encrypted share from site ${from} is truncated; the round must be re-run`);
  }
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const body = sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(shareAad(context, from, to));
    decipher.setAuthTag(tag);
    return new Uint8Array(Buffer.concat([decipher.update(body), decipher.final()]));
  } catch {
    throw authError(
      `the encrypted share from site ${from} does not authenticate (altered, or made for another round or site); the round must be re-run`,
    );
  }
}
