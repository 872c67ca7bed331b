import { createCipheriv } from 'node:crypto';

/**
 * The mask generator: AES-256-CTR keystream (zero IV; every key is used for one stream only) read as
 * little-endian uint32 words. Masks are added and subtracted mod 2^32, which Uint32Array stores do for free.
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const ZERO_IV = Buffer.alloc(16);
let zeros = Buffer.alloc(0);

function zeroBytes(n: number): Buffer {
  if (zeros.length < n) zeros = Buffer.alloc(n);
  return zeros.subarray(0, n);
}

/** Reads n little-endian uint32 words from bytes, copying where alignment or byte order requires. */
export function wordsFromBytes(bytes: Uint8Array, n: number): Uint32Array {
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, n);
  const out = new Uint32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, n * 4);
  for (let i = 0; i < n; i++) out[i] = view.getUint32(i * 4, true);
  return out;
}

/** The little-endian bytes of words (a copy, so the caller may reuse its array). */
export function bytesFromWords(words: Uint32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(words.buffer.slice(words.byteOffset, words.byteOffset + words.byteLength));
  const out = new Uint8Array(words.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < words.length; i++) view.setUint32(i * 4, words[i] as number, true);
  return out;
}

/** n mask words from a 32-byte key. */
export function maskWords(key: Uint8Array, n: number): Uint32Array {
  const cipher = createCipheriv('aes-256-ctr', key, ZERO_IV);
  const stream = cipher.update(zeroBytes(n * 4));
  return wordsFromBytes(stream, n);
}

/** acc += sign · PRG(key), word by word, mod 2^32. */
export function applyMask(acc: Uint32Array, key: Uint8Array, sign: 1 | -1): void {
  const m = maskWords(key, acc.length);
  if (sign === 1) for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] as number) + (m[i] as number);
  else for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] as number) - (m[i] as number);
}

/** acc += x mod 2^32. */
export function addWords(acc: Uint32Array, x: Uint32Array): void {
  for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] as number) + (x[i] as number);
}
