import { ChunkAssembler, decodeMessageOf, ErrorCode, FedmetaError, isFedmetaError } from '@fedmeta/shared';
import type { UpdateMessage, WireError } from '@fedmeta/shared';
import type { SiteUpdate } from '../engine/hub.js';

/**
 * What one connection sends: updates, inline or as a header followed by update-chunk messages. Every payload
 * is size-checked, decoded and validated against the federation's model size before anything else sees it;
 * a chunked update is reassembled here and handed on whole.
 */

/** The coordinator's verdict on one message, sent back through the socket.io acknowledgement. */
export interface Verdict {
  round: number;
  accepted: boolean;
  chunk?: number;
  error?: WireError;
  /** Set by the hub on verdicts the engine gave, which the engine has already counted and logged. */
  fromEngine?: boolean;
}

export type Reply = (verdict: Verdict) => void;

export interface UpdateReceiverOptions {
  paramCount: number;
  maxMessageBytes: number;
  /** Hands a complete, validated update on; `reply` must be called once with the verdict on it. */
  deliver: (update: SiteUpdate, reply: Reply) => void;
  /** How long a chunked transfer may take from its header to its last chunk. */
  transferTimeoutMs: number;
}

interface Transfer {
  header: UpdateMessage;
  assembler: ChunkAssembler;
  timer: ReturnType<typeof setTimeout>;
}

function asWireError(e: unknown): WireError {
  if (isFedmetaError(e)) return e.toWire();
  // Never echo an unexpected error's text to the peer: it may quote the payload.
  return new FedmetaError(ErrorCode.DECODE, 'the message could not be processed; the agent must send encodeMessage() bytes').toWire();
}

function toSiteUpdate(m: UpdateMessage, vector: Float32Array | null): SiteUpdate {
  const metrics: SiteUpdate['metrics'] = { supportLoss: m.metrics.supportLoss, queryLoss: m.metrics.queryLoss };
  if (m.metrics.valF1 !== undefined) metrics.valF1 = m.metrics.valF1;
  const u: SiteUpdate = {
    round: m.round,
    version: m.version,
    counts: { episodes: m.counts.episodes, examples: m.counts.examples },
    metrics,
    update: vector,
  };
  if (m.privacy !== null) u.privacy = { ...m.privacy };
  if (m.secagg !== null) u.secagg = m.secagg;
  return u;
}

export class UpdateReceiver {
  private transfer: Transfer | null = null;
  private closed = false;

  constructor(private readonly opts: UpdateReceiverOptions) {}

  private limits() {
    const n = this.opts.paramCount;
    return { maxBytes: this.opts.maxMessageBytes, expectedLength: () => n };
  }

  onUpdate(payload: unknown, reply: Reply): void {
    let msg: UpdateMessage;
    try {
      msg = decodeMessageOf('update', payload as Uint8Array, this.limits());
    } catch (e) {
      reply({ round: -1, accepted: false, error: asWireError(e) });
      return;
    }
    // A new header abandons a transfer left unfinished: the agent has started over.
    this.drop();
    // Inline, or on a securely aggregated round without a vector at all (its keys only; the vector comes masked).
    if (msg.update !== null || msg.secagg !== null) {
      this.opts.deliver(toSiteUpdate(msg, msg.update), reply);
      return;
    }
    let assembler: ChunkAssembler;
    try {
      assembler = new ChunkAssembler({ total: this.opts.paramCount, count: msg.chunks });
    } catch (e) {
      reply({ round: msg.round, accepted: false, error: asWireError(e) });
      return;
    }
    const timer = setTimeout(() => this.drop(), this.opts.transferTimeoutMs);
    timer.unref();
    this.transfer = { header: msg, assembler, timer };
    // Accepted here means "send the chunks"; the verdict on the update comes with the last chunk's acknowledgement.
    reply({ round: msg.round, accepted: true });
  }

  onChunk(payload: unknown, reply: Reply): void {
    let round = -1;
    try {
      const chunk = decodeMessageOf('update-chunk', payload as Uint8Array, this.limits());
      round = chunk.round;
      const t = this.transfer;
      if (!t) {
        throw new FedmetaError(ErrorCode.CHUNK, 'an update chunk arrived without an update header before it; send the update header first');
      }
      if (chunk.round !== t.header.round) {
        throw new FedmetaError(
          ErrorCode.CHUNK,
          `an update chunk for round ${chunk.round} arrived during the transfer for round ${t.header.round}; resend the whole update`,
        );
      }
      if (!t.assembler.add(chunk)) {
        reply({ round, accepted: true, chunk: chunk.index });
        return;
      }
      const vector = t.assembler.result();
      this.drop();
      const index = chunk.index;
      this.opts.deliver(toSiteUpdate(t.header, vector), (v) => reply({ ...v, chunk: index }));
    } catch (e) {
      // A broken transfer cannot be repaired piecemeal: the agent resends it from the header.
      this.drop();
      reply({ round, accepted: false, error: asWireError(e) });
    }
  }

  /** Drops the transfer in progress, if any. */
  drop(): void {
    if (!this.transfer) return;
    clearTimeout(this.transfer.timer);
    this.transfer = null;
  }

  close(): void {
    this.closed = true;
    this.drop();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
