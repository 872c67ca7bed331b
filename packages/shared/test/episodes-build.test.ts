import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isFedmetaError } from '../src/errors.js';
import {
  attackFamilies,
  buildEpisode,
  buildTriageEpisode,
  createRng,
  rowsOfFamilies,
  splitBenign,
  splitRows,
} from '../src/episodes/index.js';
import type { FlowTable } from '../src/features/index.js';
import { toyTable } from './features-fixtures.js';

/** Each toy row's feature 0 is log1p(its source index): recover the row a batch entry came from. */
const sourceOf = (x: Float32Array, dim: number, i: number): number => Math.round(Math.expm1(x[i * dim]!));

let cached: FlowTable | undefined;
async function table(): Promise<FlowTable> {
  cached ??= await toyTable(200, { dos: 60, scan: 3, worm: 1 });
  return cached;
}

test('an episode is balanced, labelled 0/1, disjoint between support and query, and its batches match its rows', async () => {
  const t = await table();
  const ep = buildEpisode(t, { family: 'dos', shots: 5, queryShots: 20, rng: createRng(1) });
  assert.equal(ep.support.n, 10);
  assert.equal(ep.query.n, 40);
  assert.equal(ep.support.dim, t.dim);
  assert.equal(ep.support.x.length, 10 * t.dim);
  assert.equal(ep.withReplacement, false);
  for (const [batch, rows] of [[ep.support, ep.rows.support], [ep.query, ep.rows.query]] as const) {
    assert.equal(batch.y.filter((y) => y === 1).length, batch.n / 2);
    for (let i = 0; i < batch.n; i++) {
      const r = rows[i]!;
      assert.equal(batch.y[i], t.labels[r]);
      assert.equal(sourceOf(batch.x, t.dim, i), r);
      if (batch.y[i] === 1) assert.equal(t.families[t.family[r]!], 'dos');
    }
    assert.equal(new Set(rows).size, rows.length, 'no row twice when there are enough rows');
  }
  const sup = new Set(ep.rows.support);
  assert.ok(ep.rows.query.every((r) => !sup.has(r)), 'support and query share no row');
  // Shuffled: the labels are not simply all benign then all attack.
  assert.notDeepEqual(Array.from(ep.query.y), [...new Array(20).fill(0), ...new Array(20).fill(1)]);
});

test('episodes are deterministic per seed and vary across seeds', async () => {
  const t = await table();
  const a = buildEpisode(t, { family: 'dos', shots: 3, queryShots: 4, rng: createRng(9) });
  const b = buildEpisode(t, { family: 'dos', shots: 3, queryShots: 4, rng: createRng(9) });
  const c = buildEpisode(t, { family: 'dos', shots: 3, queryShots: 4, rng: createRng(10) });
  assert.deepEqual(a.support.x, b.support.x);
  assert.deepEqual(a.query.y, b.query.y);
  assert.deepEqual(a.rows, b.rows);
  assert.notDeepEqual(a.rows, c.rows);
});

test('benign rows come only from the given slice; a slice with attack rows is refused', async () => {
  const t = await table();
  const [slice] = splitBenign(t, [1, 3], createRng(2));
  const allowed = new Set(slice);
  for (let s = 0; s < 20; s++) {
    const ep = buildEpisode(t, { family: 0, shots: 4, queryShots: 4, rng: createRng(s), benignRows: slice });
    for (const rows of [ep.rows.support, ep.rows.query]) {
      for (const r of rows) if (t.labels[r] === 0) assert.ok(allowed.has(r));
    }
  }
  const attack = rowsOfFamilies(t, ['dos']);
  assert.throws(
    () => buildEpisode(t, { family: 'dos', shots: 1, queryShots: 1, rng: createRng(1), benignRows: [slice![0]!, attack[0]!] }),
    (e: unknown) => isFedmetaError(e, ErrorCode.PRECONDITION),
  );
});

