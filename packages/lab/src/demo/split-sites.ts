import { createReadStream } from 'node:fs';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { gzipSync, createGunzip } from 'node:zlib';
import { basename, join } from 'node:path';
import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { FeatureSchema, FlowTable } from '@fedmeta/shared';
import type { Office, OfficeRole } from '../eval/splits.js';

/** What one office's data file holds, in counts. */
export interface OfficeFile {
  name: string;
  role: OfficeRole;
  file: string;
  benign: number;
  /** Attack rows per family. */
  attacks: Record<string, number>;
}

/**
 * The fields of one CSV line. Only used to find the label of a line; the line itself is copied unchanged, so
 * an office's file holds its rows exactly as the shipped sample does.
 */
export function csvFields(line: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) return null; // a quote left open: the record goes on past this line
        v += line.slice(i, q);
        if (line[q + 1] === '"') {
          v += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      out.push(v);
      if (i === line.length) return out;
      if (line[i] !== ',') return null;
      i++;
    } else {
      const c = line.indexOf(',', i);
      if (c < 0) {
        out.push(line.slice(i));
        return out;
      }
      out.push(line.slice(i, c));
      i = c + 1;
    }
  }
}

async function isGzip(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const { bytesRead, buffer } = await fh.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

async function* lines(source: string): AsyncGenerator<string> {
  const gzip = await isGzip(source);
  const raw = createReadStream(source);
  const rl = createInterface({ input: gzip ? raw.pipe(createGunzip()) : raw, crlfDelay: Infinity });
  try {
    for await (const line of rl) if (line.length > 0) yield line;
  } finally {
    rl.close();
    raw.destroy();
  }
}

function countBy(values: Iterable<string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

/**
 * Writes each office's local data, the file its agent reads: the source lines of the rows the harness's split
 * gave that office, copied unchanged (identifier columns included: they stay on site, and the schema drops them
 * before anything reaches a model). `table` must be the source read whole with `schema`, so that its row i is
 * data line i; that is checked line by line against the labels before anything is written.
 */
export async function writeOfficeFiles(source: string, table: FlowTable, schema: FeatureSchema, offices: readonly Office[], outDir: string): Promise<OfficeFile[]> {
  let header: string | null = null;
  let labelAt = -1;
  const all: string[] = [];
  const labelOf: string[] = [];
  const benign = new Set(schema.benignLabels);
  try {
    for await (const line of lines(source)) {
      const fields = csvFields(line);
      if (header === null) {
        header = line;
        labelAt = fields?.indexOf(schema.labelColumn) ?? -1;
        if (labelAt < 0) throw new FedmetaError(ErrorCode.MISSING_COLUMNS, `${basename(source)} has no ${schema.labelColumn} column; restore the shipped sample`);
        continue;
      }
      const label = fields?.[labelAt]?.trim();
      const r = all.length;
      const expected = r < table.n ? (table.labels[r] === 0 ? null : table.families[table.family[r]!]) : undefined;
      if (label === undefined || expected === undefined || (expected === null ? !benign.has(label) : label !== expected)) {
        throw new FedmetaError(
          ErrorCode.DATA_FILE,
          `data row ${r + 1} of ${basename(source)} does not match the flow table read from it (the table holds ${table.n} rows); the demo needs a sample without bad rows: restore the shipped file`,
        );
      }
      all.push(line);
      labelOf.push(label);
    }
  } catch (e) {
    if (e instanceof FedmetaError) throw e;
    throw new FedmetaError(ErrorCode.DATA_FILE, `cannot read ${basename(source)} (${(e as NodeJS.ErrnoException).code ?? 'read error'}); check that the shipped sample is there`);
  }
  if (header === null || all.length !== table.n) {
    throw new FedmetaError(ErrorCode.DATA_FILE, `${basename(source)} holds ${all.length} data rows but its flow table ${table.n}; restore the shipped sample`);
  }
  const out: OfficeFile[] = [];
  for (const o of offices) {
    const rows = Array.from(o.rows).sort((a, b) => a - b);
    const dir = join(outDir, o.name);
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'flows.csv.gz');
    const text = `${header}\n${rows.map((r) => all[r]!).join('\n')}\n`;
    await writeFile(file, gzipSync(Buffer.from(text, 'utf8'), { level: 6 }));
    const attackRows = rows.filter((r) => table.labels[r] === 1);
    out.push({ name: o.name, role: o.role, file, benign: rows.length - attackRows.length, attacks: countBy(attackRows.map((r) => labelOf[r]!)) });
  }
  return out;
}
