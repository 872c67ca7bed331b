import type { WeightedUpdate } from './types.js';
import { assertPreconditions, checkUpdates } from './validate.js';
import { maxOf, selectInPlace } from './select.js';

/*
 * Order statistics ignore the weights on purpose: a weight is a count the site reports about itself, and
 * weighting a median or a trimmed mean by it would let one lying site buy the majority it needs.
 *
 * Each coordinate needs the n values of all sites side by side. Gathering them one coordinate at a time
 * jumps between n arrays for every value; instead a block of BLOCK coordinates is copied at once into a
 * coordinate-major scratch buffer (n * BLOCK float32), whose columns are then selected in place.
 */
const BLOCK = 256;

type Reducer = (col: Float32Array, lo: number, hi: number) => number;

function byCoordinate(updates: readonly WeightedUpdate[], dim: number, reduce: Reducer): Float32Array {
  const n = updates.length;
  const out = new Float32Array(dim);
  const scratch = new Float32Array(n * Math.min(BLOCK, dim));
  for (let j0 = 0; j0 < dim; j0 += BLOCK) {
    const width = Math.min(BLOCK, dim - j0);
    for (let i = 0; i < n; i++) {
      const v = updates[i]!.vector;
      for (let b = 0, at = i; b < width; b++, at += n) scratch[at] = v[j0 + b]!;
    }
    for (let b = 0; b < width; b++) out[j0 + b] = reduce(scratch, b * n, b * n + n);
  }
  return out;
}

/**
 * Coordinate-wise median (unweighted): for odd n the middle value, for even n the mean of the two middle
 * values. Tolerates up to (n - 1) / 2 arbitrary updates per coordinate.
 * Preconditions: n >= 1 updates of one length (else SHAPE), finite values (else NON_FINITE), weights finite
 * and >= 0 with a positive total (else PRECONDITION), though the weights do not enter the result.
 */
export function coordinateMedian(updates: readonly WeightedUpdate[]): Float32Array {
  assertPreconditions({ kind: 'median' }, updates.length);
  const { dim } = checkUpdates(updates, 'coordinate-wise median');
  const n = updates.length;
  const half = n >> 1;
  const reduce: Reducer =
    n % 2 === 1
      ? (col, lo, hi) => {
          selectInPlace(col, lo, hi, lo + half);
          return col[lo + half]!;
        }
      : (col, lo, hi) => {
          selectInPlace(col, lo, hi, lo + half);
          // After selection the lower half sits left of lo + half, so its largest is the other middle value.
          return (maxOf(col, lo, lo + half) + col[lo + half]!) / 2;
        };
  return byCoordinate(updates, dim, reduce);
}

/**
 * Coordinate-wise trimmed mean (unweighted): per coordinate, drops the `trim` smallest and `trim` largest
 * values and averages the other n - 2 * trim. Tolerates up to `trim` arbitrary updates.
 * Preconditions: trim a whole number >= 0 and n > 2 * trim (else PRECONDITION naming n and trim), plus
 * those of `coordinateMedian`. With trim = 0 it is the unweighted mean.
 */
export function trimmedMean(updates: readonly WeightedUpdate[], trim: number): Float32Array {
  assertPreconditions({ kind: 'trimmed-mean', trim }, updates.length);
  const { dim } = checkUpdates(updates, 'trimmed mean');
  const n = updates.length;
  const kept = n - 2 * trim;
  const reduce: Reducer = (col, lo, hi) => {
    if (trim > 0) {
      selectInPlace(col, lo, hi, lo + trim); // the trim smallest now sit in [lo, lo + trim)
      selectInPlace(col, lo + trim, hi, hi - trim); // the trim largest now sit in [hi - trim, hi)
    }
    let s = 0;
    for (let j = lo + trim; j < hi - trim; j++) s += col[j]!;
    return s / kept;
  };
  return byCoordinate(updates, dim, reduce);
}
