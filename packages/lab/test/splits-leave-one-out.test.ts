import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { isFedmetaError } from '@fedmeta/shared';
import { checkSplit, drawFewShot, drawTasks, loadDataset, splitForFamily } from '../src/eval/index.js';
import type { Dataset, FamilySplit, SplitPlan } from '../src/eval/index.js';
import { prepareSite } from '../src/methods/index.js';
import { createRng } from '@fedmeta/shared';

const file = fileURLToPath(new URL('../../../data/unsw-nb15/unsw-nb15-sample.csv.gz', import.meta.url));
const plan: SplitPlan = {
  sites: [
    { name: 'office-exploits', families: ['Exploits', 'Backdoor'] },
    { name: 'office-dos', families: ['DoS', 'Reconnaissance'] },
    { name: 'office-fuzzers', families: ['Fuzzers'] },
  ],
  validationFamily: 'Analysis',
  normalization: 'site',
};

let cached: Dataset | undefined;
async function dataset(): Promise<Dataset> {
  cached ??= await loadDataset({ files: [file], schemaRef: 'unsw-nb15' });
  return cached;
}

/** The raw (unstandardised) feature row of a dataset row, as a string key. */
function rowKey(d: Dataset, r: number): string {
  return Array.from(d.table.x.subarray(r * d.table.dim, (r + 1) * d.table.dim)).join(',');
}

function familyRows(d: Dataset, name: string): number[] {
  const f = d.table.families.indexOf(name);
  const out: number[] = [];
  for (let i = 0; i < d.table.n; i++) if (d.table.family[i] === f && d.table.labels[i] === 1) out.push(i);
  return out;
}

test('no site holds a row of the evaluated or the validation family, nor a benign row of another office', async () => {
  const d = await dataset();
  for (const family of ['Reconnaissance', 'Shellcode', 'DoS']) {
    const split = splitForFamily(d.table, d.schema, plan, family, 3);
    const held = new Set(split.heldOut.rows);
    const validation = new Set(split.validation.rows);
    const evalRows = new Set(familyRows(d, family));
    const valRows = new Set(familyRows(d, 'Analysis'));
    assert.ok(split.sites.length >= 2);
    for (const site of split.sites) {
      for (const r of site.rows) {
        assert.ok(!evalRows.has(r), `${site.name} holds a ${family} row`);
        assert.ok(!valRows.has(r), `${site.name} holds a validation-family row`);
        assert.ok(!held.has(r), `${site.name} holds a row of the held-out office`);
        assert.ok(!validation.has(r), `${site.name} holds a row of the validation office`);
      }
      // The site's own table (what its training reads) has no row of either family, by name.
      const names = new Set(Array.from(site.table.family, (f, i) => (site.table.labels[i] === 1 ? site.table.families[f] : 'benign')));
      assert.ok(!names.has(family) && !names.has('Analysis'));
      // Its benign slice is its own: none of the held-out office's benign flows, compared by content.
      const heldBenign = new Set(Array.from(split.heldOut.rows).filter((r) => d.table.labels[r] === 0).map((r) => rowKey(d, r)));
      for (const r of site.rows) if (d.table.labels[r] === 0) assert.ok(!heldBenign.has(rowKey(d, r)) || duplicateInSource(d, r));
    }
    // The held-out office holds every row of the family and benign traffic, nothing else.
    assert.equal(split.heldOut.rows.filter((r) => d.table.labels[r] === 1).length, evalRows.size);
    assert.ok(split.heldOut.rows.every((r) => d.table.labels[r] === 0 || evalRows.has(r)));
    assert.ok(split.heldOut.rows.some((r) => d.table.labels[r] === 0), 'the held-out office has its own benign slice');
  }
});

/** True when the same feature vector occurs twice among the benign rows of the source (then content cannot tell rows apart). */
function duplicateInSource(d: Dataset, r: number): boolean {
  const key = rowKey(d, r);
  let count = 0;
  for (let i = 0; i < d.table.n; i++) if (d.table.labels[i] === 0 && rowKey(d, i) === key) count++;
  return count > 1;
}

test('a site whose only family is held out is left out; the benign slices stay the same for one seed', async () => {
  const d = await dataset();
  const onlyRecon: SplitPlan = { ...plan, sites: [...plan.sites, { name: 'office-recon', families: ['Shellcode'] }] };
  const a = splitForFamily(d.table, d.schema, onlyRecon, 'Shellcode', 5);
  assert.deepEqual(a.emptySites, ['office-recon']);
  const b = splitForFamily(d.table, d.schema, onlyRecon, 'Reconnaissance', 5);
  const benign = (s: FamilySplit): number[] => Array.from(s.heldOut.rows).filter((r) => d.table.labels[r] === 0);
  assert.deepEqual(benign(a), benign(b), 'the held-out benign slice depends on the seed only');
  const c = splitForFamily(d.table, d.schema, onlyRecon, 'Shellcode', 6);
  assert.notDeepEqual(benign(a), benign(c));
});

