import { ErrorCode, FedmetaError, createRng, deriveSeed } from '@fedmeta/shared';
import type { Batch, FlowTable, Rng } from '@fedmeta/shared';
import type { Office } from './splits.js';

/**
 * The held-out office's few-shot task: the support is K benign flows of the office and K flows of the new
 * family; the query is everything else the office holds (its remaining benign traffic and the family's
 * remaining flows). Rows are indices into the office's table.
 */
export interface FewShotTask {
  K: number;
  support: Batch;
  query: Batch;
  supportRows: Int32Array;
  queryRows: Int32Array;
}

function pick(pool: Int32Array, k: number, rng: Rng): Int32Array {
  const copy = Int32Array.from(pool);
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(copy.length - i);
    const t = copy[i]!;
    copy[i] = copy[j]!;
    copy[j] = t;
  }
  return copy.slice(0, k);
}

export function gatherRows(table: FlowTable, rows: ArrayLike<number>): Batch {
  const { dim } = table;
  const n = rows.length;
  const x = new Float32Array(n * dim);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    x.set(table.x.subarray(r * dim, (r + 1) * dim), i * dim);
    y[i] = table.labels[r]!;
  }
  return { x, y, n, dim };
}

/** Benign rows and attack rows of `family` in an office's table. */
export function officePools(office: Office, family: string): { benign: Int32Array; attack: Int32Array } {
  const t = office.table;
  const f = t.families.indexOf(family);
  const benign: number[] = [];
  const attack: number[] = [];
  for (let i = 0; i < t.n; i++) {
    if (t.labels[i] === 0) benign.push(i);
    else if (t.family[i] === f) attack.push(i);
  }
  return { benign: Int32Array.from(benign), attack: Int32Array.from(attack) };
}

/**
 * One support draw. Refuses a K that would leave no query flow of a class, since the task could not be scored.
 * Support rows are shuffled (benign and attack interleaved by the generator).
 */
export function drawFewShot(office: Office, family: string, K: number, rng: Rng): FewShotTask {
  const { benign, attack } = officePools(office, family);
  if (attack.length <= K || benign.length <= K) {
    throw new FedmetaError(
      ErrorCode.CONFIG,
      `K = ${K} needs more than ${K} flows of each class at the ${office.name}, which has ${benign.length} benign and ${attack.length} "${family}" flows; lower K or choose a larger family`,
    );
  }
  const chosen = [...pick(benign, K, rng), ...pick(attack, K, rng)];
  const supportRows = rng.shuffle(Int32Array.from(chosen));
  const inSupport = new Set(chosen);
  const queryRows = Int32Array.from({ length: office.table.n }, (_, i) => i).filter((i) => !inSupport.has(i));
  return { K, support: gatherRows(office.table, supportRows), query: gatherRows(office.table, queryRows), supportRows, queryRows };
}

/**
 * The support draws of one seed, shared by every method so that methods are compared on the same flows
 * (paired). Draw d of K under seed s is the same whatever methods run.
 */
export function drawTasks(office: Office, family: string, Ks: readonly number[], draws: number, seed: number, purpose: string): Map<number, FewShotTask[]> {
  const out = new Map<number, FewShotTask[]>();
  for (const K of Ks) {
    const tasks: FewShotTask[] = [];
    for (let d = 0; d < draws; d++) tasks.push(drawFewShot(office, family, K, createRng(deriveSeed(seed, purpose, family, K, d))));
    out.set(K, tasks);
  }
  return out;
}
