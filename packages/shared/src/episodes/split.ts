import { ErrorCode, FedmetaError } from '../errors.js';
import type { FlowTable } from '../features/table.js';
import type { Rng } from './rng.js';

/** Row indices of a table grouped once: benign rows, and attack rows per family. */
export interface TableIndex {
  benign: Int32Array;
  /** attack[f] = rows of family f whose label is attack. */
  attack: Int32Array[];
}

const indexCache = new WeakMap<FlowTable, TableIndex>();

/**
 * Groups a table's rows by class and family; cached per table object (labels and families of a table never
 * change; standardising only rewrites `x`).
 */
export function indexTable(table: FlowTable): TableIndex {
  const cached = indexCache.get(table);
  if (cached !== undefined) return cached;
  const benign: number[] = [];
  const attack: number[][] = table.families.map(() => []);
  for (let i = 0; i < table.n; i++) {
    if (table.labels[i] === 0) benign.push(i);
    else attack[table.family[i]!]!.push(i);
  }
  const index: TableIndex = { benign: Int32Array.from(benign), attack: attack.map((a) => Int32Array.from(a)) };
  indexCache.set(table, index);
  return index;
}

/** Resolves a family given by name or index; refuses one the table does not have. */
export function familyIndex(table: FlowTable, family: string | number): number {
  const f = typeof family === 'number' ? family : table.families.indexOf(family);
  if (!Number.isInteger(f) || f < 0 || f >= table.families.length) {
    throw new FedmetaError(
      ErrorCode.CONFIG,
      `attack family ${JSON.stringify(family)} is not in this table; its families are ${table.families.map((n) => JSON.stringify(n)).join(', ')}`,
    );
  }
  return f;
}

/** Families that have at least `minRows` attack rows, by name. */
export function attackFamilies(table: FlowTable, minRows = 1): string[] {
  const { attack } = indexTable(table);
  return table.families.filter((_, f) => attack[f]!.length >= minRows);
}

/** All benign rows, in table order. */
export function benignRowsOf(table: FlowTable): Int32Array {
  return indexTable(table).benign;
}

/**
 * Rows whose family is one of `names`, in table order. By default only attack rows (label 1), which is what
 * "the rows of a family" means for a site's threats; pass `{ label: 'any' }` to include benign rows that
 * carry the family name (e.g. "BENIGN"). Unknown names are refused, so a typo in a config cannot silently
 * give a site no attacks.
 */
export function rowsOfFamilies(table: FlowTable, names: readonly string[], opts: { label?: 0 | 1 | 'any' } = {}): Int32Array {
  const want = new Uint8Array(table.families.length);
  for (const name of names) want[familyIndex(table, name)] = 1;
  const label = opts.label ?? 1;
  const rows: number[] = [];
  for (let i = 0; i < table.n; i++) {
    if (want[table.family[i]!] === 1 && (label === 'any' || table.labels[i] === label)) rows.push(i);
  }
  return Int32Array.from(rows);
}

/**
 * Shuffles `rows` and cuts them into disjoint parts: `parts` equal parts, or parts proportional to the given
 * weights (largest remainder, so sizes add up to exactly rows.length). Every row lands in exactly one part.
 */
export function splitRows(rows: ArrayLike<number>, parts: number | readonly number[], rng: Rng): Int32Array[] {
  const weights = typeof parts === 'number' ? Array.from({ length: parts }, () => 1) : [...parts];
  if (weights.length < 1 || !weights.every((w) => Number.isFinite(w) && w >= 0) || weights.every((w) => w === 0)) {
    throw new FedmetaError(ErrorCode.CONFIG, 'a split needs at least one part and non-negative weights that are not all zero');
  }
  if (typeof parts === 'number' && !Number.isInteger(parts)) {
    throw new FedmetaError(ErrorCode.CONFIG, `the number of parts must be an integer, got ${parts}`);
  }
  const shuffled = rng.shuffle(Int32Array.from(rows));
  const total = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (w / total) * shuffled.length);
  const sizes = exact.map(Math.floor);
  let left = shuffled.length - sizes.reduce((a, b) => a + b, 0);
  const byRemainder = exact.map((e, i) => [e - Math.floor(e), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of byRemainder) {
    if (left === 0) break;
    sizes[i]!++;
    left--;
  }
  const out: Int32Array[] = [];
  let at = 0;
  for (const size of sizes) {
    out.push(shuffled.slice(at, at + size));
    at += size;
  }
  return out;
}

/**
 * Disjoint benign slices: each site gets its own benign traffic, and the held-out office's benign rows are
 * never seen in meta-training. `within` restricts the split to a subset of rows (its attack rows are ignored).
 */
export function splitBenign(table: FlowTable, parts: number | readonly number[], rng: Rng, within?: ArrayLike<number>): Int32Array[] {
  const benign = within === undefined ? benignRowsOf(table) : Int32Array.from(within).filter((r) => table.labels[r] === 0);
  return splitRows(benign, parts, rng);
}
