import { ErrorCode, FedmetaError } from '../errors.js';
import type { FlowTable } from '../features/table.js';
import type { Batch, Episode } from '../meta/types.js';
import type { Rng } from './rng.js';
import { familyIndex, indexTable } from './split.js';

/** An episode plus the table rows it was drawn from, so a harness can prove what was (not) used. */
export interface EpisodeWithRows extends Episode {
  rows: { support: Int32Array; query: Int32Array };
  /** True when a class had too few rows and was drawn with replacement (see `drawDisjoint`). */
  withReplacement: boolean;
}

export interface EpisodeOptions {
  /** The attack family of the episode, by name or index into `table.families`. */
  family: string | number;
  /** Support examples per class (benign and attack). */
  shots: number;
  /** Query examples per class; 0 gives an empty query batch. */
  queryShots: number;
  rng: Rng;
  /** The benign rows to draw from (the site's own slice); default every benign row of the table. */
  benignRows?: ArrayLike<number>;
  /** The attack rows to draw from; default every attack row of `family`. Must belong to that family. */
  attackRows?: ArrayLike<number>;
}

function checkCounts(shots: number, queryShots: number): void {
  if (!Number.isInteger(shots) || shots < 1) throw new FedmetaError(ErrorCode.CONFIG, `shots must be a positive integer, got ${shots}`);
  if (!Number.isInteger(queryShots) || queryShots < 0) {
    throw new FedmetaError(ErrorCode.CONFIG, `queryShots must be a non-negative integer, got ${queryShots}`);
  }
}

/**
 * k distinct entries of pool, in random order. A few from a large pool by rejection (no copy of a pool of a
 * million benign rows per episode); otherwise a partial Fisher-Yates on a copy.
 */
function pickDistinct(pool: ArrayLike<number>, k: number, rng: Rng): number[] {
  if (k * 4 <= pool.length) {
    const chosen = new Set<number>();
    const out: number[] = [];
    while (out.length < k) {
      const j = rng.int(pool.length);
      if (!chosen.has(j)) {
        chosen.add(j);
        out.push(pool[j]!);
      }
    }
    return out;
  }
  const copy = Array.from(pool);
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(copy.length - i);
    const t = copy[i]!;
    copy[i] = copy[j]!;
    copy[j] = t;
  }
  return copy.slice(0, k);
}

/** k entries of a pool smaller than k: every entry once, then random repeats. */
function pickCovering(pool: number[], k: number, rng: Rng): number[] {
  const out = [...pool];
  while (out.length < k) out.push(pool[rng.int(pool.length)]!);
  return out;
}

/**
 * Support and query rows of one class, never sharing a row. With enough rows (at least support + query)
 * they are drawn without replacement. With too few, the rows are split between support and query in
 * proportion to the requested counts (at least one row each), and each side is filled by drawing with
 * replacement within its own share: rows repeat, but no row is in both support and query.
 */
export function drawDisjoint(pool: ArrayLike<number>, nSupport: number, nQuery: number, rng: Rng, what: string): { support: number[]; query: number[]; replaced: boolean } {
  const need = nSupport + nQuery;
  if (pool.length >= need) {
    const picked = pickDistinct(pool, need, rng);
    return { support: picked.slice(0, nSupport), query: picked.slice(nSupport), replaced: false };
  }
  const minRows = nQuery > 0 ? 2 : 1;
  if (pool.length < minRows) {
    throw new FedmetaError(
      ErrorCode.PRECONDITION,
      `an episode needs at least ${minRows} ${what} row(s) to keep support and query apart, and only ${pool.length} exist; give the site more ${what} flows`,
    );
  }
  const shuffled = pickDistinct(pool, pool.length, rng);
  const supShare = nQuery === 0 ? shuffled.length : Math.min(shuffled.length - 1, Math.max(1, Math.round((shuffled.length * nSupport) / need)));
  return {
    support: pickCovering(shuffled.slice(0, supShare), nSupport, rng),
    query: nQuery === 0 ? [] : pickCovering(shuffled.slice(supShare), nQuery, rng),
    replaced: true,
  };
}

/** Copies the rows' features into a batch with the given labels, in a shuffled order. */
function gather(table: FlowTable, rows: number[], y: number[], rng: Rng): { batch: Batch; rows: Int32Array } {
  const order = rng.shuffle(Array.from(rows.keys()));
  const { dim } = table;
  const x = new Float32Array(rows.length * dim);
  const labels = new Int32Array(rows.length);
  const used = new Int32Array(rows.length);
  order.forEach((k, i) => {
    const r = rows[k]!;
    x.set(table.x.subarray(r * dim, (r + 1) * dim), i * dim);
    labels[i] = y[k]!;
    used[i] = r;
  });
  return { batch: { x, y: labels, n: rows.length, dim }, rows: used };
}

