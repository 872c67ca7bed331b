import type { KeyObject } from 'node:crypto';
import { ErrorCode, FedmetaError, isFedmetaError } from '../errors.js';
import { agree, deriveKey, x25519FromRaw, x25519PublicKey } from './crypto.js';
import {
  checkAdvertisedShape,
  checkBytes,
  checkList,
  checkObject,
  schemaError,
  SEALED_SHARE_BYTES,
  selfMaskCommitment,
  verifyAdvertise,
  verifySurvivors,
} from './payloads.js';
import { addWords, applyMask, wordsFromBytes } from './prg.js';
import { dequantize } from './quantize.js';
import { isSiteIndex, openSession, requireQuorum } from './session.js';
import type { SecAggSession } from './session.js';
import { reconstructSecret, SHARE_BYTES } from './shamir.js';
import type { Share } from './shamir.js';
import type {
  SecAggAdvertisedKeys,
  SecAggConfig,
  SecAggConfirmationsMessage,
  SecAggDeliveryMessage,
  SecAggKeysMessage,
  SecAggResult,
  SecAggServerPhase,
  SecAggSurvivorsMessage,
} from './types.js';

/**
 * The coordinator's side of one round. `receive*` takes one site's message of the open phase (a refused message
 * throws a coded error and changes nothing); `close*` ends the phase with whoever answered and returns what to
 * send next. Fewer than t sites at any close (or, at the end, fewer than t holders of a needed secret) aborts
 * the round with SECAGG_ABORTED, having revealed nothing: the server only ever holds masked vectors.
 */
export class SecAggServer {
  private readonly s: SecAggSession;
  private state: SecAggServerPhase = 'advertise';
  private readonly advertised = new Map<number, SecAggAdvertisedKeys>();
  private u1: number[] = [];
  private u1Set = new Set<number>();
  private readonly sharesFrom = new Map<number, Map<number, Uint8Array>>();
  private readonly commitments = new Map<number, Uint8Array>();
  private u2: number[] = [];
  private u2Set = new Set<number>();
  private readonly acc: Uint32Array;
  private readonly maskedFrom = new Set<number>();
  private u3: number[] = [];
  private u3Set = new Set<number>();
  private readonly confirmations = new Map<number, Uint8Array>();
  private u4: number[] = [];
  private u4Set = new Set<number>();
  private readonly unmaskedFrom = new Set<number>();
  private readonly selfMaskShares = new Map<number, Share[]>();
  private readonly keyShares = new Map<number, Share[]>();
  private readonly maskingKeys = new Map<number, KeyObject>();

  constructor(config: SecAggConfig) {
    this.s = openSession(config);
    this.acc = new Uint32Array(this.s.dim + 1);
  }

  get phase(): SecAggServerPhase {
    return this.state;
  }

  /** Sites the open phase still waits for; the engine may close the phase early when this is empty. */
  pending(): number[] {
    const all = Array.from({ length: this.s.n }, (_, i) => i + 1);
    switch (this.state) {
      case 'advertise': return all.filter((u) => !this.advertised.has(u));
      case 'share': return this.u1.filter((u) => !this.sharesFrom.has(u));
      case 'mask': return this.u2.filter((u) => !this.maskedFrom.has(u));
      case 'confirm': return this.u3.filter((u) => !this.confirmations.has(u));
      case 'unmask': return this.u4.filter((u) => !this.unmaskedFrom.has(u));
      default: return [];
    }
  }

  receiveAdvertise(msg: unknown): void {
    this.expect('advertise');
    checkObject(msg, 'secagg-advertise');
    const k = checkAdvertisedShape(this.s, msg);
    this.once(this.advertised.has(k.site), k.site);
    if (!verifyAdvertise(this.s, k)) {
      throw new FedmetaError(ErrorCode.SECAGG_AUTH, `the keys of site ${k.site} are not signed by its identity for this round; check the site's credential`);
    }
    this.advertised.set(k.site, { site: k.site, cPublic: k.cPublic, sPublic: k.sPublic, signature: k.signature });
  }

