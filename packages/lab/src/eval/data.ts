import { deriveSeed, loadFlowTable, mergeTables, resolveSchema } from '@fedmeta/shared';
import type { FeatureSchema, FlowTable } from '@fedmeta/shared';

/** The dataset an evaluation runs on: every configured file in one table (transformed, not standardised). */
export interface Dataset {
  schema: FeatureSchema;
  table: FlowTable;
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
