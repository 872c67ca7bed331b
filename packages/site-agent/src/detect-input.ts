import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { parse } from 'csv-parse';
import { ErrorCode, FedmetaError, RowEncoder } from '@fedmeta/shared';
import type { FeatureSchema } from '@fedmeta/shared';

/**
 * Flows to score, read as a stream (a file, or stdin for `-`), plain CSV or gzip (recognised by its first
 * bytes), in batches. Traffic to score has no label, so the schema's label column is not required: a
 * constant placeholder column stands in for it, and a label column that is present is ignored. Identifier
 * columns the export lacks are left out of the alerts instead of refusing the file.
 */
export interface InputBatch {
  /** n rows of `dim` transformed (not yet standardised) features. */
  x: Float32Array;
  n: number;
  /** 1-based data-row numbers in the input. */
  rows: Int32Array;
  /** Identifier values per row, in `idColumns` order. */
  ids: string[][];
}

export interface InputReport {
  rowsRead: number;
  /** Rows that could not be scored (wrong field count, unreadable numbers, broken quoting). */
  rowsSkipped: number;
}

const PLACEHOLDER_LABEL = '\u0000fedmeta-unlabelled';
const PLACEHOLDER_VALUE = '-';

/** The schema as used on unlabelled traffic: same features, a placeholder label, only the id columns present. */
function scoringSchema(schema: FeatureSchema, header: readonly string[]): FeatureSchema {
  const present = new Set(header.map((h) => h.trim()));
  return {
    name: schema.name,
    labelColumn: PLACEHOLDER_LABEL,
    benignLabels: [PLACEHOLDER_VALUE],
    numeric: schema.numeric,
    categorical: schema.categorical,
    drop: schema.drop,
    ids: schema.ids.filter((c) => present.has(c)),
  };
}

/** Undoes gzip when the first bytes say so; works on files and pipes alike. */
async function decompressed(stream: Readable): Promise<Readable> {
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const first = await it.next();
  const head = first.done === true ? Buffer.alloc(0) : Buffer.from(first.value);
  async function* all(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    for (;;) {
      const r = await it.next();
      if (r.done === true) return;
      yield Buffer.from(r.value);
    }
  }
  const raw = Readable.from(all(), { objectMode: false });
  if (head[0] !== 0x1f || head[1] !== 0x8b) return raw;
  return pipeline(raw, createGunzip(), () => undefined);
}

/** Streams batches of at most `batchSize` rows. The returned report is complete once iteration ends. */
export function readInput(
  input: string | Readable,
  schema: FeatureSchema,
  batchSize: number,
): { batches: AsyncGenerator<InputBatch, void, undefined>; report: InputReport; idColumns: () => string[] } {
  const report: InputReport = { rowsRead: 0, rowsSkipped: 0 };
  let idColumns: string[] = [];
  const source = typeof input === 'string' ? basename(input) : 'the input stream';
  async function* batches(): AsyncGenerator<InputBatch, void, undefined> {
    let stream: Readable;
    try {
      stream = await decompressed(typeof input === 'string' ? createReadStream(input) : input);
    } catch (e) {
      throw new FedmetaError(ErrorCode.DATA_FILE, `cannot read ${source} (${(e as NodeJS.ErrnoException).code ?? 'error'}); check the --input path`);
    }
    const parser = parse({
      bom: true,
      relax_column_count: true,
      relax_quotes: true,
      skip_empty_lines: true,
      skip_records_with_error: true,
      max_record_size: 1 << 20,
    });
    parser.on('skip', () => {
      report.rowsRead++;
      report.rowsSkipped++;
    });
    const done = new Promise<unknown>((resolve) => pipeline(stream, parser, (e) => resolve(e ?? undefined)));
    let encoder: RowEncoder | null = null;
    let dim = 0;
    let batch: InputBatch | null = null;
    try {
      for await (const record of parser as AsyncIterable<string[]>) {
        if (encoder === null) {
          const s = scoringSchema(schema, record);
          encoder = new RowEncoder(s, [...record, PLACEHOLDER_LABEL], { keepIds: true, source });
          idColumns = encoder.idColumns;
          dim = encoder.dim;
          continue;
        }
        report.rowsRead++;
        record.push(PLACEHOLDER_VALUE);
        if (encoder.classify(record) !== null || encoder.encode(record) !== null) {
          report.rowsSkipped++;
          continue;
        }
        batch ??= { x: new Float32Array(batchSize * dim), n: 0, rows: new Int32Array(batchSize), ids: [] };
        batch.x.set(encoder.scratch, batch.n * dim);
        batch.rows[batch.n] = report.rowsRead;
        batch.ids.push(encoder.ids(record));
        batch.n++;
        if (batch.n === batchSize) {
          yield batch;
          batch = null;
        }
      }
    } finally {
      if (!parser.destroyed) parser.destroy();
    }
    if (batch !== null && batch.n > 0) yield { ...batch, x: batch.x.subarray(0, batch.n * dim), rows: batch.rows.subarray(0, batch.n) };
    const failure = await done;
    if (failure !== undefined && (failure as { code?: string }).code !== 'ERR_STREAM_PREMATURE_CLOSE') {
      throw new FedmetaError(ErrorCode.DATA_FILE, `cannot read flow data from ${source}; check that it is a CSV or .csv.gz flow export`);
    }
    if (encoder === null) throw new FedmetaError(ErrorCode.NO_ROWS, `${source} is empty: it has no header row`);
  }
  return { batches: batches(), report, idColumns: () => idColumns };
}
