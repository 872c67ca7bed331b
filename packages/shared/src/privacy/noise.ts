import { randomFillSync } from 'node:crypto';
import { ErrorCode, FedmetaError } from '../errors.js';
import { createRng } from '../episodes/rng.js';

/**
 * Where DP noise comes from. Simulations and tests need a seeded, reproducible source; a deployed site should
 * draw from the operating system's generator, whose output an observer cannot predict from a seed.
 */
export interface NoiseSource {
  /** One standard normal value. */
  normal(): number;
}

/** A reproducible source from a seed (the project's seeded generator). Not for production privacy. */
export function seededNoise(seed: number): NoiseSource {
  const rng = createRng(seed);
  return boxMuller(() => {
    for (;;) {
      const u = rng.next();
      if (u > 0) return u;
    }
  });
}

/** Box-Muller on a uniform (0, 1) source, using both outputs of each pair. */
function boxMuller(uniform: () => number): NoiseSource {
  let spare: number | undefined;
  return {
    normal: () => {
      if (spare !== undefined) {
        const s = spare;
        spare = undefined;
        return s;
      }
      const r = Math.sqrt(-2 * Math.log(uniform()));
      const t = 2 * Math.PI * uniform();
      spare = r * Math.sin(t);
      return r * Math.cos(t);
    },
  };
}

/** Uniform in (0, 1) with 53 random bits, from a refillable buffer of OS randomness. */
function cryptoUniform(): () => number {
  const words = new Uint32Array(4096);
  let at = words.length;
  const next32 = (): number => {
    if (at === words.length) {
      randomFillSync(words);
      at = 0;
    }
    return words[at++]!;
  };
  return () => {
    for (;;) {
      const u = ((next32() >>> 5) * 67108864 + (next32() >>> 6)) / 9007199254740992;
      if (u > 0) return u;
    }
  };
}

/**
 * Normal values from the operating system's cryptographic generator (Box-Muller on 53-bit uniforms). The
 * tails reach about 8.6 standard deviations (the seeded source, on 32-bit uniforms, about 6.7).
 */
export function cryptoNoise(): NoiseSource {
  return boxMuller(cryptoUniform());
}

/** Adds independent N(0, std²) noise to every entry, in place (computed in float64, stored as float32). */
export function addGaussianNoise(v: Float32Array, std: number, noise: NoiseSource): Float32Array {
  if (!(Number.isFinite(std) && std >= 0)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'the noise standard deviation must be a finite number >= 0');
  }
  if (std === 0) return v;
  for (let i = 0; i < v.length; i++) v[i] = v[i]! + std * noise.normal();
  return v;
}