  /** The signed keys each remaining site needs: its own and its neighbours'. */
  closeAdvertise(): Map<number, SecAggKeysMessage> {
    return this.close('advertise', 'share', () => {
      // A site with fewer than t advertised holders could never have its secrets rebuilt: leave it out.
      this.u1 = this.prune([...this.advertised.keys()].sort((a, b) => a - b));
      this.u1Set = new Set(this.u1);
      requireQuorum(this.s, this.u1.length, 'advertise');
      const out = new Map<number, SecAggKeysMessage>();
      for (const u of this.u1) {
        const keys = this.s.graph.holders(u).filter((v) => this.u1Set.has(v)).map((v) => this.advertised.get(v) as SecAggAdvertisedKeys);
        out.set(u, { type: 'secagg-keys', keys });
      }
      return out;
    });
  }

  receiveShares(msg: unknown): void {
    this.expect('share');
    checkObject(msg, 'secagg-shares');
    const u = this.member(msg['site'], this.u1Set);
    this.once(this.sharesFrom.has(u), u);
    const expected = this.s.graph.neighbours(u).filter((v) => this.u1Set.has(v));
    checkList(msg['shares'], expected.length, 'shares');
    const expectedSet = new Set(expected);
    const byRecipient = new Map<number, Uint8Array>();
    for (const raw of msg['shares']) {
      const e = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
      const to = e['to'];
      if (typeof to !== 'number' || !expectedSet.has(to) || byRecipient.has(to)) throw schemaError(`site ${u} addressed a share to a site that is not its neighbour, or twice`);
      checkBytes(e['ciphertext'], SEALED_SHARE_BYTES, 'an encrypted share');
      byRecipient.set(to, e['ciphertext']);
    }
    if (byRecipient.size !== expected.length) throw schemaError(`site ${u} must send one share to each of its ${expected.length} neighbours`);
    checkBytes(msg['selfMaskCommitment'], 32, 'the self-mask commitment');
    this.commitments.set(u, msg['selfMaskCommitment']);
    this.sharesFrom.set(u, byRecipient);
  }

  /** Forwards to each site the shares addressed to it. */
  closeShares(): Map<number, SecAggDeliveryMessage> {
    return this.close('share', 'mask', () => {
      this.u2 = this.prune(this.u1.filter((u) => this.sharesFrom.has(u)));
      this.u2Set = new Set(this.u2);
      requireQuorum(this.s, this.u2.length, 'share');
      const out = new Map<number, SecAggDeliveryMessage>();
      for (const v of this.u2) {
        const shares = this.s.graph
          .neighbours(v)
          .filter((u) => this.u2Set.has(u))
          .map((u) => ({ from: u, ciphertext: (this.sharesFrom.get(u) as Map<number, Uint8Array>).get(v) as Uint8Array }));
        out.set(v, { type: 'secagg-delivery', shares });
      }
      this.sharesFrom.clear();
      return out;
    });
  }

  /** Adds a masked input into the running sum; nothing per site is kept. */
  receiveMasked(msg: unknown): void {
    this.expect('mask');
    checkObject(msg, 'secagg-masked');
    const u = this.member(msg['site'], this.u2Set);
    this.once(this.maskedFrom.has(u), u);
    checkBytes(msg['masked'], 4 * (this.s.dim + 1), 'the masked input');
    addWords(this.acc, wordsFromBytes(msg['masked'], this.s.dim + 1));
    this.maskedFrom.add(u);
  }

  closeMasked(): SecAggSurvivorsMessage {
    return this.close('mask', 'confirm', () => {
      this.u3 = this.u2.filter((u) => this.maskedFrom.has(u));
      this.u3Set = new Set(this.u3);
      requireQuorum(this.s, this.u3.length, 'masked input');
      return { type: 'secagg-survivors', survivors: [...this.u3] };
    });
  }

