import { createHash } from 'node:crypto';
import type { CheckpointFault } from './store.js';

/**
 * Every state file is a fixed 48-byte header followed by the payload:
 *
 *   0  magic "FMST"           4  container version (u16 LE)   6  kind (u16 LE)
 *   8  payload length (u64 LE)   16  sha256 of the payload (32 bytes)
 *
 * The length catches truncation before hashing; the hash catches any flipped bit in the payload, and a flipped
 * bit in the header breaks the magic, the version, the kind, the length or the hash comparison.
 */
export const CONTAINER_MAGIC = Buffer.from('FMST', 'ascii');
export const CONTAINER_VERSION = 1;
export const HEADER_BYTES = 48;

export const ContainerKind = {
  checkpoint: 1,
  sites: 2,
  manifest: 3,
} as const;
export type ContainerKind = (typeof ContainerKind)[keyof typeof ContainerKind];

export function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/** Header and payload as two chunks, so that a large payload is written without another copy. */
export function encodeContainer(kind: ContainerKind, payload: Uint8Array): [Buffer, Uint8Array] {
  const header = Buffer.alloc(HEADER_BYTES);
  CONTAINER_MAGIC.copy(header, 0);
  header.writeUInt16LE(CONTAINER_VERSION, 4);
  header.writeUInt16LE(kind, 6);
  header.writeBigUInt64LE(BigInt(payload.byteLength), 8);
  sha256(payload).copy(header, 16);
  return [header, payload];
}

export type ContainerResult =
  | { ok: true; payload: Buffer }
  | { ok: false; fault: Exclude<CheckpointFault, 'missing' | 'undecodable' | 'invalid-content'>; detail: string };

export function decodeContainer(bytes: Buffer, kind: ContainerKind): ContainerResult {
  if (bytes.length < HEADER_BYTES) {
    return { ok: false, fault: 'truncated', detail: `file has ${bytes.length} bytes, shorter than the header` };
  }
  if (!bytes.subarray(0, 4).equals(CONTAINER_MAGIC)) {
    return { ok: false, fault: 'bad-header', detail: 'file does not start with the fedmeta state magic' };
  }
  const version = bytes.readUInt16LE(4);
  if (version !== CONTAINER_VERSION) {
    return {
      ok: false,
      fault: 'bad-header',
      detail: `container version ${version} is not ${CONTAINER_VERSION}; it was written by another release`,
    };
  }
  const actualKind = bytes.readUInt16LE(6);
  if (actualKind !== kind) {
    return { ok: false, fault: 'bad-header', detail: `file holds state kind ${actualKind}, expected ${kind}` };
  }
  const declared = bytes.readBigUInt64LE(8);
  const present = BigInt(bytes.length - HEADER_BYTES);
  if (declared !== present) {
    return {
      ok: false,
      fault: declared > present ? 'truncated' : 'bad-header',
      detail: `header declares ${declared} payload bytes but the file holds ${present}`,
    };
  }
  const payload = bytes.subarray(HEADER_BYTES);
  if (!sha256(payload).equals(bytes.subarray(16, HEADER_BYTES))) {
    return { ok: false, fault: 'checksum-mismatch', detail: `sha256 of the ${present}-byte payload does not match` };
  }
  return { ok: true, payload };
}
