import { identityFromSeed, SecAggClient, secAggConfigOf } from '@fedmeta/shared';
import type { SecAggSiteWire } from '@fedmeta/shared';
import type { RoundOffer, SecAggToSite, SiteUpdate, UpdateAck } from '../../src/engine/hub.js';
import type { MemoryHub, MemorySite } from '../../src/engine/memory-hub.js';
import { quadraticUpdate } from './engine-fixtures.js';

/** The message a site leaves unanswered (it stops there), as a site that crashed would. */
export type DropPhase = 'offer' | 'keys' | 'delivery' | 'survivors' | 'confirmations';

export interface SecureSiteOptions {
  examples: number;
  /** Stops answering at this phase, in the attempts for which `dropIn` says so (default: every attempt). */
  drop?: DropPhase;
  dropIn?: (attempt: number) => boolean;
  /** Sees every offer the site gets, before it answers (or stays silent). */
  onOffer?: (offer: RoundOffer) => void;
  /** Sees every message the site sends (replays in tests). */
  onSend?: (msg: SecAggSiteWire | SiteUpdate) => void;
  /** Collects the coordinator's verdicts on the site's update and secure-aggregation messages. */
  acks?: UpdateAck[];
}

/**
 * An in-process site that takes part in secure aggregation as the agent does: a quadratic site's update, then
 * the phases of SecAggClient, answering each coordinator message with the next one.
 */
export function connectSecureSite(m: MemoryHub, name: string, seed: Uint8Array, target: Float32Array, o: SecureSiteOptions): MemorySite {
  const identity = identityFromSeed(seed);
  let client: SecAggClient | null = null;
  let current: { round: number; attempt: number; roundId: Uint8Array; update: Float32Array; examples: number } | null = null;
  const drops = (attempt: number): boolean => o.drop !== undefined && (o.dropIn?.(attempt) ?? true);
  const send = <T extends SecAggSiteWire | SiteUpdate>(msg: T): T => {
    o.onSend?.(structuredClone(msg));
    return msg;
  };
  return m.connect(
    name,
    (offer: RoundOffer) => {
      o.onOffer?.(structuredClone(offer));
      const u = quadraticUpdate(offer, target, o.examples);
      if (!offer.secagg) return send(u);
      if (o.drop === 'offer' && drops(offer.secagg.attempt)) return null;
      client = new SecAggClient(secAggConfigOf(offer.secagg, offer.params.length), offer.secagg.site, seed);
      current = { round: offer.round, attempt: offer.secagg.attempt, roundId: offer.secagg.roundId, update: u.update, examples: Math.min(o.examples, offer.secagg.maxWeight) };
      const a = client.advertise();
      return send({ ...u, update: null, secagg: { attempt: offer.secagg.attempt, roundId: offer.secagg.roundId, advertise: { site: a.site, cPublic: a.cPublic, sPublic: a.sPublic, signature: a.signature } } });
    },
    {
      identity: identity.publicKey,
      ...(o.acks ? { onSecAggAck: (ack: UpdateAck) => o.acks?.push(ack), onAck: (ack: UpdateAck) => o.acks?.push(ack) } : {}),
      onSecAgg: (msg: SecAggToSite) => {
        if (!client || !current || msg.round !== current.round || msg.attempt !== current.attempt) return null;
        const head = { round: current.round, attempt: current.attempt, roundId: current.roundId };
        const phase = msg.type.slice('secagg-'.length) as DropPhase;
        if (drops(current.attempt) && o.drop === phase) return null;
        switch (msg.type) {
          case 'secagg-keys':
            return send({ ...client.shareKeys(msg), ...head });
          case 'secagg-delivery': {
            const { site, masked } = client.maskInput(msg, current.update, current.examples);
            return send({ type: 'secagg-masked', ...head, site, index: 0, count: 1, masked });
          }
          case 'secagg-survivors':
            return send({ ...client.confirm(msg), ...head });
          case 'secagg-confirmations':
            return send({ ...client.unmask(msg), ...head });
          default:
            return null;
        }
      },
    },
  );
}

/** A fixed 32-byte identity seed per site index. */
export function seedOf(i: number): Uint8Array {
  return Uint8Array.from({ length: 32 }, (_, k) => (i * 31 + k * 7 + 1) % 256);
}
