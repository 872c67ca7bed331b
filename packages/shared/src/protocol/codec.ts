import { Packr, Unpackr, type Options } from 'msgpackr';
import { ErrorCode, FedmetaError, isFedmetaError } from '../errors.js';
import type { HelloMessage, Message, MessageOf, MessageType } from './messages.js';
import { validateMessage, type ValidateOptions } from './validate.js';

/**
 * msgpack encoding of protocol messages. Decoding is not validation: the byte length is checked before
 * decoding, decoding runs inside try/catch, and the result must pass the strict schema in validate.ts.
 * Any failure is a FedmetaError with a code; nothing from the payload appears in its message.
 */

const OPTIONS: Options = {
  // Float32Array travels as msgpackr's typed-array extension and comes back as a Float32Array, byte-exact.
  moreTypes: true,
  // Records are a msgpackr-only extension; structured clone once allowed an infinite loop on hostile input.
  useRecords: false,
  structuredClone: false,
  // uint64/int64 decode to numbers (the schema then demands safe integers) rather than BigInt.
  int64AsType: 'number',
  mapsAsObjects: true,
};

const packr = new Packr(OPTIONS);

/**
 * msgpackr decodes a record definition even with useRecords: false, storing it in the structure table.
 * A table that cannot grow makes every record definition throw, so records never reach the schema.
 */
const noRecords = Object.assign([] as object[], { sharedLength: 0 });
Object.preventExtensions(noRecords);
const unpackr = new Unpackr({ ...OPTIONS, structures: noRecords });

export interface DecodeLimits extends ValidateOptions {
  /** Largest accepted message in bytes; use `maxMessageBytes(paramCount)`. */
  maxBytes: number;
}

/**
 * Encodes a message after checking it against the same schema the receiver applies, so that a bug or a
 * diverged training run (NaN) is caught where it happens rather than on the far side of the wire.
 * The returned bytes may share their ArrayBuffer with other encoded messages: send them, never mutate them.
 */
export function encodeMessage(msg: Message): Uint8Array {
  validateMessage(msg);
  return packr.pack(msg);
}

/** Decodes and validates untrusted bytes. Throws FedmetaError (OVERSIZE, DECODE, or a schema code). */
export function decodeMessage(bytes: Uint8Array, limits: DecodeLimits): Message {
  if (!(bytes instanceof Uint8Array)) {
    throw new FedmetaError(ErrorCode.DECODE, 'message payload is not binary; the peer must send encodeMessage() bytes');
  }
  if (!(limits.maxBytes > 0)) {
    throw new FedmetaError(ErrorCode.PRECONDITION, 'decodeMessage needs a positive maxBytes; derive it with maxMessageBytes()');
  }
  if (bytes.byteLength > limits.maxBytes) {
    throw new FedmetaError(
      ErrorCode.OVERSIZE,
      `message of ${bytes.byteLength} bytes exceeds the limit of ${limits.maxBytes}; send large vectors in chunks`,
    );
  }
  if (bytes.byteLength === 0) {
    throw new FedmetaError(ErrorCode.DECODE, 'message is empty; the peer must send encodeMessage() bytes');
  }
  let value: unknown;
  try {
    value = unpackr.unpack(bytes);
  } catch (e) {
    throw new FedmetaError(
      ErrorCode.DECODE,
      `message could not be decoded (${describeDecodeFailure(e)}); the peer must send encodeMessage() bytes`,
    );
  }
  return validateMessage(value, limits);
}

/** Decodes a message that must be of one type, e.g. the payload of the socket.io event of that name. */
export function decodeMessageOf<T extends MessageType>(
  type: T,
  bytes: Uint8Array,
  limits: Omit<DecodeLimits, 'accept'>,
): MessageOf<T> {
  return decodeMessage(bytes, { ...limits, accept: [type] }) as MessageOf<T>;
}

/**
 * Checks the socket.io handshake `auth` object, which arrives as parsed JSON rather than msgpack, with the
 * same schema. Throws PROTOCOL_VERSION for a peer of another version, SCHEMA for anything else malformed.
 * socket.io itself adds `pid` and `offset` (strings) to the auth of a client that reconnects under
 * connection state recovery; those two are set aside, everything else must be exactly a hello message.
 */
export function decodeHandshake(auth: unknown): HelloMessage {
  try {
    return validateMessage(withoutRecoveryFields(auth), { accept: ['hello'] }) as HelloMessage;
  } catch (e) {
    if (isFedmetaError(e)) throw e;
    throw new FedmetaError(ErrorCode.SCHEMA, 'handshake could not be read; the agent must send a hello message as auth');
  }
}

function withoutRecoveryFields(auth: unknown): unknown {
  if (typeof auth !== 'object' || auth === null || Object.getPrototypeOf(auth) !== Object.prototype) return auth;
  const o = auth as Record<string, unknown>;
  if (!Object.hasOwn(o, 'pid') && !Object.hasOwn(o, 'offset')) return auth;
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if ((k === 'pid' || k === 'offset') && typeof v === 'string' && v.length <= 256) continue;
    // Defining, not assigning, keeps a `__proto__` key an own property that the schema then refuses.
    Object.defineProperty(rest, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return rest;
}

/** A fixed phrase per failure class: the decoder's own messages can quote payload bytes, so they are not passed on. */
function describeDecodeFailure(e: unknown): string {
  const text = e instanceof Error ? e.message : '';
  if (e instanceof RangeError && /call stack/i.test(text)) return 'nested too deeply';
  if (/unexpected end/i.test(text)) return 'truncated';
  if (/end of buffer not reached/i.test(text)) return 'trailing bytes after the message';
  if (/not extensible|record/i.test(text)) return 'uses the records extension, which is not allowed';
  if (/structured clone/i.test(text)) return 'uses the structured-clone extension, which is not allowed';
  if (/extension/i.test(text)) return 'uses an unknown extension';
  return 'malformed';
}
