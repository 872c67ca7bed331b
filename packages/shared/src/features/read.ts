import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { parse, type Options as CsvOptions } from 'csv-parse';
import { ErrorCode, FedmetaError, isFedmetaError } from '../errors.js';
import { createRng, type Rng } from '../episodes/rng.js';
import { RowEncoder, SKIP_REASONS, type SkipReason } from './encode.js';
import type { FeatureSchema } from './schema.js';

/** What a read did, in counts only: safe to log and to show an operator. */
export interface ReadReport {
  /** Data rows the file held up to where reading stopped (header excluded). */
  rowsRead: number;
  rowsKept: number;
  /** Rows left out on purpose, by `filter` or sampling; not errors. */
  rowsFiltered: number;
  /** Bad rows skipped, by reason; every reason is present, zero when none. */
  skipped: Record<SkipReason, number>;
  /** 1-based data-row number of the first row skipped for each reason, to find it in the file. */
  firstSkippedRow: Partial<Record<SkipReason, number>>;
  /** Kept rows per family (benign families included). */
  byFamily: Record<string, number>;
  /** Header columns that the schema neither uses nor drops. */
  ignoredColumns: string[];
  /** True when `maxRows` stopped the read before the end of the file. */
  truncated: boolean;
}

export interface ReadProgress {
  rowsRead: number;
  rowsKept: number;
  rowsSkipped: number;
}

/** What the row filter sees: the row's label and family, never its values. */
export interface RowInfo {
  label: 0 | 1;
  family: string;
  /** 1-based data-row number. */
  row: number;
}

export interface ReadOptions {
  /** Stop after this many data rows (good or bad) have been read. */
  maxRows?: number;
  /** Called every `progressEvery` rows and once at the end. */
  onProgress?: (p: ReadProgress) => void;
  progressEvery?: number;
  /** Keep the schema's identifier columns per row (on site only, for alerts). */
  keepIds?: boolean;
  /** Keep only rows for which this returns true; it runs before the features are parsed. */
  filter?: (row: RowInfo) => boolean;
  /** Keep each row with this probability (seeded by `seed`). */
  sampleRate?: number;
  seed?: number;
  /** For a Readable input: whether its bytes are gzip. A path is recognised by its first bytes. */
  gzip?: boolean;
  /** Name used in messages for a Readable input. */
  sourceName?: string;
}

/** One accepted row, as `readFlows` yields it. */
export interface FlowRow {
  /** Transformed features (signed log etc.), not standardised. */
  x: Float32Array;
  label: 0 | 1;
  family: string;
  /** Identifier values in the schema's `ids` order, when `keepIds` is set. */
  ids?: string[];
  /** 1-based data-row number in the file. */
  row: number;
}

export function emptyReport(): ReadReport {
  const skipped = Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>;
  return { rowsRead: 0, rowsKept: 0, rowsFiltered: 0, skipped, firstSkippedRow: {}, byFamily: {}, ignoredColumns: [], truncated: false };
}

export function totalSkipped(report: ReadReport): number {
  return SKIP_REASONS.reduce((a, r) => a + report.skipped[r], 0);
}

/** One line for a log: counts and reasons only. */
export function formatReadReport(report: ReadReport): string {
  const reasons = SKIP_REASONS.filter((r) => report.skipped[r] > 0).map((r) => `${r} ${report.skipped[r]}`);
  const skipped = totalSkipped(report);
  return (
    `read ${report.rowsRead} rows${report.truncated ? ' (stopped at maxRows)' : ''}, kept ${report.rowsKept}` +
    (report.rowsFiltered > 0 ? `, filtered out ${report.rowsFiltered}` : '') +
    (skipped > 0 ? `, skipped ${skipped} bad (${reasons.join(', ')})` : '')
  );
}

export type FlowSource = string | Readable;

/** No flow record comes near this size; a larger one is a quote left open that would swallow the file. */
const MAX_RECORD_BYTES = 1 << 20;

