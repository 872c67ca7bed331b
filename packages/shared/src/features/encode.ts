import { ErrorCode, FedmetaError } from '../errors.js';
import { featureDim, familyColumnOf, requiredColumns, type FeatureSchema } from './schema.js';

/** Why a row was skipped. Reports count rows by reason; no message ever carries a row's values. */
export const SKIP_REASONS = [
  'field-count', // the row has more or fewer fields than the header
  'malformed', // the CSV parser could not read the record (broken quoting)
  'empty-value', // a numeric feature field is empty
  'non-numeric', // text in a numeric column
  'nan', // a numeric field says NaN
  'infinite', // a numeric field is +-Infinity or overflows a double
  'out-of-range', // a value that survives no transform outside float32 range
  'empty-label', // the label field is empty
  'empty-family', // the family field is empty
  'unknown-label', // a label that is neither benign nor one of the schema's known labels
] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

const FLOAT32_MAX = 3.4028234663852886e38;
const NAN_TEXT = /^\s*[+-]?nan\s*$/i;
const INF_TEXT = /^\s*[+-]?inf(inity)?\s*$/i;

/**
 * One canonical spelling per category value: trimmed, and integral numbers without a fraction, so an export
 * that writes "6.0" where another writes "6" lands in the same slot.
 */
export function canonicalCategory(value: string): string {
  const v = value.trim();
  const m = /^([+-]?\d+)\.0*$/.exec(v);
  return m !== null ? m[1]! : v;
}

/** FNV-1a, 32 bits, over UTF-16 code units: stable on every platform, which hashed features rely on. */
export function hashCategory(value: string, buckets: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    h ^= value.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % buckets;
}

type CategoricalPlan =
  | { index: number; offset: number; kind: 'onehot'; slots: Map<string, number>; other: number }
  | { index: number; offset: number; kind: 'hash'; buckets: number };

/** Names of missing columns, shortened for a message if there are very many. */
function listColumns(cols: string[]): string {
  const shown = cols.slice(0, 20).map((c) => `"${c}"`);
  return cols.length > 20 ? `${shown.join(', ')} and ${cols.length - 20} more` : shown.join(', ');
}

/**
 * Turns CSV records (arrays of strings) into feature vectors for one schema and one header. Built once per
 * file: the header is checked here and every column is resolved to an index, so the per-row work is only
 * parsing numbers.
 */
export class RowEncoder {
  readonly dim: number;
  /** Header columns the schema neither uses nor drops: reported so that a user sees what was ignored. */
  readonly ignoredColumns: string[];
  readonly idColumns: string[];
  /** The encoded features of the last row that `encode` accepted. */
  readonly scratch: Float32Array;

  private readonly width: number;
  private readonly labelIdx: number;
  private readonly familyIdx: number;
  private readonly numericIdx: Int32Array;
  private readonly numericLog: Uint8Array;
  private readonly categorical: CategoricalPlan[];
  private readonly idIdx: number[];
  private readonly benign: Set<string>;
  private readonly known: Set<string> | null;

  /** Filled by `classify` for the row it accepted. */
  label: 0 | 1 = 0;
  family = '';

