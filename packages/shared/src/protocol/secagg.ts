import { ErrorCode, FedmetaError } from '../errors.js';
import { SEALED_SHARE_BYTES } from '../secagg/payloads.js';
import { SHARE_BYTES } from '../secagg/shamir.js';
import type { SecAggAdvertisedKeys, SecAggConfig, SecAggEncryptedShare, SecAggShare } from '../secagg/types.js';
import { assertChunkLayout, chunkRange } from './chunks.js';
import { checkRecord, fail, FieldSet, int, num } from './schema.js';

/**
 * The wire form of secure aggregation (packages/shared/src/secagg): what a round offer adds so that a sampled
 * site can join, what its update carries instead of the vector, and one message per phase in each direction.
 * Every phase message names its round and attempt: keys are fresh per attempt, so a message of another attempt
 * is stale before any cryptography looks at it (and would not verify if it did). What a site sends also names
 * the attempt's round id: a coordinator that restarts re-issues the interrupted attempt under the same number
 * (to sample the same sites) but with a new round id, and the masked update, unlike the other phases, carries
 * no signature or AEAD tag bound to it, so only the round id tells an old issue's masked vector from the new.
 */

/** Most sites in one secure-aggregation roster (the largest roster the coordinator offers). */
export const SECAGG_MAX_SITES = 1024;
const KEY = 32;
const SIGNATURE = 64;
const ROUND_ID_MIN = 16;
const ROUND_ID_MAX = 64;

/** What a round offer carries when the round is securely aggregated. */
export interface SecAggOffer {
  /** The round attempt these keys belong to; a re-issued round is a new attempt with a new roster and round id. */
  attempt: number;
  /** Fresh per attempt (16 to 64 bytes); every signature and key derivation is bound to it. */
  roundId: Uint8Array;
  /** Ed25519 identity public keys (32 bytes each) of the sampled sites, in roster order. */
  roster: Uint8Array[];
  /** The recipient's own 1-based index in `roster`. */
  site: number;
  /** Shares needed to rebuild a dropped site's masks, and the fewest sites the sum may cover. */
  threshold: number;
  /** Neighbours per site (SecAgg+); 0 masks between all pairs. */
  degree: number;
  /** L2 norm the site clips its update to before masking. */
  clipNorm: number;
  /** Largest weight (example count) the site may give its update; a larger count is capped at it. */
  maxWeight: number;
}

/**
 * What an update message carries in `secagg` on a securely aggregated round, with `update: null` and
 * `chunks: 0`: no vector, only the attempt it answers and the site's signed fresh keys (phase 1). Counts and
 * metrics stay in plaintext beside it: scalars, not the update.
 */
export interface SecAggUpdateFields {
  attempt: number;
  /** The offer's round id, whole: it is public to the roster already, and equality needs no hashing. */
  roundId: Uint8Array;
  advertise: SecAggAdvertisedKeys;
}

/**
 * The protocol's round config from an offer's secagg field: the coordinator and every site build it from the
 * same fields, so they agree on the context every signature and key is bound to.
 */
export function secAggConfigOf(o: Omit<SecAggOffer, 'site'>, dim: number): SecAggConfig {
  const c: SecAggConfig = { roundId: o.roundId, identities: o.roster, threshold: o.threshold, dim, clipNorm: o.clipNorm, maxWeight: o.maxWeight };
  if (o.degree !== 0) c.degree = o.degree;
  return c;
}

interface Header {
  round: number;
  attempt: number;
}

/**
 * Whether a message's round id is `current`, byte for byte. Round ids are public to the roster, so a plain
 * comparison will do; anything but a byte string (a message that skipped the codec) is another round's.
 */
