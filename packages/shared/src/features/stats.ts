import { ErrorCode, FedmetaError } from '../errors.js';
import { featureDim, standardizeMask, type FeatureSchema } from './schema.js';
import type { FlowTable } from './table.js';

/** Standardisation statistics: what every site applies, identical everywhere. */
export interface FeatureStats {
  count: number;
  mean: number[];
  std: number[];
}

/** The aggregates a site may share: a count and per-feature sums. No row can be recovered from them. */
export interface StatsSums {
  count: number;
  sum: number[];
  sumsq: number[];
}

/**
 * A feature whose spread is below this is treated as constant: it is centred and left unscaled, instead of
 * being blown up by dividing by a tiny std.
 */
const MIN_STD = 1e-6;

/**
 * Per-feature count, sum and sum of squares over transformed (not yet standardised) feature vectors.
 * Sums rather than running means on purpose: sums add up across sites, in any order and through secure
 * aggregation's masked addition, and the pooled mean and std follow exactly. Doubles keep the sums exact
 * enough for signed-log features, which stay below ~50 in magnitude.
 */
export class StatsAccumulator {
  count = 0;
  readonly sum: Float64Array;
  readonly sumsq: Float64Array;
  /** 1 for features to standardise; the others get mean 0 and std 1 at `finalize`. */
  readonly mask: Uint8Array;

  constructor(
    readonly dim: number,
    mask?: Uint8Array,
  ) {
    if (!Number.isInteger(dim) || dim < 1) throw new FedmetaError(ErrorCode.SHAPE, `a statistics accumulator needs a positive width, got ${dim}`);
    if (mask !== undefined && mask.length !== dim) {
      throw new FedmetaError(ErrorCode.SHAPE, `the standardisation mask has ${mask.length} entries for ${dim} features`);
    }
    this.sum = new Float64Array(dim);
    this.sumsq = new Float64Array(dim);
    this.mask = mask !== undefined ? Uint8Array.from(mask) : new Uint8Array(dim).fill(1);
  }

  /** An accumulator for a schema: its width and which features it standardises. */
  static forSchema(schema: FeatureSchema): StatsAccumulator {
    return new StatsAccumulator(featureDim(schema), standardizeMask(schema));
  }

  /** Adds n rows of a row-major matrix (or only the listed rows). */
  addRows(x: Float32Array, n: number, rows?: ArrayLike<number>): this {
    const d = this.dim;
    if (x.length < n * d) throw new FedmetaError(ErrorCode.SHAPE, `expected at least ${n * d} values for ${n} rows of ${d}, got ${x.length}`);
    const count = rows === undefined ? n : rows.length;
    const { sum, sumsq } = this;
    for (let k = 0; k < count; k++) {
      const r = rows === undefined ? k : rows[k]!;
      const off = r * d;
      for (let j = 0; j < d; j++) {
        const v = x[off + j]!;
        sum[j] = sum[j]! + v;
        sumsq[j] = sumsq[j]! + v * v;
      }
    }
    this.count += count;
    return this;
  }

  /** Adds a table's rows (or a subset of them). */
  addTable(table: FlowTable, rows?: ArrayLike<number>): this {
    if (table.dim !== this.dim) throw new FedmetaError(ErrorCode.SHAPE, `table has ${table.dim} features, accumulator ${this.dim}`);
    return this.addRows(table.x, table.n, rows);
  }

  /** Adds another accumulator's sums into this one. */
  add(other: StatsAccumulator | StatsSums): this {
    if (other.sum.length !== this.dim || other.sumsq.length !== this.dim) {
      throw new FedmetaError(ErrorCode.SHAPE, `cannot merge statistics of ${other.sum.length} features into ${this.dim}`);
    }
    if (!Number.isFinite(other.count) || other.count < 0) throw new FedmetaError(ErrorCode.NON_FINITE, 'a statistics count must be a finite non-negative number');
    for (let j = 0; j < this.dim; j++) {
      this.sum[j] = this.sum[j]! + other.sum[j]!;
      this.sumsq[j] = this.sumsq[j]! + other.sumsq[j]!;
    }
    this.count += other.count;
    return this;
  }

  /** A new accumulator holding a's and b's rows together; a's mask is kept. */
  static merge(a: StatsAccumulator, b: StatsAccumulator | StatsSums): StatsAccumulator {
    return new StatsAccumulator(a.dim, a.mask).add(a).add(b);
  }

  /** The shareable aggregates, as plain numbers. */
  toJSON(): StatsSums {
    return { count: this.count, sum: Array.from(this.sum), sumsq: Array.from(this.sumsq) };
  }

  static fromJSON(s: StatsSums, mask?: Uint8Array): StatsAccumulator {
    if (s.sum.length !== s.sumsq.length) throw new FedmetaError(ErrorCode.SHAPE, 'statistics sums and sums of squares differ in length');
    if (![...s.sum, ...s.sumsq].every(Number.isFinite)) throw new FedmetaError(ErrorCode.NON_FINITE, 'statistics sums must be finite numbers');
    return new StatsAccumulator(s.sum.length, mask).add(s);
  }

  /** Pooled mean and (population) std per feature; features outside the mask get mean 0, std 1. */
  finalize(): FeatureStats {
    if (this.count < 1) throw new FedmetaError(ErrorCode.NO_ROWS, 'no rows were accumulated, so there is nothing to standardise with; give every site some flows');
    const mean: number[] = [];
    const std: number[] = [];
    for (let j = 0; j < this.dim; j++) {
      if (this.mask[j] === 0) {
        mean.push(0);
        std.push(1);
        continue;
      }
      const m = this.sum[j]! / this.count;
      const variance = Math.max(0, this.sumsq[j]! / this.count - m * m);
      const s = Math.sqrt(variance);
      mean.push(m);
      std.push(s < MIN_STD ? 1 : s);
    }
    return { count: this.count, mean, std };
  }
}

/** (x - mean) / std, in place, over a row-major matrix of any number of rows. */
export function standardizeRows(x: Float32Array, dim: number, stats: FeatureStats): Float32Array {
  if (stats.mean.length !== dim || stats.std.length !== dim) {
    throw new FedmetaError(ErrorCode.SHAPE, `statistics cover ${stats.mean.length} features, the data has ${dim}`);
  }
  const mean = Float64Array.from(stats.mean);
  const inv = Float64Array.from(stats.std, (s) => 1 / s);
  for (let off = 0; off < x.length; off += dim) {
    for (let j = 0; j < dim; j++) x[off + j] = (x[off + j]! - mean[j]!) * inv[j]!;
  }
  return x;
}

/** Standardises a table's features in place and returns the table. */
export function standardize(table: FlowTable, stats: FeatureStats): FlowTable {
  standardizeRows(table.x, table.dim, stats);
  return table;
}