  constructor(schema: FeatureSchema, header: string[], opts: { keepIds: boolean; source: string }) {
    const names = header.map((h) => h.trim());
    const index = new Map<string, number>();
    const duplicated = new Set<string>();
    names.forEach((n, i) => {
      if (index.has(n)) duplicated.add(n);
      else index.set(n, i);
    });
    const required = requiredColumns(schema, opts.keepIds);
    const missing = required.filter((c) => !index.has(c));
    if (missing.length > 0) {
      throw new FedmetaError(
        ErrorCode.MISSING_COLUMNS,
        `${opts.source} lacks ${missing.length} column(s) that feature schema "${schema.name}" needs: ${listColumns(missing)}; ` +
          'export those columns or use a schema that matches the file',
      );
    }
    const ambiguous = required.filter((c) => duplicated.has(c));
    if (ambiguous.length > 0) {
      throw new FedmetaError(
        ErrorCode.DATA_FILE,
        `${opts.source} has a header that names ${listColumns(ambiguous)} more than once; rename the duplicates so each column is unambiguous`,
      );
    }
    const at = (c: string): number => index.get(c)!;
    this.width = names.length;
    this.dim = featureDim(schema);
    this.scratch = new Float32Array(this.dim);
    this.labelIdx = at(schema.labelColumn);
    this.familyIdx = at(familyColumnOf(schema));
    this.numericIdx = Int32Array.from(schema.numeric, (c) => at(c.column));
    this.numericLog = Uint8Array.from(schema.numeric, (c) => (c.transform === 'log1p-signed' ? 1 : 0));
    let offset = schema.numeric.length;
    this.categorical = schema.categorical.map((c) => {
      if (c.encoding === 'onehot') {
        const slots = new Map(c.vocabulary.map((v, k) => [canonicalCategory(v), offset + k] as const));
        const plan: CategoricalPlan = { index: at(c.column), offset, kind: 'onehot', slots, other: offset + c.vocabulary.length };
        offset += c.vocabulary.length + 1;
        return plan;
      }
      const plan: CategoricalPlan = { index: at(c.column), offset, kind: 'hash', buckets: c.buckets };
      offset += c.buckets;
      return plan;
    });
    this.idColumns = opts.keepIds ? [...schema.ids] : [];
    this.idIdx = this.idColumns.map(at);
    this.benign = new Set(schema.benignLabels);
    this.known = schema.knownLabels !== undefined ? new Set(schema.knownLabels) : null;
    const used = new Set([...required, ...schema.drop, ...schema.ids]);
    this.ignoredColumns = names.filter((n) => !used.has(n));
  }

  /** Checks the field count and the label; sets `label` and `family`. Cheap, so filters run before `encode`. */
  classify(record: string[]): SkipReason | null {
    if (record.length !== this.width) return 'field-count';
    const raw = record[this.labelIdx]!.trim();
    if (raw === '') return 'empty-label';
    if (this.benign.has(raw)) this.label = 0;
    else if (this.known !== null && !this.known.has(raw)) return 'unknown-label';
    else this.label = 1;
    const fam = this.familyIdx === this.labelIdx ? raw : record[this.familyIdx]!.trim();
    if (fam === '') return 'empty-family';
    this.family = fam;
    return null;
  }

  /** Encodes the features of a classified record into `scratch`; returns why not when a value is unusable. */
  encode(record: string[]): SkipReason | null {
    const out = this.scratch;
    const idx = this.numericIdx;
    for (let j = 0; j < idx.length; j++) {
      const s = record[idx[j]!]!;
      let v = +s;
      if (!Number.isFinite(v)) return numericFailure(s, v);
      if (v === 0 && s.trim() === '') return 'empty-value'; // +'' and +' ' are 0 in JavaScript
      if (this.numericLog[j] === 1) v = v >= 0 ? Math.log1p(v) : -Math.log1p(-v);
      else if (v > FLOAT32_MAX || v < -FLOAT32_MAX) return 'out-of-range';
      out[j] = v;
    }
    for (const c of this.categorical) {
      const value = canonicalCategory(record[c.index]!);
      if (c.kind === 'onehot') {
        out.fill(0, c.offset, c.other + 1);
        out[c.slots.get(value) ?? c.other] = 1;
      } else {
        out.fill(0, c.offset, c.offset + c.buckets);
        out[c.offset + hashCategory(value, c.buckets)] = 1;
      }
    }
    return null;
  }

  /** The identifier values of a record, in `idColumns` order (kept on site, for alerts only). */
  ids(record: string[]): string[] {
    return this.idIdx.map((i) => record[i]!);
  }
}

function numericFailure(s: string, v: number): SkipReason {
  if (v === Infinity || v === -Infinity || INF_TEXT.test(s)) return 'infinite';
  if (NAN_TEXT.test(s)) return 'nan';
  if (s.trim() === '') return 'empty-value';
  return 'non-numeric';
}
