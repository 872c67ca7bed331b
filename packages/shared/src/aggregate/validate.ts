import { ErrorCode, FedmetaError } from '../errors.js';
import type { AggregatorConfig, WeightedUpdate } from './types.js';

/** Default number of centered-clipping passes; see centered-clipping.ts for why 3. */
export const DEFAULT_CC_ITERATIONS = 3;

const NAMES: Record<AggregatorConfig['kind'], string> = {
  mean: 'mean',
  median: 'coordinate-wise median',
  'trimmed-mean': 'trimmed mean',
  'multi-krum': 'Multi-Krum',
  'centered-clipping': 'centered clipping',
  'norm-clip': 'norm clipping',
};

function isCount(x: number): boolean {
  return Number.isInteger(x) && x >= 0;
}

/**
 * Checks what can be checked from the configuration and the number of updates alone, before any update
 * arrives: a coordinator calls it to know whether a quorum of n sites is enough for the configured
 * aggregator. Returns a sentence saying what is wrong, or null when the aggregator can run on n updates.
 */
export function aggregatorPreconditions(config: AggregatorConfig, n: number): string | null {
  const name = NAMES[config.kind] ?? String(config.kind);
  if (!isCount(n) || n < 1) {
    return `the ${name} aggregator needs at least one update but got n = ${n}; wait for sites to report before aggregating`;
  }
  switch (config.kind) {
    case 'mean':
    case 'median':
      return null;
    case 'trimmed-mean': {
      const { trim } = config;
      if (!isCount(trim)) return `trimmed mean needs trim to be a whole number >= 0 but got trim = ${trim}; fix the aggregator config`;
      if (n <= 2 * trim) {
        return `trimmed mean with trim = ${trim} needs n > 2 * trim = ${2 * trim} updates but got n = ${n}; lower trim or wait for more sites`;
      }
      return null;
    }
    case 'multi-krum': {
      const { f } = config;
      if (!isCount(f)) return `Multi-Krum needs f to be a whole number >= 0 but got f = ${f}; fix the aggregator config`;
      if (n < 2 * f + 3) {
        return `Multi-Krum with f = ${f} needs n >= 2f + 3 = ${2 * f + 3} updates but got n = ${n}; lower f or wait for more sites`;
      }
      const m = config.m ?? n - f;
      if (!Number.isInteger(m) || m < 1 || m > n - f) {
        return `Multi-Krum with n = ${n} and f = ${f} needs 1 <= m <= n - f = ${n - f} but got m = ${m}; choose m in that range or leave it unset`;
      }
      return null;
    }
    case 'centered-clipping': {
      const { tau } = config;
      if (!(Number.isFinite(tau) && tau > 0)) {
        return `centered clipping (n = ${n}) needs a finite radius tau > 0; fix the aggregator config`;
      }
      const it = config.iterations ?? DEFAULT_CC_ITERATIONS;
      if (!Number.isInteger(it) || it < 1) {
        return `centered clipping needs iterations to be a whole number >= 1 but got ${it}; fix the aggregator config`;
      }
      return null;
    }
    case 'norm-clip': {
      const { maxNorm } = config;
      if (!(Number.isFinite(maxNorm) && maxNorm > 0)) {
        return `norm clipping (n = ${n}) needs a finite maxNorm > 0; fix the aggregator config`;
      }
      return null;
    }
    default: {
      const kind: unknown = (config as { kind: unknown }).kind;
      return `unknown aggregator kind ${JSON.stringify(kind)}; use mean, median, trimmed-mean, multi-krum, centered-clipping or norm-clip`;
    }
  }
}

/** Throws the coded error for a failed precondition of `config` with n updates. */
export function assertPreconditions(config: AggregatorConfig, n: number): void {
  const problem = aggregatorPreconditions(config, n);
  if (problem !== null) throw new FedmetaError(ErrorCode.PRECONDITION, problem);
}

