import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ErrorCode, FedmetaError, RowEncoder } from '@fedmeta/shared';
import type { FeatureSchema } from '@fedmeta/shared';
import { csvRecords } from './follow/csv-records.js';

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

/**
 * The schema as used on unlabelled traffic: same features, a placeholder label, only the id columns present.
 * `extra` columns (an alert's context, such as the protocol) are kept beside the ids when the input has them.
 */
function scoringSchema(schema: FeatureSchema, header: readonly string[], extra: readonly string[] = []): FeatureSchema {
  const present = new Set(header.map((h) => h.trim()));
  return {
    name: schema.name,
    labelColumn: PLACEHOLDER_LABEL,
    benignLabels: [PLACEHOLDER_VALUE],
    numeric: schema.numeric,
    categorical: schema.categorical,
    drop: schema.drop,
    ids: [...schema.ids, ...extra.filter((c) => !schema.ids.includes(c))].filter((c) => present.has(c)),
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

export interface ReadInputOptions {
  /**
   * For a live stream (a followed file, stdin): hand over the rows read so far once no row has come for this
   * long, instead of waiting for a full batch, so that a slow trickle of flows is still scored promptly.
   */
  idleFlushMs?: number;
  /** Columns to keep with the ids when present (see scoringSchema). */
  extraIds?: readonly string[];
}

/** Streams batches of at most `batchSize` rows. The returned report is complete once iteration ends. */
export function readInput(
  input: string | Readable,
  schema: FeatureSchema,
  batchSize: number,
  opts: ReadInputOptions = {},
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
    // A fast reader (follow/csv-records.ts): csv-parse read about 5,000 flow rows a second, a fifth of what the
    // encoder and the detector take. It hands each record over as soon as its line ends (live input).
    const parsed = csvRecords(stream, {
      maxRecordBytes: 1 << 20,
      onSkip: () => {
        report.rowsRead++;
        report.rowsSkipped++;
      },
    });
    let encoder: RowEncoder | null = null;
    let dim = 0;
    let batch: InputBatch | null = null;
    const records = parsed[Symbol.asyncIterator]();
    let next: Promise<IteratorResult<string[]>> | null = null;
    const unreadable = (e: unknown): never => {
      throw new FedmetaError(ErrorCode.DATA_FILE, `cannot read flow data from ${source} (${(e as NodeJS.ErrnoException).code ?? 'error'}); check that it is a CSV or .csv.gz flow export`);
    };
    try {
      for (;;) {
        next ??= records.next();
        const r = await (batch !== null && opts.idleFlushMs !== undefined ? idleOr(next, opts.idleFlushMs) : next).catch(unreadable);
        if (r === IDLE) {
          const b = batch as InputBatch;
          yield { ...b, x: b.x.subarray(0, b.n * dim), rows: b.rows.subarray(0, b.n) };
          batch = null;
          continue;
        }
        next = null;
        if (r.done === true) break;
        const record = r.value;
        if (encoder === null) {
          const s = scoringSchema(schema, record, opts.extraIds);
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
      // Ends a read still pending (the consumer stopped early); the reader then finishes on its own.
      if (!stream.destroyed) stream.destroy();
    }
    if (batch !== null && batch.n > 0) yield { ...batch, x: batch.x.subarray(0, batch.n * dim), rows: batch.rows.subarray(0, batch.n) };
    if (encoder === null) throw new FedmetaError(ErrorCode.NO_ROWS, `${source} is empty: it has no header row`);
  }
  return { batches: batches(), report, idColumns: () => idColumns };
}

const IDLE = Symbol('idle');

/** The next record, or IDLE when none came within `ms` (the pending read stays pending for the next call). */
async function idleOr<T>(next: Promise<T>, ms: number): Promise<T | typeof IDLE> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([next, new Promise<typeof IDLE>((r) => (timer = setTimeout(() => r(IDLE), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
