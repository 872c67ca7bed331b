import { createHash } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { ErrorCode, FedmetaError } from '../errors.js';
import { AEAD_OVERHEAD, encodeParts, KEY_BYTES, signParts, SIGNATURE_BYTES, verifyParts } from './crypto.js';
import type { SecAggSession } from './session.js';
import { SHARE_BYTES } from './shamir.js';

/**
 * The byte layouts both ends must agree on (signed payloads, the share plaintext) and the shape checks every
 * incoming message passes before any of it is used. Messages come off the network: a field of the wrong
 * type or length is a SCHEMA refusal, never an exception from deep inside the crypto.
 */

const SHARE_PLAINTEXT_BYTES = 8 + 2 * SHARE_BYTES;
export const SEALED_SHARE_BYTES = SHARE_PLAINTEXT_BYTES + AEAD_OVERHEAD;

export function schemaError(what: string): FedmetaError {
  return new FedmetaError(ErrorCode.SCHEMA, `secure-aggregation message refused: ${what}`);
}

export function checkBytes(x: unknown, length: number, what: string): asserts x is Uint8Array {
  if (!(x instanceof Uint8Array) || x.length !== length) throw schemaError(`${what} must be ${length} bytes`);
}

export function checkList(x: unknown, max: number, what: string): asserts x is unknown[] {
  if (!Array.isArray(x) || x.length > max) throw schemaError(`${what} must be a list of at most ${max} entries`);
}

export function checkObject(x: unknown, type: string): asserts x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null || (x as { type?: unknown }).type !== type) {
    throw schemaError(`expected a ${type} message`);
  }
}

/** Sorted, distinct roster indices, or a SCHEMA refusal. */
export function checkIndexList(s: SecAggSession, x: unknown, what: string): number[] {
  checkList(x, s.n, what);
  let prev = 0;
  for (const v of x) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= prev || v > s.n) {
      throw schemaError(`${what} must be increasing roster indices in 1..${s.n}`);
    }
    prev = v;
  }
  return x as number[];
}

// ---------------------------------------------------------------------------------------------- signatures

function advertiseParts(s: SecAggSession, site: number, cPublic: Uint8Array, sPublic: Uint8Array): (Uint8Array | string | number)[] {
  return ['fedmeta-secagg-v1 advertise', s.context, site, cPublic, sPublic];
}

function survivorsParts(s: SecAggSession, survivors: readonly number[]): (Uint8Array | string | number)[] {
  // One part of 4-byte big-endian indices: a list of a thousand survivors stays one allocation.
  const list = new Uint8Array(4 * survivors.length);
  const view = new DataView(list.buffer);
  survivors.forEach((v, i) => view.setUint32(4 * i, v));
  return ['fedmeta-secagg-v1 survivors', s.context, list];
}

export function signAdvertise(s: SecAggSession, key: KeyObject, site: number, cPublic: Uint8Array, sPublic: Uint8Array): Uint8Array {
  return signParts(key, advertiseParts(s, site, cPublic, sPublic));
}

export function verifyAdvertise(
  s: SecAggSession,
  keys: { site: number; cPublic: Uint8Array; sPublic: Uint8Array; signature: Uint8Array },
): boolean {
  return verifyParts(s.identityKey(keys.site), keys.signature, advertiseParts(s, keys.site, keys.cPublic, keys.sPublic));
}

export function signSurvivors(s: SecAggSession, key: KeyObject, survivors: readonly number[]): Uint8Array {
  return signParts(key, survivorsParts(s, survivors));
}

export function verifySurvivors(s: SecAggSession, site: number, signature: Uint8Array, survivors: readonly number[]): boolean {
  return verifyParts(s.identityKey(site), signature, survivorsParts(s, survivors));
}

/** Checks an advertised key triple's shape (not its signature). */
export function checkAdvertisedShape(s: SecAggSession, k: unknown): { site: number; cPublic: Uint8Array; sPublic: Uint8Array; signature: Uint8Array } {
  if (typeof k !== 'object' || k === null) throw schemaError('an advertised key entry must be an object');
  const e = k as Record<string, unknown>;
  const site = e['site'];
  if (typeof site !== 'number' || !Number.isInteger(site) || site < 1 || site > s.n) {
    throw schemaError(`an advertised key names site ${String(site)}, outside the roster of ${s.n}`);
  }
  checkBytes(e['cPublic'], KEY_BYTES, 'cPublic');
  checkBytes(e['sPublic'], KEY_BYTES, 'sPublic');
  checkBytes(e['signature'], SIGNATURE_BYTES, 'signature');
  return { site, cPublic: e['cPublic'], sPublic: e['sPublic'], signature: e['signature'] };
}

export function selfMaskCommitment(s: SecAggSession, site: number, seed: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(encodeParts(['fedmeta-secagg-v1 self-mask commitment', s.context, site, seed])).digest());
}

// ---------------------------------------------------------------------------------------------- share plaintext

export function encodeSharePlaintext(from: number, to: number, selfMaskShare: Uint8Array, keyShare: Uint8Array): Uint8Array {
  const out = new Uint8Array(SHARE_PLAINTEXT_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, from);
  view.setUint32(4, to);
  out.set(selfMaskShare, 8);
  out.set(keyShare, 8 + SHARE_BYTES);
  return out;
}

/**
 * The plaintext names its sender and recipient again (as the protocol of Bonawitz et al. does), on top of the
 * AAD binding: a share the server moved to another recipient fails here even under a key it could not break.
 */
export function decodeSharePlaintext(plain: Uint8Array, from: number, to: number): { selfMaskShare: Uint8Array; keyShare: Uint8Array } {
  if (plain.length !== SHARE_PLAINTEXT_BYTES) {
    throw new FedmetaError(ErrorCode.SECAGG_AUTH, `the share from site ${from} has the wrong length; the round must be re-run`);
  }
  const view = new DataView(plain.buffer, plain.byteOffset, plain.length);
  if (view.getUint32(0) !== from || view.getUint32(4) !== to) {
    throw new FedmetaError(ErrorCode.SECAGG_AUTH, `the share from site ${from} was addressed to another pair of sites; the round must be re-run`);
  }
  return {
    selfMaskShare: plain.slice(8, 8 + SHARE_BYTES),
    keyShare: plain.slice(8 + SHARE_BYTES, 8 + 2 * SHARE_BYTES),
  };
}
