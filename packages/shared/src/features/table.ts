import { ErrorCode, FedmetaError } from '../errors.js';
import { createRng, deriveSeed } from '../episodes/rng.js';
import { schemaFingerprint } from './fingerprint.js';
import { emptyReport, scanFlows, totalSkipped, type FlowSource, type ReadOptions, type ReadReport } from './read.js';
import { featureDim, type FeatureSchema } from './schema.js';

/**
 * A site's flows in memory, ready for episodes: row-major features (transformed, NOT standardised: the
 * federation's statistics are applied later with `standardize`), binary labels and family indices.
 */
export interface FlowTable {
  /** n * dim values, row-major. */
  x: Float32Array;
  /** 0 benign, 1 attack. */
  labels: Int32Array;
  /** Index into `families` per row. */
  family: Int32Array;
  /** Family names, sorted, so that two tables of the same data index them alike. */
  families: string[];
  n: number;
  dim: number;
  /** Fingerprint of the schema the table was read with. */
  fingerprint: string;
  /** Identifier values per row, column-major: values[c][row] is column `columns[c]`. On site only. */
  ids?: { columns: string[]; values: string[][] };
  report: ReadReport;
}

export interface LoadOptions extends ReadOptions {
  /**
   * Keep at most this many rows per family, chosen uniformly at random over the whole file (reservoir
   * sampling, seeded by `seed`), so a 1 GB capture can be cut to a balanced table in one pass.
   */
  maxPerFamily?: number;
}

/** Growable row storage: doubles its capacity, so loading n rows copies O(n) values in all. */
class TableBuilder {
  x: Float32Array;
  labels: Int32Array;
  family: Int32Array;
  ids: string[][];
  n = 0;

  constructor(
    readonly dim: number,
    readonly idCount: number,
    capacity = 1024,
  ) {
    this.x = new Float32Array(capacity * dim);
    this.labels = new Int32Array(capacity);
    this.family = new Int32Array(capacity);
    this.ids = Array.from({ length: idCount }, () => []);
  }

  private grow(): void {
    const cap = this.labels.length * 2;
    const x = new Float32Array(cap * this.dim);
    x.set(this.x);
    this.x = x;
    const labels = new Int32Array(cap);
    labels.set(this.labels);
    this.labels = labels;
    const family = new Int32Array(cap);
    family.set(this.family);
    this.family = family;
  }

  /** Writes a row into `slot` (a new one when slot === n). */
  put(slot: number, x: Float32Array, label: number, family: number, ids: string[] | undefined): void {
    if (slot === this.n) {
      if (this.n === this.labels.length) this.grow();
      this.n++;
    }
    this.x.set(x, slot * this.dim);
    this.labels[slot] = label;
    this.family[slot] = family;
    if (ids !== undefined) for (let c = 0; c < this.idCount; c++) this.ids[c]![slot] = ids[c]!;
  }
}

/**
 * Reads a CSV or .csv.gz flow file into a FlowTable, streaming: memory is the table itself. Refuses a file
 * that lacks the schema's columns (MISSING_COLUMNS) or keeps no row at all (NO_ROWS).
 */
export async function loadFlowTable(input: FlowSource, schema: FeatureSchema, opts: LoadOptions = {}): Promise<FlowTable> {
  const cap = opts.maxPerFamily;
  if (cap !== undefined && (!Number.isInteger(cap) || cap < 1)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'maxPerFamily must be a positive integer');
  }
  const report = emptyReport();
  const dim = featureDim(schema);
  const idCount = opts.keepIds === true ? schema.ids.length : 0;
  const builder = new TableBuilder(dim, idCount);
  const familyIndex = new Map<string, number>();
  const seen: number[] = []; // rows offered per family, for the reservoir
  const slots: number[][] = []; // table slots per family, for the reservoir
  const rng = createRng(deriveSeed(opts.seed ?? 0, 'reservoir'));

  for await (const r of scanFlows(input, schema, opts, report)) {
    let f = familyIndex.get(r.family);
    if (f === undefined) {
      f = familyIndex.size;
      familyIndex.set(r.family, f);
      seen.push(0);
      slots.push([]);
    }
    if (cap === undefined) {
      builder.put(builder.n, r.x, r.label, f, r.ids);
      report.rowsKept++;
      continue;
    }
    const k = ++seen[f]!;
    const mine = slots[f]!;
    if (mine.length < cap) {
      mine.push(builder.n);
      builder.put(builder.n, r.x, r.label, f, r.ids);
      report.rowsKept++;
    } else {
      // Reservoir: the k-th row of a family replaces a kept one with probability cap / k.
      const j = rng.int(k);
      if (j < cap) builder.put(mine[j]!, r.x, r.label, f, r.ids);
      report.rowsFiltered++;
    }
  }
  if (builder.n === 0) {
    const name = typeof input === 'string' ? 'the flow file' : (opts.sourceName ?? 'the flow stream');
    throw new FedmetaError(
      ErrorCode.NO_ROWS,
      `no usable row in ${name} (read ${report.rowsRead}, filtered ${report.rowsFiltered}, bad ${totalSkipped(report)}); check the file and the schema's label values`,
    );
  }
  return finishTable(builder, familyIndex, schema, report);
}