test('each office is standardised with its own benign statistics', async () => {
  const d = await dataset();
  const split = splitForFamily(d.table, d.schema, plan, 'Reconnaissance', 1);
  for (const office of [...split.sites, split.heldOut]) {
    const t = office.table;
    const j = 0; // dur: a numeric, standardised feature
    let sum = 0;
    let n = 0;
    for (let i = 0; i < t.n; i++) if (t.labels[i] === 0) {
      sum += t.x[i * t.dim + j]!;
      n++;
    }
    assert.ok(Math.abs(sum / n) < 1e-4, `${office.name}: benign mean ${sum / n}`);
  }
  const pooled = splitForFamily(d.table, d.schema, { ...plan, normalization: 'pooled' }, 'Reconnaissance', 1);
  assert.deepEqual(pooled.sites[0]!.stats, pooled.heldOut.stats, 'pooled statistics are the same everywhere');
});

test('checkSplit refuses a split that leaks', async () => {
  const d = await dataset();
  const split = splitForFamily(d.table, d.schema, plan, 'Reconnaissance', 2);
  const leakFamily: FamilySplit = { ...split, sites: [{ ...split.sites[0]!, rows: Int32Array.from([...split.sites[0]!.rows, familyRows(d, 'Reconnaissance')[0]!]) }, ...split.sites.slice(1)] };
  assert.throws(() => checkSplit(d.table, leakFamily), (e) => isFedmetaError(e) && /leaks/.test(e.message));
  const heldBenign = split.heldOut.rows.find((r) => d.table.labels[r] === 0)!;
  const leakBenign: FamilySplit = { ...split, sites: [{ ...split.sites[0]!, rows: Int32Array.from([...split.sites[0]!.rows, heldBenign]) }, ...split.sites.slice(1)] };
  assert.throws(() => checkSplit(d.table, leakBenign), (e) => isFedmetaError(e) && /leaks/.test(e.message));
});

test('a held-out task has K flows per class in the support and every other flow of the office in the query', async () => {
  const d = await dataset();
  const split = splitForFamily(d.table, d.schema, plan, 'Reconnaissance', 4);
  const task = drawFewShot(split.heldOut, 'Reconnaissance', 5, createRng(9));
  assert.equal(task.support.n, 10);
  assert.equal(Array.from(task.support.y).filter((y) => y === 1).length, 5);
  const all = new Set([...task.supportRows, ...task.queryRows]);
  assert.equal(all.size, split.heldOut.table.n, 'support and query are disjoint and cover the office');
  assert.equal(task.query.n, split.heldOut.table.n - 10);
  // Draws are the same for the same seed, so every method is scored on the same flows.
  const again = drawTasks(split.heldOut, 'Reconnaissance', [5], 2, 4, 'support').get(5)!;
  const twice = drawTasks(split.heldOut, 'Reconnaissance', [5], 2, 4, 'support').get(5)!;
  assert.deepEqual(again[1]!.supportRows, twice[1]!.supportRows);
  assert.notDeepEqual(again[0]!.supportRows, again[1]!.supportRows);
  assert.throws(() => drawFewShot(split.heldOut, 'Reconnaissance', 10_000, createRng(1)), (e) => isFedmetaError(e));
});

test("a site's validation flows are never in its training rows", async () => {
  const d = await dataset();
  const split = splitForFamily(d.table, d.schema, plan, 'Reconnaissance', 7);
  for (const office of split.sites) {
    const site = prepareSite(office, 7, 5);
    const train = new Set([...site.trainBenign, ...[...site.trainAttack.values()].flatMap((r) => Array.from(r))]);
    assert.ok(site.validation.length >= 1);
    // Validation queries are gathered from held-back rows: none of their feature vectors is a training row's.
    const trainKeys = new Set([...train].map((r) => Array.from(office.table.x.subarray(r * office.table.dim, (r + 1) * office.table.dim)).join(',')));
    for (const ep of site.validation) {
      for (let i = 0; i < ep.query.n; i++) {
        const key = Array.from(ep.query.x.subarray(i * ep.query.dim, (i + 1) * ep.query.dim)).join(',');
        if (trainKeys.has(key)) assert.ok(duplicateWithin(office.table, key), 'a held-back flow is also a training flow');
      }
    }
  }
});

function duplicateWithin(t: { x: Float32Array; n: number; dim: number }, key: string): boolean {
  let count = 0;
  for (let i = 0; i < t.n; i++) if (Array.from(t.x.subarray(i * t.dim, (i + 1) * t.dim)).join(',') === key) count++;
  return count > 1;
}