test('a family with too few rows is drawn with replacement, still without sharing rows between support and query', async () => {
  const t = await table();
  const ep = buildEpisode(t, { family: 'scan', shots: 5, queryShots: 10, rng: createRng(4) });
  assert.equal(ep.withReplacement, true);
  const attackSup = new Set(ep.rows.support.filter((r) => t.labels[r] === 1));
  const attackQry = new Set(ep.rows.query.filter((r) => t.labels[r] === 1));
  assert.equal(ep.support.y.filter((y) => y === 1).length, 5);
  assert.equal(ep.query.y.filter((y) => y === 1).length, 10);
  assert.equal(attackSup.size + attackQry.size, 3, 'all three scan rows are used');
  assert.ok([...attackQry].every((r) => !attackSup.has(r)));
  // One row cannot be split between support and query.
  assert.throws(
    () => buildEpisode(t, { family: 'worm', shots: 1, queryShots: 1, rng: createRng(1) }),
    (e: unknown) => isFedmetaError(e, ErrorCode.PRECONDITION) && /at least 2/.test(e.message),
  );
  assert.throws(
    () => buildEpisode(t, { family: 'normal', shots: 1, queryShots: 1, rng: createRng(1) }),
    (e: unknown) => isFedmetaError(e, ErrorCode.CONFIG) && /no attack rows/.test(e.message),
  );
  const supportOnly = buildEpisode(t, { family: 'worm', shots: 2, queryShots: 0, rng: createRng(1) });
  assert.equal(supportOnly.query.n, 0);
  assert.throws(
    () => buildEpisode(t, { family: 'botnet', shots: 1, queryShots: 1, rng: createRng(1) }),
    (e: unknown) => isFedmetaError(e, ErrorCode.CONFIG) && /"dos"/.test(e.message),
  );
  assert.throws(() => buildEpisode(t, { family: 'dos', shots: 0, queryShots: 1, rng: createRng(1) }), (e: unknown) => isFedmetaError(e, ErrorCode.CONFIG));
});

test('triage episodes label families 0..N-1 over attack rows only', async () => {
  const t = await table();
  const ep = buildTriageEpisode(t, { families: ['scan', 'dos'], shots: 1, queryShots: 2, rng: createRng(5) });
  assert.equal(ep.support.n, 2);
  assert.equal(ep.query.n, 4);
  for (const [batch, rows] of [[ep.support, ep.rows.support], [ep.query, ep.rows.query]] as const) {
    for (let i = 0; i < batch.n; i++) {
      assert.equal(t.labels[rows[i]!], 1);
      assert.equal(t.families[t.family[rows[i]!]!], ['scan', 'dos'][batch.y[i]!]);
    }
  }
  assert.throws(() => buildTriageEpisode(t, { families: ['dos'], shots: 1, queryShots: 1, rng: createRng(1) }), (e: unknown) =>
    isFedmetaError(e, ErrorCode.CONFIG),
  );
});

test('splits are disjoint, complete, sized by weight and seeded', async () => {
  const t = await table();
  const parts = splitBenign(t, 3, createRng(8));
  assert.deepEqual(parts.map((p) => p.length), [67, 67, 66]);
  const all = parts.flatMap((p) => Array.from(p));
  assert.equal(new Set(all).size, 200);
  assert.ok(all.every((r) => t.labels[r] === 0));
  assert.deepEqual(splitBenign(t, 3, createRng(8)), parts);
  assert.notDeepEqual(splitBenign(t, 3, createRng(9)), parts);
  assert.deepEqual(splitRows([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [0.7, 0.2, 0.1], createRng(1)).map((p) => p.length), [7, 2, 1]);
  const within = splitBenign(t, 2, createRng(1), [0, 1, 2, 3, 250, 251]);
  assert.deepEqual(within.flatMap((p) => Array.from(p)).sort((a, b) => a - b), [0, 1, 2, 3]);
  assert.throws(() => splitRows([1], [0, 0], createRng(1)), (e: unknown) => isFedmetaError(e, ErrorCode.CONFIG));
});

test('rowsOfFamilies selects attack rows of the named families and refuses unknown names', async () => {
  const t = await table();
  const rows = rowsOfFamilies(t, ['dos', 'scan']);
  assert.equal(rows.length, 63);
  assert.ok(Array.from(rows).every((r) => t.labels[r] === 1 && ['dos', 'scan'].includes(t.families[t.family[r]!]!)));
  assert.equal(rowsOfFamilies(t, ['normal'], { label: 'any' }).length, 200);
  assert.equal(rowsOfFamilies(t, ['normal']).length, 0);
  assert.throws(() => rowsOfFamilies(t, ['dos', 'DoS Hulk']), (e: unknown) => isFedmetaError(e, ErrorCode.CONFIG) && /DoS Hulk/.test(e.message));
  assert.deepEqual(attackFamilies(t, 2), ['dos', 'scan']);
});