/** Sorts family names and re-indexes rows, trims the buffers, fills byFamily. */
function finishTable(b: TableBuilder, index: Map<string, number>, schema: FeatureSchema, report: ReadReport): FlowTable {
  const families = [...index.keys()].sort();
  const remap = new Int32Array(index.size);
  for (const [name, i] of index) remap[i] = families.indexOf(name);
  const family = new Int32Array(b.n);
  const counts = new Array<number>(families.length).fill(0);
  for (let i = 0; i < b.n; i++) {
    const f = remap[b.family[i]!]!;
    family[i] = f;
    counts[f]!++;
  }
  report.byFamily = Object.fromEntries(families.map((name, i) => [name, counts[i]!]));
  const table: FlowTable = {
    x: b.x.slice(0, b.n * b.dim),
    labels: b.labels.slice(0, b.n),
    family,
    families,
    n: b.n,
    dim: b.dim,
    fingerprint: schemaFingerprint(schema),
    report,
  };
  if (b.idCount > 0) table.ids = { columns: [...schema.ids], values: b.ids };
  return table;
}

/**
 * A new table holding the given rows in the given order (used to give each site its own slice). Family
 * names and indices are kept as they are, so indices mean the same thing in every slice of one table.
 */
export function subsetTable(table: FlowTable, rows: ArrayLike<number>): FlowTable {
  const n = rows.length;
  const { dim } = table;
  const x = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  const family = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    if (!Number.isInteger(r) || r < 0 || r >= table.n) {
      throw new FedmetaError(ErrorCode.PRECONDITION, `row index ${r} is outside the table (${table.n} rows)`);
    }
    x.set(table.x.subarray(r * dim, (r + 1) * dim), i * dim);
    labels[i] = table.labels[r]!;
    family[i] = table.family[r]!;
  }
  const byFamily: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const name = table.families[family[i]!]!;
    byFamily[name] = (byFamily[name] ?? 0) + 1;
  }
  const report: ReadReport = { ...emptyReport(), rowsRead: n, rowsKept: n, byFamily };
  const sub: FlowTable = { x, labels, family, families: [...table.families], n, dim, fingerprint: table.fingerprint, report };
  if (table.ids !== undefined) {
    const src = table.ids.values;
    sub.ids = { columns: [...table.ids.columns], values: src.map((col) => Array.from({ length: n }, (_, i) => col[rows[i]!]!)) };
  }
  return sub;
}

/** The identifier values of one row, by column name (on site, to name a flagged flow in an alert). */
export function rowIds(table: FlowTable, row: number): Record<string, string> {
  const out: Record<string, string> = {};
  if (table.ids === undefined) return out;
  table.ids.columns.forEach((c, k) => {
    out[c] = table.ids!.values[k]![row] ?? '';
  });
  return out;
}

/** Rows of several tables of the same schema in one table; family names are merged and re-indexed. */
export function mergeTables(tables: readonly FlowTable[]): FlowTable {
  const first = tables[0];
  if (first === undefined) throw new FedmetaError(ErrorCode.NO_ROWS, 'no flow table to merge; give at least one flow file');
  if (tables.length === 1) return first;
  const families = [...new Set(tables.flatMap((t) => t.families))].sort();
  const n = tables.reduce((a, t) => a + t.n, 0);
  const { dim } = first;
  const x = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  const family = new Int32Array(n);
  const report = emptyReport();
  let at = 0;
  for (const t of tables) {
    if (t.dim !== dim || t.fingerprint !== first.fingerprint) {
      throw new FedmetaError(ErrorCode.SHAPE, 'flow tables read with different feature schemas cannot be merged');
    }
    const remap = t.families.map((name) => families.indexOf(name));
    x.set(t.x, at * dim);
    labels.set(t.labels, at);
    for (let i = 0; i < t.n; i++) family[at + i] = remap[t.family[i]!]!;
    at += t.n;
    report.rowsRead += t.report.rowsRead;
    report.rowsKept += t.report.rowsKept;
    report.rowsFiltered += t.report.rowsFiltered;
    for (const [reason, count] of Object.entries(t.report.skipped)) report.skipped[reason as keyof typeof report.skipped] += count;
    for (const [name, count] of Object.entries(t.report.byFamily)) report.byFamily[name] = (report.byFamily[name] ?? 0) + count;
  }
  return { x, labels, family, families, n, dim, fingerprint: first.fingerprint, report };
}
