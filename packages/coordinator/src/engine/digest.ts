import { createHash } from 'node:crypto';
import type { OptimizerState } from '@fedmeta/shared';

/**
 * Fingerprints of the exact bytes of the meta-parameters and the optimizer state. An operator (or a test) compares
 * the ones a running coordinator reports with those of a checkpoint read from its data directory: equal digests
 * mean the coordinator holds that checkpoint bit for bit, without shipping 4 bytes per parameter to find out.
 */
export interface StateDigest {
  version: number;
  /** sha256 of the float32 parameters, little-endian as stored. */
  params: string;
  /** sha256 of the optimizer's kind, step and buffers (in name order). */
  optimizer: string;
}

function bytes(v: Float32Array | Float64Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

export function digestState(version: number, params: Float32Array, optimizer: OptimizerState): StateDigest {
  const p = createHash('sha256').update(bytes(params)).digest('hex');
  const o = createHash('sha256');
  // Field names and lengths are hashed too, so that two different states can never run together into one stream.
  o.update(`${optimizer.kind}\n${optimizer.step}\n`);
  for (const name of Object.keys(optimizer.buffers).sort()) {
    const buf = optimizer.buffers[name] as Float64Array;
    o.update(`${name}:${buf.length}\n`);
    o.update(bytes(buf));
  }
  return { version, params: p, optimizer: o.digest('hex') };
}

/** The digest of the state the engine holds, computed once per version and optimizer step. */
export class DigestCache {
  private last: { version: number; step: number; digest: StateDigest } | null = null;

  of(version: number, params: Float32Array, optimizer: OptimizerState): StateDigest {
    const hit = this.last;
    if (hit && hit.version === version && hit.step === optimizer.step) return hit.digest;
    const digest = digestState(version, params, optimizer);
    this.last = { version, step: optimizer.step, digest };
    return digest;
  }
}