/**
 * One few-shot detection episode: `shots` benign and `shots` attack flows of one family in the support set,
 * `queryShots` of each in the query set; labels 0 benign, 1 attack; support and query disjoint; each set
 * shuffled. This mirrors the deployment task: a family new to the site, against the site's own benign traffic.
 */
export function buildEpisode(table: FlowTable, opts: EpisodeOptions): EpisodeWithRows {
  checkCounts(opts.shots, opts.queryShots);
  const f = familyIndex(table, opts.family);
  const index = indexTable(table);
  const attackPool = opts.attackRows ?? index.attack[f]!;
  if (opts.attackRows === undefined && attackPool.length === 0) {
    const choices = table.families.filter((_, k) => index.attack[k]!.length > 0).map((n) => JSON.stringify(n));
    throw new FedmetaError(
      ErrorCode.CONFIG,
      `family ${JSON.stringify(table.families[f])} has no attack rows in this table (a benign family?); choose one of ${choices.join(', ')}`,
    );
  }
  const benignPool = opts.benignRows ?? index.benign;
  for (let i = 0; i < benignPool.length; i++) {
    if (table.labels[benignPool[i]!] !== 0) {
      throw new FedmetaError(ErrorCode.PRECONDITION, 'benignRows contains an attack row; pass only benign rows of the site');
    }
  }
  for (let i = 0; i < attackPool.length; i++) {
    const r = attackPool[i]!;
    if (table.labels[r] !== 1 || table.family[r] !== f) {
      throw new FedmetaError(ErrorCode.PRECONDITION, `attackRows contains a row that is not an attack of family "${table.families[f]}"`);
    }
  }
  const name = table.families[f]!;
  const b = drawDisjoint(benignPool, opts.shots, opts.queryShots, opts.rng, 'benign');
  const a = drawDisjoint(attackPool, opts.shots, opts.queryShots, opts.rng, `"${name}" attack`);
  const sup = gather(table, [...b.support, ...a.support], [...b.support.map(() => 0), ...a.support.map(() => 1)], opts.rng);
  const qry = gather(table, [...b.query, ...a.query], [...b.query.map(() => 0), ...a.query.map(() => 1)], opts.rng);
  return { support: sup.batch, query: qry.batch, rows: { support: sup.rows, query: qry.rows }, withReplacement: a.replaced || b.replaced };
}

export interface TriageEpisodeOptions {
  /** The attack families to tell apart; label k is families[k]. */
  families: readonly (string | number)[];
  shots: number;
  queryShots: number;
  rng: Rng;
}

/**
 * One N-way triage episode over attack rows only: `shots` support and `queryShots` query rows per family,
 * labels 0..N-1 in the order of `families`, support and query disjoint, same replacement rule as above.
 */
export function buildTriageEpisode(table: FlowTable, opts: TriageEpisodeOptions): EpisodeWithRows {
  checkCounts(opts.shots, opts.queryShots);
  if (opts.families.length < 2) throw new FedmetaError(ErrorCode.CONFIG, 'a triage episode needs at least two attack families');
  const index = indexTable(table);
  const ids = opts.families.map((fam) => familyIndex(table, fam));
  if (new Set(ids).size !== ids.length) throw new FedmetaError(ErrorCode.CONFIG, 'a triage episode lists a family twice');
  const supRows: number[] = [];
  const supY: number[] = [];
  const qryRows: number[] = [];
  const qryY: number[] = [];
  let replaced = false;
  ids.forEach((f, k) => {
    const d = drawDisjoint(index.attack[f]!, opts.shots, opts.queryShots, opts.rng, `"${table.families[f]}" attack`);
    replaced ||= d.replaced;
    for (const r of d.support) {
      supRows.push(r);
      supY.push(k);
    }
    for (const r of d.query) {
      qryRows.push(r);
      qryY.push(k);
    }
  });
  const sup = gather(table, supRows, supY, opts.rng);
  const qry = gather(table, qryRows, qryY, opts.rng);
  return { support: sup.batch, query: qry.batch, rows: { support: sup.rows, query: qry.rows }, withReplacement: replaced };
}
