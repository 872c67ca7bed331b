// A released model and labelled shots for the alert tests: a small detector over the CIC-IDS2017 sample.
import { StatsAccumulator, builtinSchema, initParams, loadFlowTable, schemaFingerprint } from '@fedmeta/shared';
import type { ModelSpec } from '@fedmeta/shared';
import { MODEL_FILE_FORMAT, type ModelFile } from '../src/model-file.js';
import { csv, rowsOf, writeText } from './fixtures.js';

export const schema = builtinSchema('cicflowmeter');
export const spec: ModelSpec = { inputDim: 85, hidden: [32], activation: 'relu', task: { kind: 'binary' } };
/** Adaptation that separates DoS Hulk from benign flows on these shots. */
export const ADAPT = { steps: 30, lr: 0.1 };

export async function detectModel(dir: string, version = 6): Promise<ModelFile> {
  const site = await loadFlowTable(writeText(dir, 'site.csv', csv([...rowsOf('BENIGN', 60, 80), ...rowsOf('DoS Hulk', 20, 80)])), schema);
  const p = initParams(spec, 21);
  return {
    format: MODEL_FILE_FORMAT,
    formatVersion: 1,
    version,
    spec,
    manifest: p.manifest,
    params: p.values,
    schemaFingerprint: schemaFingerprint(schema),
    stats: StatsAccumulator.forSchema(schema).addTable(site).finalize(),
    createdAt: new Date().toISOString(),
  };
}

export function shotsFile(dir: string): string {
  return writeText(dir, 'shots.csv', csv([...rowsOf('BENIGN', 10), ...rowsOf('DoS Hulk', 10)]));
}
