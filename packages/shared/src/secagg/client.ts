import { randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { ErrorCode, FedmetaError, isFedmetaError } from '../errors.js';
import { agree, deriveKey, generateX25519, identitySigningKey, openShare, sealShare, signingPublicKey, x25519PrivateRaw, x25519PublicKey } from './crypto.js';
import type { X25519Pair } from './crypto.js';
import {
  checkAdvertisedShape,
  checkBytes,
  checkIndexList,
  checkList,
  checkObject,
  decodeSharePlaintext,
  encodeSharePlaintext,
  schemaError,
  SEALED_SHARE_BYTES,
  selfMaskCommitment,
  signAdvertise,
  signSurvivors,
  verifyAdvertise,
  verifySurvivors,
} from './payloads.js';
import { applyMask, bytesFromWords } from './prg.js';
import { quantize } from './quantize.js';
import { openSession, requireQuorum } from './session.js';
import type { SecAggSession } from './session.js';
import { splitSecret } from './shamir.js';
import type {
  SecAggAdvertiseMessage,
  SecAggClientPhase,
  SecAggConfig,
  SecAggConfirmationsMessage,
  SecAggConfirmMessage,
  SecAggDeliveryMessage,
  SecAggKeysMessage,
  SecAggMaskedMessage,
  SecAggShare,
  SecAggSharesMessage,
  SecAggSurvivorsMessage,
  SecAggUnmaskMessage,
} from './types.js';

interface Peer {
  cPublic: KeyObject;
  sPublic: KeyObject;
}

interface Held {
  selfMaskShare: Uint8Array;
  keyShare: Uint8Array;
}

/**
 * One site's side of one secure-aggregation round: a pure state machine, one method per phase, each taking the
 * server's message and returning the site's answer. A check that fails (a bad signature, a share that does not
 * authenticate, too few sites) aborts this client for good and forgets its secrets; calling a method out of
 * order is refused without changing anything.
 */
export class SecAggClient {
  readonly site: number;
  private readonly s: SecAggSession;
  private readonly signingKey: KeyObject;
  private state: SecAggClientPhase = 'advertise';
  private cKeys: X25519Pair | null = null;
  private sKeys: X25519Pair | null = null;
  private selfMaskSeed: Uint8Array | null = null;
  private peers = new Map<number, Peer>();
  private held = new Map<number, Held>();
  /** This site and the neighbours whose shares it holds (its view of the sites that shared keys). */
  private sharedWith: number[] = [];
  private survivors: number[] = [];
  private survivorSet = new Set<number>();

  constructor(config: SecAggConfig, site: number, identitySeed: Uint8Array) {
    this.s = openSession(config);
    if (!Number.isInteger(site) || site < 1 || site > this.s.n) {
      throw new FedmetaError(ErrorCode.CONFIG, `site index ${site} is outside the roster of ${this.s.n}`);
    }
    const signingKey = identitySigningKey(identitySeed);
    const mine = signingPublicKey(signingKey);
    if (!Buffer.from(mine).equals(Buffer.from(this.s.identities[site - 1] as Uint8Array))) {
      throw new FedmetaError(ErrorCode.CONFIG, `the roster lists another identity key for site ${site}; re-enroll this site or fix the roster`);
    }
    this.site = site;
    this.signingKey = signingKey;
  }

  get phase(): SecAggClientPhase {
    return this.state;
  }

  /** Phase 1: fresh X25519 keys for this round, signed with the site's identity. */
  advertise(): SecAggAdvertiseMessage {
    return this.step('advertise', 'share', () => {
      this.cKeys = generateX25519();
      this.sKeys = generateX25519();
      const { publicKey: cPublic } = this.cKeys;
      const { publicKey: sPublic } = this.sKeys;
      const signature = signAdvertise(this.s, this.signingKey, this.site, cPublic, sPublic);
      return { type: 'secagg-advertise', site: this.site, cPublic, sPublic, signature };
    });
  }

  /** Phase 2: checks the neighbours' signed keys, then shares b_u and the masking key among them, encrypted. */
  shareKeys(msg: SecAggKeysMessage): SecAggSharesMessage {
    return this.step('share', 'mask', () => {
      checkObject(msg, 'secagg-keys');
      const holders = this.s.graph.holders(this.site);
      checkList(msg.keys, holders.length, 'keys');
      const holderSet = new Set(holders);
      const listed = new Set<number>();
      for (const raw of msg.keys) {
        const k = checkAdvertisedShape(this.s, raw);
        if (!holderSet.has(k.site) || listed.has(k.site)) throw schemaError(`site ${k.site} is not a neighbour of site ${this.site}, or is listed twice`);
        if (!verifyAdvertise(this.s, k)) {
          throw new FedmetaError(ErrorCode.SECAGG_AUTH, `the keys of site ${k.site} do not carry its signature for this round; the round must be re-run`);
        }
        if (k.site === this.site) {
          const own = this.cKeys as X25519Pair;
          const sOwn = this.sKeys as X25519Pair;
          if (!Buffer.from(k.cPublic).equals(Buffer.from(own.publicKey)) || !Buffer.from(k.sPublic).equals(Buffer.from(sOwn.publicKey))) {
            throw new FedmetaError(ErrorCode.SECAGG_AUTH, 'the server returned other keys for this site than it advertised; the round must be re-run');
          }
        } else {
          this.peers.set(k.site, { cPublic: x25519PublicKey(k.cPublic), sPublic: x25519PublicKey(k.sPublic) });
        }
        listed.add(k.site);
      }
      if (!listed.has(this.site)) throw schemaError('the key list must include the recipient site itself');
      requireQuorum(this.s, listed.size, 'advertise');
      const xs = [...listed].sort((a, b) => a - b);

      const seed = new Uint8Array(randomBytes(32));
      this.selfMaskSeed = seed;
      const sRaw = x25519PrivateRaw((this.sKeys as X25519Pair).privateKey);
      const bShares = splitSecret(seed, xs, this.s.threshold);
      const sShares = splitSecret(sRaw, xs, this.s.threshold);
      sRaw.fill(0);
      const shares = [];
      for (let i = 0; i < xs.length; i++) {
        const to = xs[i] as number;
        const b = (bShares[i] as { value: Uint8Array }).value;
        const sk = (sShares[i] as { value: Uint8Array }).value;
        if (to === this.site) {
          this.held.set(to, { selfMaskShare: b, keyShare: sk });
          continue;
        }
        const key = agree((this.cKeys as X25519Pair).privateKey, (this.peers.get(to) as Peer).cPublic, this.s.context, 'share', this.site, to);
        shares.push({ to, ciphertext: sealShare(key, this.s.context, this.site, to, encodeSharePlaintext(this.site, to, b, sk)) });
      }
      return { type: 'secagg-shares', site: this.site, shares, selfMaskCommitment: selfMaskCommitment(this.s, this.site, seed) };
    });
  }

  /**
   * Phase 3: opens the shares addressed to this site, then masks the clipped, quantized update:
   * y = x + PRG(b_u) + Σ_{v<u} PRG(s_uv) − Σ_{v>u} PRG(s_uv) mod 2^32 over the neighbours that shared keys.
   * A bad vector or weight is refused before anything changes, so the caller may retry with a fixed one.
   */
  maskInput(msg: SecAggDeliveryMessage, vector: Float32Array, weight = 1): SecAggMaskedMessage {
    if (this.state !== 'mask') this.wrongPhase('mask');
    if (!(vector instanceof Float32Array) || vector.length !== this.s.dim) {
      throw new FedmetaError(ErrorCode.WRONG_LENGTH, `the update has ${vector?.length ?? 0} values but this round aggregates ${this.s.dim}`);
    }
    const words = quantize(this.s.quantizer, vector, weight);
    return this.step('mask', 'confirm', () => {
      checkObject(msg, 'secagg-delivery');
      checkList(msg.shares, this.peers.size, 'shares');
      const from: number[] = [this.site];
      const c = (this.cKeys as X25519Pair).privateKey;
      for (const raw of msg.shares) {
        const e = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
        const v = e['from'];
        if (typeof v !== 'number' || !this.peers.has(v) || this.held.has(v)) throw schemaError('a delivered share names a sender that is not a neighbour, or twice');
        checkBytes(e['ciphertext'], SEALED_SHARE_BYTES, 'an encrypted share');
        const key = agree(c, (this.peers.get(v) as Peer).cPublic, this.s.context, 'share', v, this.site);
        this.held.set(v, decodeSharePlaintext(openShare(key, this.s.context, v, this.site, e['ciphertext']), v, this.site));
        from.push(v);
      }
      requireQuorum(this.s, from.length, 'share');
      this.sharedWith = from.sort((a, b) => a - b);

      applyMask(words, deriveKey(this.selfMaskSeed as Uint8Array, this.s.context, 'self-mask'), 1);
      const sPriv = (this.sKeys as X25519Pair).privateKey;
      for (const v of this.sharedWith) {
        if (v === this.site) continue;
        const seed = agree(sPriv, (this.peers.get(v) as Peer).sPublic, this.s.context, 'pair-mask', Math.min(v, this.site), Math.max(v, this.site));
        applyMask(words, seed, v < this.site ? 1 : -1);
      }
      return { type: 'secagg-masked', site: this.site, masked: bytesFromWords(words) };
    });
  }

  /** Phase 4: signs the survivor list, after checking it names this site and only sites that shared keys. */
  confirm(msg: SecAggSurvivorsMessage): SecAggConfirmMessage {
    return this.step('confirm', 'unmask', () => {
      checkObject(msg, 'secagg-survivors');
      const survivors = checkIndexList(this.s, msg.survivors, 'survivors');
      if (!survivors.includes(this.site)) throw schemaError('the survivor list must include the recipient site');
      requireQuorum(this.s, survivors.length, 'masked input');
      const shared = new Set(this.sharedWith);
      for (const v of survivors) {
        if (this.s.graph.isNeighbour(this.site, v) && !shared.has(v)) {
          throw new FedmetaError(ErrorCode.SECAGG_AUTH, `the server lists site ${v} as a survivor but it never shared keys with this site; the round must be re-run`);
        }
      }
      this.survivors = [...survivors];
      this.survivorSet = new Set(survivors);
      return { type: 'secagg-confirm', site: this.site, signature: signSurvivors(this.s, this.signingKey, this.survivors) };
    });
  }

  /**
   * Phase 5: once at least t sites have signed the same survivor list, reveals for each neighbour exactly one
   * of its two secrets: the self-mask share of a survivor, the key share of a site that dropped. Never both.
   */
  unmask(msg: SecAggConfirmationsMessage): SecAggUnmaskMessage {
    return this.step('unmask', 'done', () => {
      checkObject(msg, 'secagg-confirmations');
      checkList(msg.signatures, this.survivors.length, 'signatures');
      // t valid signatures over this site's list are the guarantee; checking more would cost O(n) per site.
      const signed = new Set<number>();
      for (const raw of msg.signatures) {
        if (signed.size >= this.s.threshold) break;
        const e = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
        const v = e['site'];
        if (typeof v !== 'number' || !this.survivorSet.has(v) || signed.has(v)) throw schemaError('a confirmation names a site outside the survivor list, or twice');
        checkBytes(e['signature'], 64, 'a confirmation signature');
        if (!verifySurvivors(this.s, v, e['signature'], this.survivors)) {
          throw new FedmetaError(ErrorCode.SECAGG_AUTH, `site ${v} did not sign the survivor list this site was shown; the round must be re-run`);
        }
        signed.add(v);
      }
      requireQuorum(this.s, signed.size, 'confirmation');
      const selfMaskShares: SecAggShare[] = [];
      const keyShares: SecAggShare[] = [];
      for (const v of this.sharedWith) {
        const h = this.held.get(v) as Held;
        // Copies: forget() wipes the held shares before the message leaves.
        if (this.survivorSet.has(v)) selfMaskShares.push({ of: v, value: h.selfMaskShare.slice() });
        else keyShares.push({ of: v, value: h.keyShare.slice() });
      }
      this.forget();
      return { type: 'secagg-unmask', site: this.site, selfMaskShares, keyShares };
    });
  }

  private step<T>(from: SecAggClientPhase, to: SecAggClientPhase, body: () => T): T {
    if (this.state !== from) this.wrongPhase(from);
    try {
      const out = body();
      this.state = to;
      return out;
    } catch (e) {
      this.state = 'aborted';
      this.forget();
      if (isFedmetaError(e)) throw e;
      throw new FedmetaError(ErrorCode.SECAGG_AUTH, 'a secure-aggregation message could not be processed; the round must be re-run', { cause: e });
    }
  }

  private wrongPhase(expected: SecAggClientPhase): never {
    throw new FedmetaError(
      this.state === 'aborted' ? ErrorCode.SECAGG_ABORTED : ErrorCode.PRECONDITION,
      this.state === 'aborted'
        ? 'this secure-aggregation client aborted earlier; start a new round'
        : `this secure-aggregation client is in phase ${this.state}, not ${expected}; follow the phases in order`,
    );
  }

  /** Drops every round secret; KeyObjects cannot be wiped, so they are released instead. */
  private forget(): void {
    this.selfMaskSeed?.fill(0);
    this.selfMaskSeed = null;
    for (const h of this.held.values()) {
      h.selfMaskShare.fill(0);
      h.keyShare.fill(0);
    }
    this.cKeys = null;
    this.sKeys = null;
  }
}