/**
 * Whether the aggregator must see each site's update on its own.
 *
 * Secure aggregation lets the coordinator learn only a (weighted) sum of the sites' vectors, never one site's.
 * The mean is such a sum. Norm clipping is one too, because each site can clip its own update before masking
 * it. Centered clipping is a sum of clip(x_i - v, tau) per pass, and the reference v is public (the previous
 * aggregate), so each site can clip itself and the coordinator sums; every extra pass costs one more
 * secure-sum exchange. Median, trimmed mean and Multi-Krum rank or compare individual values across sites,
 * which no sum reveals, so they cannot run under secure aggregation.
 */
export function needsIndividualUpdates(config: AggregatorConfig): boolean {
  switch (config.kind) {
    case 'median':
    case 'trimmed-mean':
    case 'multi-krum':
      return true;
    case 'mean':
    case 'norm-clip':
    case 'centered-clipping':
      return false;
    default:
      return true;
  }
}

/**
 * The shared checks of every aggregator: at least one update, all of one length, finite values, weights
 * finite and >= 0 with a positive total. Returns the common length and the total weight.
 */
export function checkUpdates(
  updates: readonly WeightedUpdate[],
  name: string,
  options: { scanValues?: boolean } = {},
): { dim: number; totalWeight: number } {
  const scanValues = options.scanValues ?? true;
  const n = updates.length;
  if (n === 0) {
    throw new FedmetaError(ErrorCode.PRECONDITION, `the ${name} aggregator needs at least one update but got n = 0; wait for sites to report before aggregating`);
  }
  const dim = updates[0]!.vector.length;
  let totalWeight = 0;
  for (let i = 0; i < n; i++) {
    const u = updates[i]!;
    if (u.vector.length !== dim) {
      throw new FedmetaError(
        ErrorCode.SHAPE,
        `update ${i} of n = ${n} has ${u.vector.length} values but update 0 has ${dim}; all updates of a round must use the same parameter layout`,
      );
    }
    if (!(Number.isFinite(u.weight) && u.weight >= 0)) {
      throw new FedmetaError(ErrorCode.PRECONDITION, `update ${i} of n = ${n} has a weight that is negative or not finite; weights are example counts and must be >= 0`);
    }
    totalWeight += u.weight;
    // A weighted sum carries NaN and infinity through to its result, except from updates of weight 0.
    if ((scanValues || u.weight === 0) && !allFinite(u.vector)) throw nonFiniteUpdate(i, n);
  }
  if (!(totalWeight > 0 && Number.isFinite(totalWeight))) {
    throw new FedmetaError(ErrorCode.PRECONDITION, `the ${name} aggregator needs a positive, finite total weight over n = ${n} updates; every site reported zero examples`);
  }
  return { dim, totalWeight };
}

/** The error for update i of n holding NaN or infinity. */
export function nonFiniteUpdate(i: number, n: number): FedmetaError {
  return new FedmetaError(ErrorCode.NON_FINITE, `update ${i} of n = ${n} contains NaN or infinity; reject that site's update before aggregating`);
}

/**
 * For aggregators that are weighted sums: when the result is not finite, names the first update that made it
 * so (with the same error `checkUpdates` gives). Checking the one result instead of every input saves a pass
 * over n x dim values in the common case where every update is finite.
 */
export function assertFiniteSum(result: Float32Array | Float64Array, updates: readonly WeightedUpdate[]): void {
  if (allFinite(result)) return;
  for (let i = 0; i < updates.length; i++) if (!allFinite(updates[i]!.vector)) throw nonFiniteUpdate(i, updates.length);
}

/** True when no value is NaN or infinite; x * 0 is NaN exactly for those, so one check per vector suffices. */
export function allFinite(v: Float32Array | Float64Array): boolean {
  let s = 0;
  for (let j = 0; j < v.length; j++) s += v[j]! * 0;
  return s === 0;
}