export function sameRoundId(v: unknown, current: Uint8Array): boolean {
  if (!(v instanceof Uint8Array) || v.length !== current.length) return false;
  for (let i = 0; i < v.length; i++) if (v[i] !== current[i]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------- site → server

/** A site's phase messages also carry its offer's round id, which tells a re-issued attempt from the one before. */
interface SiteHeader extends Header {
  roundId: Uint8Array;
}

/** Phase 2: the site's encrypted shares, one per neighbour that advertised keys. */
export interface SecAggSharesWire extends SiteHeader {
  type: 'secagg-shares';
  site: number;
  shares: SecAggEncryptedShare[];
  selfMaskCommitment: Uint8Array;
}

/**
 * Phase 3: the masked update, 4 × (dim + 1) bytes of little-endian words (the update, then the weight), in
 * `count` pieces laid out as `chunkRange(dim + 1, count, index)` in words. The only form the update leaves in.
 */
export interface SecAggMaskedWire extends SiteHeader {
  type: 'secagg-masked';
  site: number;
  index: number;
  count: number;
  masked: Uint8Array;
}

/** Phase 4: the site's signature over the survivor list it was shown. */
export interface SecAggConfirmWire extends SiteHeader {
  type: 'secagg-confirm';
  site: number;
  signature: Uint8Array;
}

/** Phase 5: self-mask shares of the survivors, key shares of the sites that dropped. */
export interface SecAggUnmaskWire extends SiteHeader {
  type: 'secagg-unmask';
  site: number;
  selfMaskShares: SecAggShare[];
  keyShares: SecAggShare[];
}

// ---------------------------------------------------------------------------------------------- server → site

export interface SecAggKeysWire extends Header {
  type: 'secagg-keys';
  keys: SecAggAdvertisedKeys[];
}

export interface SecAggDeliveryWire extends Header {
  type: 'secagg-delivery';
  shares: { from: number; ciphertext: Uint8Array }[];
}

export interface SecAggSurvivorsWire extends Header {
  type: 'secagg-survivors';
  survivors: number[];
}

export interface SecAggConfirmationsWire extends Header {
  type: 'secagg-confirmations';
  signatures: { site: number; signature: Uint8Array }[];
}

export type SecAggSiteWire = SecAggSharesWire | SecAggMaskedWire | SecAggConfirmWire | SecAggUnmaskWire;
export type SecAggServerWire = SecAggKeysWire | SecAggDeliveryWire | SecAggSurvivorsWire | SecAggConfirmationsWire;


// ---------------------------------------------------------------------------------------------- validation

const OFFER = new FieldSet(['attempt', 'roundId', 'roster', 'site', 'threshold', 'degree', 'clipNorm', 'maxWeight']);
const UPDATE_FIELDS = new FieldSet(['attempt', 'roundId', 'advertise']);
const ADVERTISED = new FieldSet(['site', 'cPublic', 'sPublic', 'signature']);
const ENCRYPTED = new FieldSet(['to', 'ciphertext']);
const DELIVERED = new FieldSet(['from', 'ciphertext']);
const SHARE = new FieldSet(['of', 'value']);
const SIGNED = new FieldSet(['site', 'signature']);
const FIELDS: Record<SecAggSiteWire['type'] | SecAggServerWire['type'], FieldSet> = {
  'secagg-shares': new FieldSet(['type', 'round', 'attempt', 'roundId', 'site', 'shares', 'selfMaskCommitment']),
  'secagg-masked': new FieldSet(['type', 'round', 'attempt', 'roundId', 'site', 'index', 'count', 'masked']),
  'secagg-confirm': new FieldSet(['type', 'round', 'attempt', 'roundId', 'site', 'signature']),
  'secagg-unmask': new FieldSet(['type', 'round', 'attempt', 'roundId', 'site', 'selfMaskShares', 'keyShares']),
  'secagg-keys': new FieldSet(['type', 'round', 'attempt', 'keys']),
  'secagg-delivery': new FieldSet(['type', 'round', 'attempt', 'shares']),
  'secagg-survivors': new FieldSet(['type', 'round', 'attempt', 'survivors']),
  'secagg-confirmations': new FieldSet(['type', 'round', 'attempt', 'signatures']),
};

/**
 * Byte strings arrive as Uint8Array (msgpackr's typed-array extension) or as Buffer (msgpack bin); any other
 * view (another typed array, a DataView) or a length outside [min, max] is refused.
 */
function bytes(v: unknown, path: string, min: number, max = min): Uint8Array {
  const proto = typeof v === 'object' && v !== null ? Object.getPrototypeOf(v) : null;
  if (proto !== Uint8Array.prototype && proto !== Buffer.prototype) fail(path, 'must be a byte string');
  const b = v as Uint8Array;
  if (b.length < min || b.length > max) fail(path, min === max ? `must be ${min} bytes` : `must be ${min} to ${max} bytes`);
  return b;
}

function list(v: unknown, path: string, max: number): unknown[] {
  if (!Array.isArray(v) || Object.getPrototypeOf(v) !== Array.prototype) fail(path, 'must be a list');
  if (v.length > max) fail(path, `must have at most ${max} entries`);
  return v;
}

const index = (v: unknown, path: string): number => int(v, path, 1, SECAGG_MAX_SITES);

/** The secagg field of a round offer. */
export function checkSecAggOffer(v: unknown, path: string): void {
  const o = checkRecord(v, path, OFFER);
  int(o['attempt'], `${path}.attempt`, 0, Number.MAX_SAFE_INTEGER);
  bytes(o['roundId'], `${path}.roundId`, ROUND_ID_MIN, ROUND_ID_MAX);
  const roster = list(o['roster'], `${path}.roster`, SECAGG_MAX_SITES);
  if (roster.length < 2) fail(`${path}.roster`, 'must list at least 2 sites');
  roster.forEach((k, i) => bytes(k, `${path}.roster[${i}]`, KEY));
  const site = index(o['site'], `${path}.site`);
  if (site > roster.length) fail(`${path}.site`, 'must be an index into the roster');
  const t = int(o['threshold'], `${path}.threshold`, 2, roster.length);
  const degree = int(o['degree'], `${path}.degree`, 0, SECAGG_MAX_SITES);
  if (degree % 2 !== 0) fail(`${path}.degree`, 'must be even (0 masks between all pairs)');
  if (degree !== 0 && degree < roster.length - 1 && t > degree + 1) fail(`${path}.threshold`, 'must be at most degree + 1');
  num(o['clipNorm'], `${path}.clipNorm`, Number.MIN_VALUE, Number.MAX_VALUE);
  num(o['maxWeight'], `${path}.maxWeight`, Number.MIN_VALUE, Number.MAX_VALUE);
}

function advertised(v: unknown, path: string): void {
  const k = checkRecord(v, path, ADVERTISED);
  index(k['site'], `${path}.site`);
  bytes(k['cPublic'], `${path}.cPublic`, KEY);
  bytes(k['sPublic'], `${path}.sPublic`, KEY);
  bytes(k['signature'], `${path}.signature`, SIGNATURE);
}

/** The secagg field of an update message (its vector must then be absent: checked by the caller). */
export function checkSecAggUpdateFields(v: unknown, path: string): void {
  const o = checkRecord(v, path, UPDATE_FIELDS);
  int(o['attempt'], `${path}.attempt`, 0, Number.MAX_SAFE_INTEGER);
  bytes(o['roundId'], `${path}.roundId`, ROUND_ID_MIN, ROUND_ID_MAX);
  advertised(o['advertise'], `${path}.advertise`);
}

/**
 * One phase message, either direction. `dim` is the update length the receiver expects (its own model), used
 * to check a masked piece's length against the layout its index and count imply; undefined skips that check.
 */
export function checkSecAggMessage(o: Record<string, unknown>, type: SecAggSiteWire['type'] | SecAggServerWire['type'], dim: number | undefined): void {
  checkRecord(o, type, FIELDS[type]);
  int(o['round'], `${type}.round`, 0, Number.MAX_SAFE_INTEGER);
  int(o['attempt'], `${type}.attempt`, 0, Number.MAX_SAFE_INTEGER);
  // Present exactly on what a site sends (the field sets say which).
  if (Object.hasOwn(o, 'roundId')) bytes(o['roundId'], `${type}.roundId`, ROUND_ID_MIN, ROUND_ID_MAX);
  if (Object.hasOwn(o, 'site')) index(o['site'], `${type}.site`);
  const n = SECAGG_MAX_SITES;
  switch (type) {
    case 'secagg-shares':
      list(o['shares'], `${type}.shares`, n).forEach((s, i) => {
        const e = checkRecord(s, `${type}.shares[${i}]`, ENCRYPTED);
        index(e['to'], `${type}.shares[${i}].to`);
        bytes(e['ciphertext'], `${type}.shares[${i}].ciphertext`, SEALED_SHARE_BYTES);
      });
      bytes(o['selfMaskCommitment'], `${type}.selfMaskCommitment`, 32);
      return;
    case 'secagg-masked':
      return masked(o, dim);
    case 'secagg-confirm':
      bytes(o['signature'], `${type}.signature`, SIGNATURE);
      return;
    case 'secagg-unmask':
      for (const field of ['selfMaskShares', 'keyShares'] as const) {
        list(o[field], `${type}.${field}`, n).forEach((s, i) => {
          const e = checkRecord(s, `${type}.${field}[${i}]`, SHARE);
          index(e['of'], `${type}.${field}[${i}].of`);
          bytes(e['value'], `${type}.${field}[${i}].value`, SHARE_BYTES);
        });
      }
      return;
    case 'secagg-keys':
      list(o['keys'], `${type}.keys`, n).forEach((k, i) => advertised(k, `${type}.keys[${i}]`));
      return;
    case 'secagg-delivery':
      list(o['shares'], `${type}.shares`, n).forEach((s, i) => {
        const e = checkRecord(s, `${type}.shares[${i}]`, DELIVERED);
        index(e['from'], `${type}.shares[${i}].from`);
        bytes(e['ciphertext'], `${type}.shares[${i}].ciphertext`, SEALED_SHARE_BYTES);
      });
      return;
    case 'secagg-survivors':
      list(o['survivors'], `${type}.survivors`, n).forEach((s, i) => index(s, `${type}.survivors[${i}]`));
      return;
    case 'secagg-confirmations':
      list(o['signatures'], `${type}.signatures`, n).forEach((s, i) => {
        const e = checkRecord(s, `${type}.signatures[${i}]`, SIGNED);
        index(e['site'], `${type}.signatures[${i}].site`);
        bytes(e['signature'], `${type}.signatures[${i}].signature`, SIGNATURE);
      });
      return;
  }
}

/** Largest update length whose masked words (plus the weight word) a message may describe. */
const MAX_WORDS = (1 << 26) + 1;

function masked(o: Record<string, unknown>, dim: number | undefined): void {
  const type = 'secagg-masked';
  const count = int(o['count'], `${type}.count`, 1, 1 << 16);
  const at = int(o['index'], `${type}.index`, 0, (1 << 16) - 1);
  if (at >= count) throw new FedmetaError(ErrorCode.CHUNK, `${type}.index ${at} is outside 0..${count - 1}; the sender must number pieces from 0`);
  const b = bytes(o['masked'], `${type}.masked`, 4, 4 * MAX_WORDS);
  if (b.length % 4 !== 0) fail(`${type}.masked`, 'must be whole 32-bit words');
  if (dim === undefined) return;
  assertChunkLayout(dim + 1, count);
  const { start, end } = chunkRange(dim + 1, count, at);
  if (b.length !== 4 * (end - start)) {
    throw new FedmetaError(
      ErrorCode.WRONG_LENGTH,
      `${type} piece ${at} of ${count} has ${b.length / 4} words but ${end - start} were expected for an update of ${dim}; the site and the coordinator must use the same model`,
    );
  }
}
