/**
 * Float64 helpers for the privacy accountant, which sums terms of wildly different magnitudes (e^-700 to
 * e^+5000): everything is kept as a logarithm, with a separate sign where a series alternates.
 */

/** log(e^a + e^b), exact for -Infinity arguments. */
export function logAdd(a: number, b: number): number {
  if (a === Number.NEGATIVE_INFINITY) return b;
  if (b === Number.NEGATIVE_INFINITY) return a;
  const hi = Math.max(a, b);
  return hi + Math.log1p(Math.exp(Math.min(a, b) - hi));
}

/** A signed number stored as sign and log-magnitude, so that alternating series can be summed in log space. */
export interface SignedLog {
  sign: -1 | 0 | 1;
  log: number;
}

export const SIGNED_ZERO: SignedLog = { sign: 0, log: Number.NEGATIVE_INFINITY };

/** x + sign * e^log, in signed-log form. */
export function signedAdd(x: SignedLog, sign: -1 | 1, log: number): SignedLog {
  if (log === Number.NEGATIVE_INFINITY) return x;
  if (x.sign === 0) return { sign, log };
  if (x.sign === sign) return { sign, log: logAdd(x.log, log) };
  // Opposite signs: the larger magnitude wins, minus the smaller one.
  if (x.log === log) return SIGNED_ZERO;
  const [big, small, s] = x.log > log ? [x.log, log, x.sign] : [log, x.log, sign];
  return { sign: s, log: big + Math.log1p(-Math.exp(small - big)) };
}

/** Sum of signed-log values as a signed-log value. */
export function signedSum(a: SignedLog, b: SignedLog): SignedLog {
  return b.sign === 0 ? a : signedAdd(a, b.sign, b.log);
}

const SQRT_PI = Math.sqrt(Math.PI);
const LOG_SQRT_PI = Math.log(SQRT_PI);

/**
 * erf(x) for |x| < 3 from its everywhere-positive series
 * erf(x) = 2/√π · e^{-x²} · Σ_n 2^n x^{2n+1} / (1·3·…·(2n+1)),
 * which has no cancellation (unlike the alternating Taylor series).
 */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return (2 / SQRT_PI) * Math.exp(-x2) * sum;
}

/**
 * e^{x²} · erfc(x) for x >= 2 by the continued fraction erfc(x) = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))),
 * evaluated backward (the fraction converges faster as x grows).
 */
function scaledErfcFraction(x: number): number {
  return 1 / (fractionDenominator(x) * SQRT_PI);
}

/**
 * The denominator x + (1/2)/(x + 1/(x + …)). The depth needed for full double precision falls like 1/x²
 * (55 terms at x = 2, 16 at x = 5); this depth is about twice that everywhere.
 */
function fractionDenominator(x: number): number {
  let f = x;
  for (let k = Math.ceil(10 + 400 / (x * x)); k >= 1; k--) f = x + k / 2 / f;
  return f;
}

/** erfc(x) in float64 (relative error about 1e-14 where erfc is not subnormal). */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) return 1 - erfSeries(x);
  if (x > 27.3) return 0; // below the smallest double
  return Math.exp(-x * x) * scaledErfcFraction(x);
}

/** log(erfc(x)), finite for every finite x (no underflow for large x). */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x < 2) return Math.log(erfc(x));
  return -x * x - LOG_SQRT_PI - Math.log(fractionDenominator(x));
}
