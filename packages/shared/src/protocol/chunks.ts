import { ErrorCode, FedmetaError } from '../errors.js';
import { PROTOCOL_LIMITS } from './messages.js';

/**
 * Large vectors travel in pieces because socket.io closes the whole connection (rather than rejecting one
 * message) when a message exceeds maxHttpBufferSize. The layout of a transfer follows from its total length
 * and its number of chunks alone, so a receiver never trusts offsets sent by the peer.
 */

/** Default largest number of float32 values in one message (1 MiB of payload). */
export const CHUNK_VALUES = 1 << 18;

/**
 * Bytes allowed on top of the vector itself: message fields, a manifest at the protocol limits, and
 * msgpack framing. A test checks that a round offer with a manifest at the limits fits in it.
 */
export const HEADER_SLACK_BYTES = 64 * 1024;

/**
 * The socket.io `maxHttpBufferSize` (and the codec's `maxBytes`) for a model of `paramCount` values, when
 * every vector longer than `chunkValues` is sent in chunks.
 */
export function maxMessageBytes(paramCount: number, chunkValues: number = CHUNK_VALUES): number {
  checkCount(paramCount, 'parameter count');
  checkCount(chunkValues, 'values per chunk');
  return HEADER_SLACK_BYTES + 4 * Math.min(paramCount, chunkValues);
}

/** How many chunks a vector of `total` values needs at `maxValuesPerChunk` values each (1 when it fits). */
export function chunkCount(total: number, maxValuesPerChunk: number = CHUNK_VALUES): number {
  checkCount(total, 'vector length');
  checkCount(maxValuesPerChunk, 'values per chunk');
  return Math.ceil(total / maxValuesPerChunk);
}

/**
 * The values [start, end) that chunk `index` of `count` carries. Chunks are balanced: each holds
 * ceil(total / count) values except the last. Throws CHUNK when `count` cannot split `total` into
 * non-empty chunks, which is how a peer's inconsistent claim is caught.
 */
export function chunkRange(total: number, count: number, index: number): { start: number; end: number } {
  const size = chunkSize(total, count);
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    throw new FedmetaError(ErrorCode.CHUNK, `chunk index ${String(index)} is outside 0..${count - 1}; the sender must number chunks from 0`);
  }
  const start = index * size;
  return { start, end: Math.min(total, start + size) };
}

/** Splits `v` into balanced chunks of at most `maxValuesPerChunk` values; the chunks are views, not copies. */
export function chunkVector(v: Float32Array, maxValuesPerChunk: number = CHUNK_VALUES): Float32Array[] {
  const count = chunkCount(v.length, maxValuesPerChunk);
  const out: Float32Array[] = [];
  for (let i = 0; i < count; i++) {
    const { start, end } = chunkRange(v.length, count, i);
    out.push(v.subarray(start, end));
  }
  return out;
}

/** A chunk as it arrives in a params-chunk or update-chunk message. */
export interface VectorChunk {
  index: number;
  count: number;
  values: Float32Array;
}

/**
 * Reassembles one chunked transfer. The receiver gives it the length it expects (from its own manifest,
 * never from the peer) and the chunk count the header announced, then feeds it chunks in any order.
 * Time-outs are the caller's: drop the assembler when the round's deadline passes.
 */
export class ChunkAssembler {
  readonly total: number;
  readonly count: number;
  private readonly out: Float32Array;
  private readonly seen: Uint8Array;
  private received = 0;

  constructor(opts: { total: number; count: number }) {
    chunkSize(opts.total, opts.count);
    this.total = opts.total;
    this.count = opts.count;
    this.out = new Float32Array(opts.total);
    this.seen = new Uint8Array(opts.count);
  }

  /** Number of chunks accepted so far. */
  get chunksReceived(): number {
    return this.received;
  }

  get complete(): boolean {
    return this.received === this.count;
  }

  /** Accepts one chunk; returns true when the transfer is complete. Throws CHUNK or WRONG_LENGTH. */
  add(chunk: VectorChunk): boolean {
    if (chunk.count !== this.count) {
      throw new FedmetaError(
        ErrorCode.CHUNK,
        `chunk says the transfer has ${String(chunk.count)} chunks but its header announced ${this.count}; resend the whole transfer`,
      );
    }
    const { start, end } = chunkRange(this.total, this.count, chunk.index);
    if (this.seen[chunk.index] === 1) {
      throw new FedmetaError(ErrorCode.CHUNK, `chunk ${chunk.index} of ${this.count} arrived twice; send each chunk once`);
    }
    if (chunk.values.length !== end - start) {
      throw new FedmetaError(
        ErrorCode.WRONG_LENGTH,
        `chunk ${chunk.index} of ${this.count} has ${chunk.values.length} values but ${end - start} were expected for a vector of ${this.total}`,
      );
    }
    this.out.set(chunk.values, start);
    this.seen[chunk.index] = 1;
    this.received++;
    return this.complete;
  }

  /** The reassembled vector; throws CHUNK while chunks are missing. */
  result(): Float32Array {
    if (!this.complete) {
      throw new FedmetaError(
        ErrorCode.CHUNK,
        `transfer incomplete: ${this.received} of ${this.count} chunks received; wait for the rest or abandon it at the deadline`,
      );
    }
    return this.out;
  }
}

/** Throws CHUNK unless `count` splits a vector of `total` values into non-empty balanced chunks. */
export function assertChunkLayout(total: number, count: number): void {
  chunkSize(total, count);
}

function chunkSize(total: number, count: number): number {
  checkCount(total, 'vector length');
  if (!Number.isInteger(count) || count < 1 || count > PROTOCOL_LIMITS.chunks) {
    throw new FedmetaError(ErrorCode.CHUNK, `a transfer must have 1 to ${PROTOCOL_LIMITS.chunks} chunks`);
  }
  const size = Math.ceil(total / count);
  // Every chunk must carry at least one value, or a peer could announce more chunks than the vector allows.
  if ((count - 1) * size >= total) {
    throw new FedmetaError(ErrorCode.CHUNK, `${count} chunks cannot split a vector of ${total} values; use fewer chunks`);
  }
  return size;
}

function checkCount(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || n > PROTOCOL_LIMITS.vectorValues) {
    throw new FedmetaError(ErrorCode.PRECONDITION, `${what} must be an integer from 1 to ${PROTOCOL_LIMITS.vectorValues}`);
  }
}
