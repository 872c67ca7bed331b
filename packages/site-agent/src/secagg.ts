import { chunkCount, chunkRange, ErrorCode, FedmetaError, identityFromCredential, SecAggClient, secAggConfigOf } from '@fedmeta/shared';
import type { SecAggOffer, SecAggServerWire, SecAggSiteWire, SecAggUpdateFields } from '@fedmeta/shared';

/**
 * This site's part in one securely aggregated round attempt. The update is computed as on any round, but it
 * never leaves in the clear: the update message carries only the attempt (its number and round id) and the
 * site's signed fresh keys (phase 1), and the vector follows clipped, weighted, quantized and masked (phase 3),
 * so that the coordinator learns only the sum over the sites. The identity that signs the keys is derived from the site's credential,
 * whose public half the coordinator recorded when it issued the credential.
 *
 * Everything lives in memory only: an agent that restarts mid-round has lost its keys and counts as dropped
 * (the others' sum is still unmasked without it, as long as the threshold holds).
 */
export class SecAggParticipant {
  readonly round: number;
  readonly attempt: number;
  /** The attempt's round id, named in everything this site sends for it (a re-issued attempt has a new one). */
  private readonly roundId: Uint8Array;
  private readonly client: SecAggClient;
  private readonly site: number;
  private readonly update: Float32Array;
  private readonly weight: number;

  /**
   * `examples` weighs the update (capped at the offer's maxWeight, as the quantizer requires). Throws CONFIG
   * when the roster lists another key for this site than its credential gives: the site must re-enroll.
   */
  constructor(round: number, offer: SecAggOffer, credential: string, update: Float32Array, examples: number) {
    this.round = round;
    this.attempt = offer.attempt;
    this.roundId = new Uint8Array(offer.roundId);
    this.site = offer.site;
    this.update = update;
    this.weight = Math.min(examples, offer.maxWeight);
    const identity = identityFromCredential(credential);
    try {
      this.client = new SecAggClient(secAggConfigOf(offer, update.length), offer.site, identity.privateKey);
    } finally {
      identity.privateKey.fill(0);
    }
  }

  /** Phase 1: what the update message carries in `secagg`, instead of the vector. */
  advertise(): SecAggUpdateFields {
    const m = this.client.advertise();
    return { attempt: this.attempt, roundId: this.roundId, advertise: { site: m.site, cPublic: m.cPublic, sPublic: m.sPublic, signature: m.signature } };
  }

  /** Whether a coordinator message belongs to this attempt. */
  owns(msg: SecAggServerWire): boolean {
    return msg.round === this.round && msg.attempt === this.attempt;
  }

  /**
   * The answer to one phase message: the next message(s) to send. The masked update goes in pieces of at most
   * `chunkValues + 1` words (the update's chunk size, and the weight word, which the message slack absorbs).
   * A message that does not check aborts this attempt for good (the client forgets its secrets) and throws.
   */
  answer(msg: SecAggServerWire, chunkValues: number): SecAggSiteWire[] {
    const head = this.head();
    switch (msg.type) {
      case 'secagg-keys':
        return [{ ...this.client.shareKeys(msg), ...head }];
      case 'secagg-delivery': {
        const { masked } = this.client.maskInput(msg, this.update, this.weight);
        return this.pieces(masked, chunkValues);
      }
      case 'secagg-survivors':
        return [{ ...this.client.confirm(msg), ...head }];
      case 'secagg-confirmations':
        return [{ ...this.client.unmask(msg), ...head }];
      default:
        throw new FedmetaError(ErrorCode.SCHEMA, 'not a secure-aggregation message the coordinator sends');
    }
  }

  get done(): boolean {
    return this.client.phase === 'done' || this.client.phase === 'aborted';
  }

  /** What every phase message names: the round, the attempt, and this issue of it. */
  private head(): { round: number; attempt: number; roundId: Uint8Array } {
    return { round: this.round, attempt: this.attempt, roundId: this.roundId };
  }

  private pieces(masked: Uint8Array, chunkValues: number): SecAggSiteWire[] {
    const words = masked.length / 4;
    const count = chunkCount(words, chunkValues + 1);
    const out: SecAggSiteWire[] = [];
    for (let index = 0; index < count; index++) {
      const { start, end } = chunkRange(words, count, index);
      out.push({ type: 'secagg-masked', ...this.head(), site: this.site, index, count, masked: masked.slice(4 * start, 4 * end) });
    }
    return out;
  }
}
