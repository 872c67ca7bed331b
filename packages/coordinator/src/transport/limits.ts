import { CHUNK_VALUES, ErrorCode, FedmetaError, HEADER_SLACK_BYTES, maxMessageBytes } from '@fedmeta/shared';

/**
 * Message size limits of one federation, all derived from the model's size. socket.io closes the whole
 * connection when a frame exceeds maxHttpBufferSize, so that limit sits above the codec's own: a message a
 * little too large is refused with a coded acknowledgement and the connection stays; only a grossly
 * oversize one (or a flood) loses the connection.
 */
export interface WireLimits {
  /** Values per chunk of the vectors the coordinator sends; a vector longer than this travels in chunks. */
  chunkValues: number;
  /** Largest message the codec accepts, in bytes. */
  maxMessageBytes: number;
  /** socket.io's maxHttpBufferSize, in bytes. */
  maxHttpBufferSize: number;
}

export interface WireLimitOptions {
  /** Values per chunk (default CHUNK_VALUES, 1 MiB of float32). */
  chunkValues?: number;
  /** An explicit message limit (server.maxMessageBytes); chunks shrink to fit it. */
  maxMessageBytes?: number;
}

/**
 * Headroom of maxHttpBufferSize over the codec's limit. Long-polling carries binary as base64 (4/3 of the
 * bytes), so the headroom also keeps a polling client that is within the codec's limit from being cut off.
 */
function bufferSizeFor(messageBytes: number): number {
  return Math.ceil((messageBytes * 4) / 3) + 16 * 1024;
}

export function wireLimits(paramCount: number, opts: WireLimitOptions = {}): WireLimits {
  let chunkValues = opts.chunkValues ?? CHUNK_VALUES;
  if (!Number.isInteger(chunkValues) || chunkValues < 1) {
    throw new FedmetaError(ErrorCode.CONFIG, 'the values per chunk must be a whole number of at least 1');
  }
  if (opts.maxMessageBytes !== undefined) {
    const fit = Math.floor((opts.maxMessageBytes - HEADER_SLACK_BYTES) / 4);
    if (fit < 1) {
      throw new FedmetaError(
        ErrorCode.CONFIG,
        `server.maxMessageBytes must be at least ${HEADER_SLACK_BYTES + 4} (room for the message header and one value); leave it unset to derive it from the model`,
      );
    }
    chunkValues = Math.min(chunkValues, fit);
    return { chunkValues, maxMessageBytes: opts.maxMessageBytes, maxHttpBufferSize: bufferSizeFor(opts.maxMessageBytes) };
  }
  const bytes = maxMessageBytes(paramCount, chunkValues);
  return { chunkValues, maxMessageBytes: bytes, maxHttpBufferSize: bufferSizeFor(bytes) };
}
