/**
 * Everything random in a round is derived from the federation's seed and the round's coordinates instead of
 * a generator that advances: a round re-issued after an abort or a restart then makes the same choices from
 * the same inputs, and nothing about the random state needs saving beyond the seed itself.
 */

// Domain tags keep the streams for different purposes apart even for equal coordinates.
const TAG_SAMPLE = 0x5a3c_e1d1;
const TAG_TASK = 0x7b1e_94a3;

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85eb_ca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2_ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hashes integers (each up to 2^53) into one well-mixed unsigned 32-bit seed. */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e37_79b9;
  for (const p of parts) {
    const lo = p >>> 0;
    const hi = Math.floor(p / 0x1_0000_0000) >>> 0;
    h = fmix32(Math.imul(h ^ lo, 0x27d4_eb2d) + 0x1656_67b1);
    h = fmix32(Math.imul(h ^ hi, 0x27d4_eb2d) + 0x1656_67b1);
  }
  return h;
}

/** sfc32: a small, fast generator with a 128-bit state; returns floats in [0, 1). */
export function createPrng(seed: number): () => number {
  let a = mixSeed(seed, 1);
  let b = mixSeed(seed, 2);
  let c = mixSeed(seed, 3);
  let d = 1;
  const next = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t / 0x1_0000_0000;
  };
  // Discard the first outputs so that nearby seeds do not start out correlated.
  for (let i = 0; i < 12; i++) next();
  return next;
}

/** The seed every sampled site receives in its round task (each site mixes in its own secret). */
export function taskSeed(seed: number, round: number): number {
  return mixSeed(seed, TAG_TASK, round);
}

/** How many of `online` sites a round asks: the fraction, rounded up, at least `minSites`, at most all. */
export function sampleCount(online: number, fraction: number, minSites: number): number {
  return Math.min(online, Math.max(minSites, Math.ceil(fraction * online)));
}

/**
 * Picks `count` sites from `online` (any order: it is sorted first) by a partial Fisher-Yates shuffle seeded
 * from (seed, round, attempt); the result is sorted by name. Equal inputs always give the same sample.
 */
export function sampleSites(online: readonly string[], count: number, seed: number, round: number, attempt: number): string[] {
  const pool = [...new Set(online)].sort();
  if (count >= pool.length) return pool;
  const rand = createPrng(mixSeed(seed, TAG_SAMPLE, round, attempt));
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rand() * (pool.length - i));
    const tmp = pool[i] as string;
    pool[i] = pool[j] as string;
    pool[j] = tmp;
  }
  return pool.slice(0, count).sort();
}
