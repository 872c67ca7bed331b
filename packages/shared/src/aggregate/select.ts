/**
 * In-place selection on a typed-array range: after `selectInPlace(a, lo, hi, k)`, a[k] holds the value that
 * would sit at index k if a[lo..hi) were sorted, everything in a[lo..k) is <= a[k] and everything in
 * a(k..hi) is >= a[k]. Expected linear time; values must not be NaN (the aggregators reject NaN first).
 *
 * Hoare partitioning keeps runs of equal values cheap (updates often share exact zeros), and the
 * median-of-three pivot keeps already-sorted inputs linear.
 */
export function selectInPlace(a: Float32Array | Float64Array, lo: number, hi: number, k: number): void {
  let l = lo;
  let r = hi - 1;
  while (r > l) {
    const mid = (l + r) >>> 1;
    const x = a[l]!;
    const y = a[mid]!;
    const z = a[r]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = l;
    let j = r;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    // Now a[l..j] <= pivot <= a[i..r], and anything strictly between j and i equals the pivot.
    if (k <= j) r = j;
    else if (k >= i) l = i;
    else return;
  }
}

/** Largest value of a[lo..hi); hi > lo. */
export function maxOf(a: Float32Array | Float64Array, lo: number, hi: number): number {
  let m = a[lo]!;
  for (let j = lo + 1; j < hi; j++) {
    const x = a[j]!;
    if (x > m) m = x;
  }
  return m;
}
