import { ErrorCode, FedmetaError } from '@fedmeta/shared';

/**
 * How much of a batch an attack recovered. Reconstructions are paired one-to-one with the true flows, closest
 * pairs first (greedy on the L2 distance); a flow left without a reconstruction gets the attacker's fallback,
 * the marginal guess. Pairing uses the truth, as leakage studies do: the figures say what the update gives
 * away, an upper bound on what an attacker who must also tell good reconstructions from bad ones would get.
 * Units are the standardised ones the model sees.
 */
export interface RecoveryScore {
  /** Mean absolute error over every feature of every flow. */
  mae: number;
  /** Share of feature values within the tolerance. */
  featureMatch: number;
  /** Share of flows with every feature within the tolerance. */
  rowMatch: number;
}

export function scoreRecovery(truth: Float32Array, n: number, dim: number, candidates: readonly Float32Array[], fallback: Float32Array, tol: number): RecoveryScore {
  if (truth.length !== n * dim || fallback.length !== dim) throw new FedmetaError(ErrorCode.SHAPE, `expected ${n} true rows and a fallback of ${dim} features`);
  const pairs: Array<{ d: number; r: number; c: number }> = [];
  candidates.forEach((cand, c) => {
    if (cand.length !== dim) throw new FedmetaError(ErrorCode.SHAPE, `a reconstruction has ${cand.length} features, expected ${dim}`);
    for (let r = 0; r < n; r++) {
      let d = 0;
      for (let j = 0; j < dim; j++) {
        const e = cand[j]! - truth[r * dim + j]!;
        d += e * e;
      }
      // NaN (a degenerate ratio) sorts last and is never preferred to the fallback.
      pairs.push({ d: Number.isFinite(d) ? d : Number.POSITIVE_INFINITY, r, c });
    }
  });
  pairs.sort((a, b) => a.d - b.d);
  const assigned: Array<Float32Array | undefined> = new Array(n);
  const usedCandidate = new Set<number>();
  let left = n;
  for (const p of pairs) {
    if (left === 0 || !Number.isFinite(p.d)) break;
    if (assigned[p.r] !== undefined || usedCandidate.has(p.c)) continue;
    assigned[p.r] = candidates[p.c]!;
    usedCandidate.add(p.c);
    left--;
  }
  let abs = 0;
  let within = 0;
  let rows = 0;
  for (let r = 0; r < n; r++) {
    const guess = assigned[r] ?? fallback;
    let all = true;
    for (let j = 0; j < dim; j++) {
      const e = Math.abs(guess[j]! - truth[r * dim + j]!);
      abs += e;
      if (e <= tol) within++;
      else all = false;
    }
    if (all) rows++;
  }
  return { mae: abs / (n * dim), featureMatch: within / (n * dim), rowMatch: rows / n };
}

/** Per-feature median of n rows: the attacker's guess from the feature marginals. */
export function marginalMedian(x: Float32Array, n: number, dim: number): Float32Array {
  if (n < 1) throw new FedmetaError(ErrorCode.NO_ROWS, 'the marginal guess needs at least one flow');
  const out = new Float32Array(dim);
  const col = new Float64Array(n);
  for (let j = 0; j < dim; j++) {
    for (let r = 0; r < n; r++) col[r] = x[r * dim + j]!;
    col.sort();
    out[j] = n % 2 === 1 ? col[(n - 1) / 2]! : (col[n / 2 - 1]! + col[n / 2]!) / 2;
  }
  return out;
}

/** Rows of a row-major matrix as separate vectors. */
export function rowsOf(x: Float32Array, n: number, dim: number): Float32Array[] {
  return Array.from({ length: n }, (_, r) => x.slice(r * dim, (r + 1) * dim));
}
