import { chunkVector, encodeMessage } from '@fedmeta/shared';
import type { ModelSpec, ParamManifest, ParamsChunkMessage, ReleaseMessage, RoundOfferMessage } from '@fedmeta/shared';
import type { RoundOffer } from '../engine/hub.js';

/**
 * Server-to-site transfers, encoded once and sent to every site as the same bytes. A vector longer than one
 * chunk goes as a header with `params: null` followed by params-chunk messages, in order on the same socket.
 */
export interface EncodedTransfer {
  event: 'round-offer' | 'release';
  head: Uint8Array;
  chunks: Uint8Array[];
  /** Bytes in all, for the log. */
  bytes: number;
}

function paramChunks(version: number, params: Float32Array, chunkValues: number): Uint8Array[] | null {
  if (params.length <= chunkValues) return null;
  const parts = chunkVector(params, chunkValues);
  return parts.map((values, index) => {
    const msg: ParamsChunkMessage = { type: 'params-chunk', version, index, count: parts.length, values };
    return encodeMessage(msg);
  });
}

function transfer(event: EncodedTransfer['event'], head: Uint8Array, chunks: Uint8Array[]): EncodedTransfer {
  let bytes = head.byteLength;
  for (const c of chunks) bytes += c.byteLength;
  return { event, head, chunks, bytes };
}

/**
 * `shared`: the params-chunk messages of these parameters, already encoded for another site's offer (a securely
 * aggregated round gives every site its own offer header, around the same parameters).
 */
export function encodeOffer(offer: RoundOffer, chunkValues: number, shared?: Uint8Array[]): EncodedTransfer {
  const chunks = shared === undefined ? paramChunks(offer.version, offer.params, chunkValues) : shared.length > 0 ? shared : null;
  const msg: RoundOfferMessage = {
    type: 'round-offer',
    round: offer.round,
    version: offer.version,
    task: { ...offer.task },
    spec: offer.spec,
    manifest: offer.manifest,
    params: chunks ? null : offer.params,
    chunks: chunks ? chunks.length : 0,
    deadline: Math.round(offer.deadline),
  };
  if (offer.secagg) msg.secagg = offer.secagg;
  return transfer('round-offer', encodeMessage(msg), chunks ?? []);
}

/** A released version: the model it belongs to travels with it, so `detect` builds exactly that network. */
export interface ReleasedModel {
  spec: ModelSpec;
  manifest: ParamManifest;
  params: Float32Array;
}

export function encodeRelease(version: number, model: ReleasedModel, chunkValues: number): EncodedTransfer {
  const { spec, manifest, params } = model;
  const chunks = paramChunks(version, params, chunkValues);
  const msg: ReleaseMessage = {
    type: 'release',
    version,
    spec,
    manifest,
    params: chunks ? null : params,
    chunks: chunks ? chunks.length : 0,
  };
  return transfer('release', encodeMessage(msg), chunks ?? []);
}

/** Anything that can emit our events: a socket, or a room through the adapter (so a Redis adapter can fan out). */
export interface Emitter {
  emit(event: 'round-offer' | 'release' | 'params-chunk', payload: Uint8Array): unknown;
}

export function sendTransfer(to: Emitter, t: EncodedTransfer): void {
  to.emit(t.event, t.head);
  for (const c of t.chunks) to.emit('params-chunk', c);
}
