import { randomBytes } from 'node:crypto';
import { ErrorCode, FedmetaError } from '../errors.js';

/**
 * Shamir secret sharing of 32-byte secrets over the prime field GF(p), p = 2^256 + 297 (the smallest prime
 * above 2^256, so every 32-byte string is a field element and a share is one 33-byte element). The share of
 * party x is f(x) for a random polynomial f of degree t − 1 with f(0) = secret; any t shares give f(0) by
 * Lagrange interpolation, t − 1 shares are uniformly distributed whatever the secret.
 */
export const SHAMIR_PRIME = (1n << 256n) + 297n;
export const SECRET_BYTES = 32;
export const SHARE_BYTES = 33;
/** Share x-coordinates are roster indices; bounded so they stay distinct, non-zero field elements. */
export const MAX_SHARE_X = 0xffffffff;

export interface Share {
  x: number;
  value: Uint8Array;
}

const P = SHAMIR_PRIME;

function mod(a: bigint): bigint {
  const r = a % P;
  return r < 0n ? r + P : r;
}

function powMod(base: bigint, exp: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return result;
}

function invMod(a: bigint): bigint {
  if (mod(a) === 0n) throw new FedmetaError(ErrorCode.PRECONDITION, 'share x-coordinates must be distinct; pass each holder once');
  return powMod(a, P - 2n);
}

export function bytesToBigint(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

export function bigintToBytes(v: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = v;
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  if (x !== 0n) throw new FedmetaError(ErrorCode.PRECONDITION, `a field element does not fit in ${length} bytes`);
  return out;
}

/** A uniform field element: 40 random bytes reduced mod p (bias below 2^-63). */
function randomElement(): bigint {
  return mod(bytesToBigint(randomBytes(40)));
}

function checkXs(xs: readonly number[]): void {
  const seen = new Set<number>();
  for (const x of xs) {
    if (!Number.isInteger(x) || x < 1 || x > MAX_SHARE_X || seen.has(x)) {
      throw new FedmetaError(ErrorCode.PRECONDITION, `share x-coordinates must be distinct integers in 1..${MAX_SHARE_X}`);
    }
    seen.add(x);
  }
}

/** Splits `secret` (32 bytes) into one share per x in `xs`; any `threshold` of them rebuild it. */
export function splitSecret(secret: Uint8Array, xs: readonly number[], threshold: number): Share[] {
  if (secret.length !== SECRET_BYTES) {
    throw new FedmetaError(ErrorCode.WRONG_LENGTH, `a shared secret is ${SECRET_BYTES} bytes, got ${secret.length}`);
  }
  checkXs(xs);
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > xs.length) {
    throw new FedmetaError(ErrorCode.PRECONDITION, `threshold ${threshold} must lie between 1 and the ${xs.length} share holders`);
  }
  const coeffs: bigint[] = [bytesToBigint(secret)];
  for (let i = 1; i < threshold; i++) coeffs.push(randomElement());
  return xs.map((x) => {
    const bx = BigInt(x);
    let y = 0n;
    for (let i = coeffs.length - 1; i >= 0; i--) y = (y * bx + (coeffs[i] as bigint)) % P;
    return { x, value: bigintToBytes(y, SHARE_BYTES) };
  });
}

/*
 * The coefficients λ_i = Π_{j≠i} x_j / (x_j − x_i) depend only on the set of x-coordinates. A server
 * rebuilds many secrets from the same responders, so they are cached (a small cache: one round's sets).
 */
const lagrangeCache = new Map<string, bigint[]>();
const LAGRANGE_CACHE_MAX = 4096;

/** Lagrange coefficients for evaluating at 0 the polynomial through points with x-coordinates `xs`. */
export function lagrangeAtZero(xs: readonly number[]): bigint[] {
  const key = xs.join(',');
  const hit = lagrangeCache.get(key);
  if (hit) return hit;
  checkXs(xs);
  const bx = xs.map(BigInt);
  const nums: bigint[] = [];
  const dens: bigint[] = [];
  for (let i = 0; i < bx.length; i++) {
    const xi = bx[i] as bigint;
    let num = 1n;
    let den = 1n;
    for (let j = 0; j < bx.length; j++) {
      if (j === i) continue;
      const xj = bx[j] as bigint;
      num = (num * xj) % P;
      den = (den * mod(xj - xi)) % P;
    }
    nums.push(num);
    dens.push(den);
  }
  // One inversion for all denominators (Montgomery's trick): inversions cost ~400 multiplications each.
  const prefix: bigint[] = [];
  let run = 1n;
  for (const d of dens) {
    prefix.push(run);
    run = (run * d) % P;
  }
  let inv = invMod(run);
  const out = new Array<bigint>(bx.length);
  for (let i = bx.length - 1; i >= 0; i--) {
    out[i] = (((inv * (prefix[i] as bigint)) % P) * (nums[i] as bigint)) % P;
    inv = (inv * (dens[i] as bigint)) % P;
  }
  if (lagrangeCache.size >= LAGRANGE_CACHE_MAX) lagrangeCache.clear();
  lagrangeCache.set(key, out);
  return out;
}

/**
 * Rebuilds a secret from the first `threshold` shares (callers order them the same way for every secret so
 * the coefficients are reused). Throws SECAGG_ABORTED with fewer shares, and SECAGG_AUTH when the result is
 * not a 32-byte secret (which, for a field this size, means a share was altered).
 */
export function reconstructSecret(shares: readonly Share[], threshold: number): Uint8Array {
  if (shares.length < threshold) {
    throw new FedmetaError(
      ErrorCode.SECAGG_ABORTED,
      `only ${shares.length} shares of a secret arrived and ${threshold} are needed; the round cannot be unmasked and must be re-run`,
    );
  }
  const used = shares.slice(0, threshold);
  const lambdas = lagrangeAtZero(used.map((s) => s.x));
  let acc = 0n;
  for (let i = 0; i < used.length; i++) {
    const share = used[i] as Share;
    if (share.value.length !== SHARE_BYTES) {
      throw new FedmetaError(ErrorCode.WRONG_LENGTH, `a share is ${SHARE_BYTES} bytes, got ${share.value.length}`);
    }
    const y = bytesToBigint(share.value);
    if (y >= P) throw new FedmetaError(ErrorCode.SECAGG_AUTH, 'a share is not a field element; a site sent a corrupted share');
    acc = (acc + (lambdas[i] as bigint) * y) % P;
  }
  if (acc >> 256n !== 0n) {
    throw new FedmetaError(ErrorCode.SECAGG_AUTH, 'the shares of a secret do not agree; a site sent a corrupted share');
  }
  return bigintToBytes(acc, SECRET_BYTES);
}
