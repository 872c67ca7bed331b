import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { clippedWeightedSum, generateIdentity, openSession } from '../src/secagg/index.js';
import type { SecAggConfig, SecAggIdentity, SecAggResult } from '../src/secagg/index.js';

export interface Federation {
  identities: SecAggIdentity[];
  seeds: Uint8Array[];
}

export function federation(n: number): Federation {
  const identities = Array.from({ length: n }, () => generateIdentity());
  return { identities, seeds: identities.map((i) => i.privateKey) };
}

export function roundConfig(
  fed: Federation,
  dim: number,
  threshold: number,
  extra: Partial<Pick<SecAggConfig, 'degree' | 'clipNorm' | 'maxWeight'>> = {},
): SecAggConfig {
  return {
    roundId: new Uint8Array(randomBytes(32)),
    identities: fed.identities.map((i) => i.publicKey),
    threshold,
    dim,
    clipNorm: extra.clipNorm ?? 1,
    ...(extra.degree === undefined ? {} : { degree: extra.degree }),
    ...(extra.maxWeight === undefined ? {} : { maxWeight: extra.maxWeight }),
  };
}

/** Deterministic pseudo-random updates (xorshift), some inside and some beyond the clip norm. */
export function updates(n: number, dim: number, seed = 1): { vector: Float32Array; weight: number }[] {
  let s = (0x9e3779b9 ^ seed) >>> 0;
  const rand = (): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296 - 0.5;
  };
  return Array.from({ length: n }, (_, i) => {
    // Norms from about 0.3 to 3: the larger ones are clipped to 1.
    const amp = (0.3 + (i % 5) * 0.6) * Math.sqrt(12 / dim);
    return { vector: Float32Array.from({ length: dim }, () => rand() * amp), weight: 1 };
  });
}

/** Asserts the unmasked sum equals the plaintext sum of the contributors' clipped inputs within the quantization bound. */
export function assertSumMatches(
  config: SecAggConfig,
  result: SecAggResult,
  inputs: readonly { vector: Float32Array; weight: number }[],
): void {
  const q = openSession(config).quantizer;
  const included = result.contributors.map((site) => inputs[site - 1] as { vector: Float32Array; weight: number });
  const expected = clippedWeightedSum(q, included, config.dim);
  // Quantization error plus float64 rounding of the reference.
  const tol = q.sumError + 1e-9;
  let worst = 0;
  for (let i = 0; i < config.dim; i++) worst = Math.max(worst, Math.abs((result.sum[i] as number) - (expected[i] as number)));
  assert.ok(worst <= tol, `largest coordinate error ${worst} exceeds the quantization bound ${tol}`);
  const weightSum = included.reduce((a, x) => a + x.weight, 0);
  assert.ok(Math.abs(result.weightSum - weightSum) <= included.length / (2 * q.weightScale), 'weight sum');
}
