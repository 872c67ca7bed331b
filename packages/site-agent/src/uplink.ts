import { CHUNK_VALUES, ErrorCode, FedmetaError, chunkVector, decodeMessageOf, encodeMessage } from '@fedmeta/shared';
import type { AckMessage, SecAggUpdateFields, UpdateChunkMessage, UpdateMessage, UpdateMetrics } from '@fedmeta/shared';
import type { ComputedUpdate } from './trainer.js';

/**
 * The only bytes an agent ever sends after its handshake: one update message (and its chunks). Built from the
 * declared fields alone (round, version, counts, metrics, the vector), so nothing else can ride along.
 */
export interface UplinkSocket {
  timeout(ms: number): { emitWithAck(event: 'update' | 'update-chunk', payload: Uint8Array): Promise<unknown> };
}

export interface UplinkOptions {
  ackTimeoutMs: number;
  /** Largest ack accepted from the coordinator. */
  maxReceiveBytes: number;
  /** Values per message, as the coordinator's welcome announced (default CHUNK_VALUES). */
  chunkValues?: number;
  /** The coordinator's message limit from its welcome: a message above it is not sent at all. */
  maxMessageBytes?: number;
  /** On a securely aggregated round: the site's signed keys, sent instead of the vector (which never leaves in the clear). */
  secagg?: SecAggUpdateFields;
}

/**
 * The update message for a computed update: inline, or a header announcing `chunks` update-chunk messages. With
 * `secagg`, the header alone, carrying the keys and no vector (`update: null`, `chunks: 0`).
 */
export function updateMessages(u: ComputedUpdate, chunkValues = CHUNK_VALUES, secagg?: SecAggUpdateFields): { header: UpdateMessage; chunks: UpdateChunkMessage[] } {
  const pieces = secagg === undefined && u.update.length > chunkValues ? chunkVector(u.update, chunkValues) : [];
  const header: UpdateMessage = {
    type: 'update',
    round: u.round,
    version: u.version,
    counts: { episodes: u.counts.episodes, examples: u.counts.examples },
    metrics: declaredMetrics(u.metrics),
    update: secagg === undefined && pieces.length === 0 ? u.update : null,
    chunks: pieces.length,
    secagg: secagg ?? null,
    privacy: u.privacy ? { ...u.privacy } : null,
  };
  const chunks = pieces.map(
    (values, index): UpdateChunkMessage => ({ type: 'update-chunk', round: u.round, index, count: pieces.length, values: values.slice() }),
  );
  return { header, chunks };
}

/** Copies the declared metric fields only; an absent optional field is left out rather than sent as nil. */
function declaredMetrics(m: UpdateMetrics): UpdateMetrics {
  const out: UpdateMetrics = { supportLoss: m.supportLoss, queryLoss: m.queryLoss };
  if (m.queryAccuracy !== undefined) out.queryAccuracy = m.queryAccuracy;
  if (m.valF1 !== undefined) out.valF1 = m.valF1;
  return out;
}

function toBytes(reply: unknown): Uint8Array {
  if (reply instanceof Uint8Array) return reply;
  if (reply instanceof ArrayBuffer) return new Uint8Array(reply);
  throw new FedmetaError(ErrorCode.DECODE, 'the coordinator acknowledged with something other than an encoded ack message');
}

/**
 * Sends an update and waits for the coordinator's verdict. With chunks, the header and every chunk are
 * acknowledged in turn; the first refusal ends the transfer, and the last chunk's ack is the verdict.
 * Throws when an ack does not come in time (the connection dropped): the caller keeps the update to resend.
 */
export async function sendUpdate(socket: UplinkSocket, u: ComputedUpdate, opts: UplinkOptions): Promise<AckMessage> {
  const { header, chunks } = updateMessages(u, opts.chunkValues, opts.secagg);
  const ask = async (event: 'update' | 'update-chunk', payload: Uint8Array): Promise<AckMessage> => {
    const reply = await socket.timeout(opts.ackTimeoutMs).emitWithAck(event, payload);
    return decodeMessageOf('ack', toBytes(reply), { maxBytes: opts.maxReceiveBytes });
  };
  // Encoded and measured up front: a message the coordinator would refuse (or cut the connection for) never leaves.
  const head = encodeMessage(header);
  const pieces = chunks.map((c) => encodeMessage(c));
  const limit = opts.maxMessageBytes;
  if (limit !== undefined) {
    const largest = Math.max(head.byteLength, ...pieces.map((p) => p.byteLength));
    if (largest > limit) {
      throw new FedmetaError(
        ErrorCode.OVERSIZE,
        `an update message of ${largest} bytes exceeds the coordinator's limit of ${limit}; the coordinator's chunk size does not fit its own limit, so check its server.maxMessageBytes`,
      );
    }
  }
  let ack = await ask('update', head);
  for (const piece of pieces) {
    if (!ack.accepted) break;
    ack = await ask('update-chunk', piece);
  }
  return ack;
}
