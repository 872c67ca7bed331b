// Small crafted inputs shared by the feature and episode tests.
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { loadFlowTable, parseFeatureSchema, type FeatureSchemaFile, type FlowTable } from '../src/features/index.js';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const dataPath = (rel: string): string => fileURLToPath(new URL(`../../../data/${rel}`, import.meta.url));

/** A schema over a toy flow export: two numeric columns, a one-hot protocol, a hashed app id. */
export const toySchemaFile: FeatureSchemaFile = {
  name: 'toy',
  labelColumn: 'label',
  benignLabels: ['normal'],
  knownLabels: ['dos', 'scan'],
  numeric: ['bytes', { column: 'ratio', transform: 'none', standardize: false }],
  categorical: [
    { column: 'proto', encoding: 'onehot', vocabulary: ['tcp', 'udp'] },
    { column: 'app', encoding: 'hash', buckets: 4 },
  ],
  drop: ['src_ip', 'ts'],
  ids: ['src_ip', 'ts'],
};
export const toySchema = parseFeatureSchema(toySchemaFile);

export const TOY_HEADER = 'src_ip,ts,bytes,ratio,proto,app,label';

/** A Readable over text, optionally gzip-compressed, delivered in small chunks to exercise chunk boundaries. */
export function textStream(text: string, gzip = false): Readable {
  const bytes = gzip ? gzipSync(Buffer.from(text)) : Buffer.from(text);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 7) chunks.push(bytes.subarray(i, i + 7));
  return Readable.from(chunks);
}

/**
 * A table with `benign` benign rows and, per family, the given number of attack rows. Feature 0 ("bytes")
 * of row i is log1p(i), so tests can tell rows apart from their features.
 */
export async function toyTable(benign: number, attacks: Record<string, number>): Promise<FlowTable> {
  const lines = [TOY_HEADER];
  let i = 0;
  const add = (label: string): void => {
    lines.push(`10.0.0.${i % 250},t${i},${i},0.5,${i % 3 === 0 ? 'udp' : 'tcp'},app${i % 5},${label}`);
    i++;
  };
  for (let k = 0; k < benign; k++) add('normal');
  for (const [fam, count] of Object.entries(attacks)) for (let k = 0; k < count; k++) add(fam);
  return loadFlowTable(textStream(lines.join('\n') + '\n'), parseFeatureSchema({ ...toySchemaFile, knownLabels: undefined }), {
    keepIds: true,
  });
}
