import { createHash } from 'node:crypto';
import { ErrorCode, FedmetaError } from '../errors.js';
import type { KeyObject } from 'node:crypto';
import { deriveKey, encodeParts, identityVerifyKey, KEY_BYTES } from './crypto.js';
import { buildGraph } from './graph.js';
import type { NeighbourGraph } from './graph.js';
import { makeQuantizer } from './quantize.js';
import type { Quantizer } from './quantize.js';
import { MAX_SHARE_X } from './shamir.js';
import type { SecAggConfig } from './types.js';

/**
 * What a client and the server derive from the same config: the context digest every signature, key and
 * AEAD tag is bound to, the neighbour graph and the fixed-point scales. Two parties given different configs
 * (another round id, another roster, another threshold) get different contexts, and nothing verifies.
 */
export interface SecAggSession {
  readonly n: number;
  readonly threshold: number;
  readonly dim: number;
  readonly identities: readonly Uint8Array[];
  readonly context: Uint8Array;
  readonly graph: NeighbourGraph;
  readonly quantizer: Quantizer;
  /** Site i's identity as a verification key (built once per session: that costs more than a verification). */
  identityKey(site: number): KeyObject | null;
}

export const SECAGG_VERSION_LABEL = 'fedmeta-secagg-v1';
/** Longest update (the wire protocol's bound on a vector, 2^26 values). */
export const SECAGG_MAX_DIM = 1 << 26;

function configError(message: string): FedmetaError {
  return new FedmetaError(ErrorCode.CONFIG, message);
}

export function openSession(config: SecAggConfig): SecAggSession {
  const { roundId, identities, threshold, dim, clipNorm } = config;
  const maxWeight = config.maxWeight ?? 1;
  if (!(roundId instanceof Uint8Array) || roundId.length < 16 || roundId.length > 64) {
    throw configError('the secure-aggregation round id must be 16 to 64 bytes, fresh for every round attempt');
  }
  if (!Array.isArray(identities) || identities.length < 2 || identities.length > MAX_SHARE_X) {
    throw configError('secure aggregation needs at least 2 sites in the roster');
  }
  const seen = new Set<string>();
  for (const id of identities) {
    if (!(id instanceof Uint8Array) || id.length !== KEY_BYTES) {
      throw configError(`every roster identity must be a ${KEY_BYTES}-byte Ed25519 public key`);
    }
    const hex = Buffer.from(id).toString('hex');
    if (seen.has(hex)) throw configError('two roster entries share an identity key; each site must have its own');
    seen.add(hex);
  }
  const n = identities.length;
  if (!Number.isInteger(dim) || dim < 1 || dim > SECAGG_MAX_DIM) {
    throw configError(`the update length must be an integer in 1..${SECAGG_MAX_DIM}`);
  }
  const context = contextDigest(config, maxWeight);
  const graph = buildGraph(n, config.degree, deriveKey(context, context, 'graph'));
  const k = graph.degree;
  if (!Number.isInteger(threshold) || 2 * threshold <= k + 1 || threshold > k + 1) {
    throw configError(
      `threshold ${threshold} must be more than half of, and at most, the ${k + 1} holders of each site's shares ` +
        `(degree ${k} + 1): pick t with ${Math.floor((k + 1) / 2) + 1} <= t <= ${k + 1}`,
    );
  }
  const ids = identities.map((id) => new Uint8Array(id));
  const verifyKeys = new Map<number, KeyObject | null>();
  return {
    n,
    threshold,
    dim,
    identityKey(site: number): KeyObject | null {
      if (!verifyKeys.has(site)) {
        const raw = ids[site - 1];
        verifyKeys.set(site, raw === undefined ? null : identityVerifyKey(raw));
      }
      return verifyKeys.get(site) ?? null;
    },
    identities: ids,
    context,
    graph,
    quantizer: makeQuantizer(n, clipNorm, maxWeight),
  };
}

/** sha256 over a length-prefixed encoding of every agreed value (floats as their IEEE-754 bytes). */
function contextDigest(config: SecAggConfig, maxWeight: number): Uint8Array {
  const floats = new Float64Array([config.clipNorm, maxWeight]);
  const parts: (Uint8Array | string | number)[] = [
    SECAGG_VERSION_LABEL,
    config.roundId,
    config.identities.length,
    config.threshold,
    config.degree === undefined || config.degree >= config.identities.length - 1 ? 0 : config.degree,
    config.dim,
    new Uint8Array(floats.buffer),
    ...config.identities,
  ];
  return new Uint8Array(createHash('sha256').update(encodeParts(parts)).digest());
}

/** Throws the coded refusal when fewer than `threshold` sites are left at `phase`. */
export function requireQuorum(s: SecAggSession, count: number, phase: string): void {
  if (count < s.threshold) {
    throw new FedmetaError(
      ErrorCode.SECAGG_ABORTED,
      `only ${count} sites answered the ${phase} phase of secure aggregation and the threshold is ${s.threshold}; ` +
        'the round is aborted without revealing any update: re-run it when more sites are online, or lower the threshold',
    );
  }
}

export function isSiteIndex(s: SecAggSession, x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= s.n;
}