  receiveConfirm(msg: unknown): void {
    this.expect('confirm');
    checkObject(msg, 'secagg-confirm');
    const u = this.member(msg['site'], this.u3Set);
    this.once(this.confirmations.has(u), u);
    checkBytes(msg['signature'], 64, 'a confirmation signature');
    if (!verifySurvivors(this.s, u, msg['signature'], this.u3)) {
      throw new FedmetaError(ErrorCode.SECAGG_AUTH, `site ${u} did not sign this round's survivor list`);
    }
    this.confirmations.set(u, msg['signature']);
  }

  closeConfirm(): SecAggConfirmationsMessage {
    return this.close('confirm', 'unmask', () => {
      this.u4 = this.u3.filter((u) => this.confirmations.has(u));
      this.u4Set = new Set(this.u4);
      requireQuorum(this.s, this.u4.length, 'confirmation');
      // t signatures (all checked on arrival) are what a site needs; sending all n would cost O(n) per site.
      const signers = this.u4.slice(0, this.s.threshold);
      return { type: 'secagg-confirmations', signatures: signers.map((site) => ({ site, signature: this.confirmations.get(site) as Uint8Array })) };
    });
  }

  receiveUnmask(msg: unknown): void {
    this.expect('unmask');
    checkObject(msg, 'secagg-unmask');
    const u = this.member(msg['site'], this.u4Set);
    this.once(this.unmaskedFrom.has(u), u);
    // The site holds shares of exactly the sites that shared keys among its holders; each gets one kind.
    const held = this.s.graph.holders(u).filter((v) => this.u2Set.has(v));
    const wantSelf = held.filter((v) => this.u3Set.has(v));
    const wantKey = held.filter((v) => !this.u3Set.has(v));
    const self = this.shareList(msg['selfMaskShares'], wantSelf, u, 'self-mask');
    const key = this.shareList(msg['keyShares'], wantKey, u, 'key');
    for (const [of, value] of self) pushShare(this.selfMaskShares, of, { x: u, value });
    for (const [of, value] of key) pushShare(this.keyShares, of, { x: u, value });
    this.unmaskedFrom.add(u);
  }

  /** Rebuilds the secrets, strips every mask and returns the sum over the survivors. */
  finish(): SecAggResult {
    return this.close('unmask', 'done', () => {
      requireQuorum(this.s, this.unmaskedFrom.size, 'unmask');
      const t = this.s.threshold;
      for (const u of this.u3) {
        const b = reconstructSecret(this.selfMaskShares.get(u) ?? [], t);
        if (!Buffer.from(selfMaskCommitment(this.s, u, b)).equals(Buffer.from(this.commitments.get(u) as Uint8Array))) {
          throw new FedmetaError(ErrorCode.SECAGG_AUTH, `the rebuilt self-mask seed of site ${u} does not match its commitment; a site sent a corrupted share`);
        }
        applyMask(this.acc, deriveKey(b, this.s.context, 'self-mask'), -1);
      }
      const dropped = this.u2.filter((u) => !this.u3Set.has(u));
      for (const u of dropped) {
        const pair = x25519FromRaw(reconstructSecret(this.keyShares.get(u) ?? [], t));
        const advertisedKey = (this.advertised.get(u) as SecAggAdvertisedKeys).sPublic;
        if (!Buffer.from(pair.publicKey).equals(Buffer.from(advertisedKey))) {
          throw new FedmetaError(ErrorCode.SECAGG_AUTH, `the rebuilt masking key of site ${u} does not match the key it advertised; a site sent a corrupted share`);
        }
        for (const v of this.s.graph.neighbours(u)) {
          if (!this.u3Set.has(v)) continue;
          const vKey = this.maskingKey(v);
          const seed = agree(pair.privateKey, vKey, this.s.context, 'pair-mask', Math.min(u, v), Math.max(u, v));
          // Survivor v added +PRG(s_uv) when u < v and −PRG when u > v: take the same amount back out.
          applyMask(this.acc, seed, u < v ? -1 : 1);
        }
      }
      const { sum, weightSum } = dequantize(this.s.quantizer, this.acc);
      let mean: Float32Array | null = null;
      if (weightSum > 0) {
        mean = new Float32Array(sum.length);
        for (let i = 0; i < sum.length; i++) mean[i] = (sum[i] as number) / weightSum;
      }
      return { sum, weightSum, mean, contributors: [...this.u3], dropped };
    });
  }