async function isGzipFile(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const { bytesRead, buffer } = await fh.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

function fileError(source: string, what: string, e: unknown): FedmetaError {
  const code = (e as { code?: unknown } | null)?.code;
  const detail = typeof code === 'string' ? ` (${code})` : '';
  // No `cause`: a parser's own message may quote the bytes it choked on, and a logger would print it.
  return new FedmetaError(ErrorCode.DATA_FILE, `${what} ${source}${detail}; check that it is a CSV or .csv.gz flow export`);
}

/**
 * The accepted rows of a flow file, one at a time. The yielded object and its `x` are reused for the next
 * row: copy what must be kept. This is the single reading loop behind `readFlows` and `loadFlowTable`.
 */
export async function* scanFlows(
  input: FlowSource,
  schema: FeatureSchema,
  opts: ReadOptions,
  report: ReadReport,
): AsyncGenerator<FlowRow, void, undefined> {
  const source = typeof input === 'string' ? basename(input) : (opts.sourceName ?? 'the flow stream');
  checkReadOptions(opts);
  let stream: Readable;
  let gzip: boolean;
  if (typeof input === 'string') {
    try {
      gzip = await isGzipFile(input);
    } catch (e) {
      throw fileError(source, 'cannot open flow file', e);
    }
    stream = createReadStream(input);
  } else {
    stream = input;
    gzip = opts.gzip ?? false;
  }
  let row = 0;
  const skip = (reason: SkipReason): void => {
    report.skipped[reason]++;
    if (report.firstSkippedRow[reason] === undefined) report.firstSkippedRow[reason] = row;
  };
  const halt: { error: FedmetaError | null } = { error: null };
  // A stray quote inside a field is kept as text (relax_quotes) instead of turning the rest of the file
  // into one field. A quote left open to the end of the file costs that last record, counted as malformed;
  // one that swallows more than MAX_RECORD_BYTES is fatal, since everything after it would be lost.
  // on_skip is honoured by csv-parse 5 but missing from its type declarations.
  const csvOptions: CsvOptions & { on_skip: (err: unknown) => void } = {
    bom: true,
    relax_column_count: true,
    relax_quotes: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    max_record_size: MAX_RECORD_BYTES,
    on_skip: (err: unknown) => {
      row++;
      report.rowsRead++;
      if ((err as { code?: string } | undefined)?.code === 'CSV_MAX_RECORD_SIZE') {
        halt.error = new FedmetaError(
          ErrorCode.DATA_FILE,
          `${source} has a record over ${MAX_RECORD_BYTES} bytes at data row ${row}, most likely an unclosed quote; fix the quoting of that row`,
        );
      } else skip('malformed');
    },
  };
  const parser = parse(csvOptions);
  const done = (gzip ? pipeline(stream, createGunzip(), parser) : pipeline(stream, parser)).catch((e: unknown) => e);

  const sampleRate = opts.sampleRate ?? 1;
  const rng: Rng | null = sampleRate < 1 ? createRng(opts.seed ?? 0) : null;
  const every = opts.progressEvery ?? 100_000;
  const maxRows = opts.maxRows ?? Infinity;
  let encoder: RowEncoder | null = null;
  const progress = (): void =>
    opts.onProgress?.({ rowsRead: report.rowsRead, rowsKept: report.rowsKept, rowsSkipped: totalSkipped(report) });
  const out: FlowRow = { x: new Float32Array(0), label: 0, family: '', row: 0 };

  try {
    for await (const record of parser as AsyncIterable<string[]>) {
      if (halt.error !== null) throw halt.error;
      if (encoder === null) {
        encoder = new RowEncoder(schema, record, { keepIds: opts.keepIds ?? false, source });
        report.ignoredColumns = encoder.ignoredColumns;
        out.x = encoder.scratch;
        continue;
      }
      if (report.rowsRead >= maxRows) {
        report.truncated = true;
        break;
      }
      row++;
      report.rowsRead++;
      if (report.rowsRead % every === 0) progress();
      const bad = encoder.classify(record);
      if (bad !== null) {
        skip(bad);
        continue;
      }
      const info: RowInfo = { label: encoder.label, family: encoder.family, row };
      if ((opts.filter !== undefined && !opts.filter(info)) || (rng !== null && rng.next() >= sampleRate)) {
        report.rowsFiltered++;
        continue;
      }
      const badValue = encoder.encode(record);
      if (badValue !== null) {
        skip(badValue);
        continue;
      }
      out.label = info.label;
      out.family = info.family;
      out.row = row;
      if (encoder.idColumns.length > 0) out.ids = encoder.ids(record);
      yield out;
    }
  } catch (e) {
    if (isFedmetaError(e)) throw e;
    throw fileError(source, 'cannot read flow data from', e);
  } finally {
    if (!parser.destroyed) parser.destroy();
    if (!stream.destroyed) stream.destroy();
  }
  if (halt.error !== null) throw halt.error;
  const failure = await done;
  if (failure !== undefined && !report.truncated && !isPrematureClose(failure)) {
    throw fileError(source, 'cannot read flow data from', failure);
  }
  if (encoder === null) {
    throw new FedmetaError(ErrorCode.NO_ROWS, `${source} is empty: it has no header row; check the export`);
  }
  progress();
}

function checkReadOptions(opts: ReadOptions): void {
  const rate = opts.sampleRate;
  if (rate !== undefined && !(rate > 0 && rate <= 1)) throw new FedmetaError(ErrorCode.CONFIG, `sampleRate must be in (0, 1], got ${rate}`);
  const max = opts.maxRows;
  if (max !== undefined && !(Number.isInteger(max) && max >= 0)) throw new FedmetaError(ErrorCode.CONFIG, `maxRows must be a non-negative integer, got ${max}`);
  const every = opts.progressEvery;
  if (every !== undefined && !(Number.isInteger(every) && every >= 1)) {
    throw new FedmetaError(ErrorCode.CONFIG, `progressEvery must be a positive integer, got ${every}`);
  }
}

function isPrematureClose(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === 'ERR_STREAM_PREMATURE_CLOSE';
}

/**
 * Streams the accepted rows of a CSV or .csv.gz flow file (a path or a Readable). Memory stays flat however
 * large the file is. Bad rows are counted in `reader.report`, which is complete once iteration ends.
 * Each yielded row is a fresh object the caller may keep.
 */
export function readFlows(input: FlowSource, schema: FeatureSchema, opts: ReadOptions = {}): FlowReader {
  return new FlowReader(input, schema, opts);
}

export class FlowReader implements AsyncIterable<FlowRow> {
  readonly report: ReadReport = emptyReport();
  private started = false;

  constructor(
    private readonly input: FlowSource,
    private readonly schema: FeatureSchema,
    private readonly opts: ReadOptions,
  ) {}

  async *[Symbol.asyncIterator](): AsyncGenerator<FlowRow, void, undefined> {
    if (this.started) {
      throw new FedmetaError(ErrorCode.PRECONDITION, 'a flow reader can be iterated once; call readFlows again to read the file again');
    }
    this.started = true;
    for await (const r of scanFlows(this.input, this.schema, this.opts, this.report)) {
      const row: FlowRow = { x: r.x.slice(), label: r.label, family: r.family, row: r.row };
      if (r.ids !== undefined) row.ids = r.ids;
      this.report.rowsKept++;
      this.report.byFamily[r.family] = (this.report.byFamily[r.family] ?? 0) + 1;
      yield row;
    }
  }
}
