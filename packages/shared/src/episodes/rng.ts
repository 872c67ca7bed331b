import { ErrorCode, FedmetaError } from '../errors.js';

/**
 * A small seeded generator (sfc32: 128 bits of state, passes PractRand to many TB) shared by everything that
 * must be reproducible from a seed: the sample script, episode sampling on a site and site sampling on the
 * coordinator. Its whole state is four uint32 words, so a checkpoint stores `state()` and a restart continues
 * the exact same stream with `restoreRng(state)`.
 */
export interface Rng {
  /** Uniform in [0, 1), 32 bits of resolution. */
  next(): number;
  /** Uniform uint32. */
  uint32(): number;
  /** Uniform integer in [0, n); n must be a positive integer below 2^32. */
  int(n: number): number;
  /** Standard normal (Box-Muller; one value per call, the second is discarded so the state stays 4 words). */
  normal(): number;
  /** Fisher-Yates shuffle in place; returns the same array. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T;
  /** A copy of the four state words. */
  state(): number[];
  /** Continue from a state obtained with `state()`. */
  setState(s: readonly number[]): void;
}

/** splitmix32 step: spreads a seed over 32 bits so that nearby seeds give unrelated streams. */
function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

class Sfc32 implements Rng {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;

  constructor(words: readonly number[]) {
    this.setState(words);
  }

  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  next(): number {
    return this.uint32() / 4294967296;
  }

  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 4294967296) {
      throw new FedmetaError(ErrorCode.PRECONDITION, `rng.int needs a positive integer bound below 2^32, got ${n}`);
    }
    // Rejection sampling keeps every outcome exactly equally likely.
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const u = this.uint32();
      if (u < limit) return u % n;
    }
  }

  normal(): number {
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  state(): number[] {
    return [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0];
  }

  setState(s: readonly number[]): void {
    if (s.length !== 4 || s.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff)) {
      throw new FedmetaError(ErrorCode.STATE_CORRUPT, 'a random-generator state must be 4 unsigned 32-bit integers; the saved state is damaged, restore an earlier checkpoint');
    }
    this.a = s[0]! | 0;
    this.b = s[1]! | 0;
    this.c = s[2]! | 0;
    this.d = s[3]! | 0;
  }
}

/**
 * A generator seeded by any finite number (integers up to 2^53 keep all their bits). The first outputs are
 * discarded because sfc32 needs a few rounds to mix a seeded state.
 */
export function createRng(seed: number): Rng {
  if (!Number.isFinite(seed)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'a random seed must be a finite number; set an integer seed');
  }
  const lo = (seed % 4294967296) >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  const frac = Math.round((seed - Math.floor(seed)) * 4294967296) >>> 0;
  const rng = new Sfc32([splitmix32(lo), splitmix32(hi ^ 0x632be5ab), splitmix32(frac ^ 0x1b873593), 1]);
  for (let i = 0; i < 16; i++) rng.uint32();
  return rng;
}

/** A generator that continues from a saved state. */
export function restoreRng(state: readonly number[]): Rng {
  return new Sfc32(state);
}

/**
 * A seed derived from a base seed and labels (a site id, a round number), so independent streams can be
 * made without coordinating state: deriveSeed(seed, 'site-3', 12). FNV-1a over the parts, then mixed.
 */
export function deriveSeed(seed: number, ...parts: (string | number)[]): number {
  let h = 0x811c9dc5;
  const feed = (s: string): void => {
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    h ^= 0xff; // separator, so ('ab','c') and ('a','bc') differ
    h = Math.imul(h, 0x01000193);
  };
  feed(String(seed));
  for (const p of parts) feed(typeof p === 'number' ? `#${p}` : p);
  return splitmix32(h >>> 0);
}
