import { ErrorCode, FedmetaError, deriveSeed, emptyReport, loadFlowTable, resolveSchema } from '@fedmeta/shared';
import type { FeatureSchema, FlowTable } from '@fedmeta/shared';

/** The dataset an evaluation runs on: every configured file in one table (transformed, not standardised). */
export interface Dataset {
  schema: FeatureSchema;
  table: FlowTable;
}

/** Rows of several tables read with one schema, in one table; family names merged and re-indexed. */
export function mergeTables(tables: readonly FlowTable[]): FlowTable {
  const first = tables[0];
  if (first === undefined) throw new FedmetaError(ErrorCode.NO_ROWS, 'no flow table to merge; list at least one file under data.files');
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
      throw new FedmetaError(ErrorCode.SHAPE, 'flow files read with different feature schemas cannot be merged');
    }
    const remap = t.families.map((name) => families.indexOf(name));
    x.set(t.x, at * dim);
    labels.set(t.labels, at);
    for (let i = 0; i < t.n; i++) family[at + i] = remap[t.family[i]!]!;
    at += t.n;
    report.rowsRead += t.report.rowsRead;
    report.rowsKept += t.report.rowsKept;
    report.rowsFiltered += t.report.rowsFiltered;
    for (const [name, count] of Object.entries(t.report.byFamily)) report.byFamily[name] = (report.byFamily[name] ?? 0) + count;
  }
  return { x, labels, family, families, n, dim, fingerprint: first.fingerprint, report };
}

export interface LoadDatasetOptions {
  files: readonly string[];
  schemaRef: string;
  maxPerFamily?: number;
  seed?: number;
}

export async function loadDataset(opts: LoadDatasetOptions): Promise<Dataset> {
  const schema = await resolveSchema(opts.schemaRef);
  const tables: FlowTable[] = [];
  for (const file of opts.files) {
    const loadOpts = opts.maxPerFamily !== undefined ? { maxPerFamily: opts.maxPerFamily, seed: deriveSeed(opts.seed ?? 0, 'data', file) } : {};
    tables.push(await loadFlowTable(file, schema, loadOpts));
  }
  return { schema, table: mergeTables(tables) };
}