  /** Ends the round without a result (e.g. its deadline passed); later calls are refused. */
  abort(): void {
    this.state = 'aborted';
    this.acc.fill(0);
  }

  private maskingKey(v: number): KeyObject {
    let k = this.maskingKeys.get(v);
    if (!k) {
      k = x25519PublicKey((this.advertised.get(v) as SecAggAdvertisedKeys).sPublic);
      this.maskingKeys.set(v, k);
    }
    return k;
  }

  /**
   * Drops, until none is left, every site that has fewer than t holders of its shares among `candidates`
   * (with all pairs this only happens when the whole round is below the threshold).
   */
  private prune(candidates: number[]): number[] {
    let kept = candidates;
    for (;;) {
      const set = new Set(kept);
      const next = kept.filter((u) => this.s.graph.holders(u).filter((v) => set.has(v)).length >= this.s.threshold);
      if (next.length === kept.length) return next;
      kept = next;
    }
  }

  private shareList(raw: unknown, want: number[], from: number, kind: string): Map<number, Uint8Array> {
    checkList(raw, want.length, `${kind} shares`);
    const wanted = new Set(want);
    const out = new Map<number, Uint8Array>();
    for (const r of raw) {
      const e = (typeof r === 'object' && r !== null ? r : {}) as Record<string, unknown>;
      const of = e['of'];
      if (typeof of !== 'number' || !wanted.has(of) || out.has(of)) throw schemaError(`site ${from} sent a ${kind} share it should not hold, or twice`);
      checkBytes(e['value'], SHARE_BYTES, 'a share');
      out.set(of, e['value']);
    }
    if (out.size !== want.length) throw schemaError(`site ${from} must send ${want.length} ${kind} shares`);
    return out;
  }

  private member(site: unknown, set: ReadonlySet<number>): number {
    if (!isSiteIndex(this.s, site)) throw schemaError(`the site index must lie in 1..${this.s.n}`);
    if (!set.has(site)) {
      throw new FedmetaError(ErrorCode.STALE_ROUND, `site ${site} dropped out of an earlier phase of this secure-aggregation round; it may join the next round`);
    }
    return site;
  }

  private once(seen: boolean, site: number): void {
    if (seen) throw new FedmetaError(ErrorCode.DUPLICATE_UPDATE, `site ${site} already answered this phase; its first message stands`);
  }

  private expect(phase: SecAggServerPhase): void {
    if (this.state === phase) return;
    if (this.state === 'aborted') throw new FedmetaError(ErrorCode.SECAGG_ABORTED, 'this secure-aggregation round was aborted; wait for the next round');
    throw new FedmetaError(ErrorCode.STALE_ROUND, `this secure-aggregation round is in phase ${this.state}, not ${phase}; the message arrived too late or too early`);
  }

  private close<T>(from: SecAggServerPhase, to: SecAggServerPhase, body: () => T): T {
    this.expect(from);
    try {
      const out = body();
      this.state = to;
      return out;
    } catch (e) {
      this.abort();
      if (isFedmetaError(e)) throw e;
      throw new FedmetaError(ErrorCode.SECAGG_ABORTED, 'secure aggregation failed while closing a phase; the round is aborted', { cause: e });
    }
  }
}

function pushShare(map: Map<number, Share[]>, of: number, share: Share): void {
  const list = map.get(of);
  if (list) list.push(share);
  else map.set(of, [share]);
}
