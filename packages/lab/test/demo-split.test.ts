import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { loadFlowTable } from '@fedmeta/shared';
import { CIC_DEMO_PLAN, csvFields, splitPlanOf, writeOfficeFiles } from '../src/demo/index.js';
import { loadDataset } from '../src/eval/data.js';
import { splitForFamily } from '../src/eval/splits.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const sample = join(root, CIC_DEMO_PLAN.dataset);

async function rowsOf(file: string): Promise<{ header: string; rows: string[] }> {
  const text = gunzipSync(await readFile(file)).toString('utf8');
  const [header, ...rows] = text.split('\n').filter((l) => l.length > 0);
  return { header: header!, rows };
}

test('csvFields reads quoted fields and refuses an unclosed quote', () => {
  assert.deepEqual(csvFields('a,"b,c",,"d ""e"""'), ['a', 'b,c', '', 'd "e"']);
  assert.deepEqual(csvFields('x'), ['x']);
  assert.equal(csvFields('a,"b'), null);
});

test('each office file holds its own benign slice, and no training office holds a Botnet or validation row', async () => {
  const out = await mkdtemp(join(tmpdir(), 'fedmeta-demo-split-'));
  try {
    const { schema, table } = await loadDataset({ files: [sample], schemaRef: CIC_DEMO_PLAN.schema });
    const split = splitForFamily(table, schema, splitPlanOf(CIC_DEMO_PLAN), CIC_DEMO_PLAN.evalFamily, 7);
    const offices = [...split.sites, split.validation, split.heldOut];
    const files = await writeOfficeFiles(sample, table, schema, offices, out);
    const { header: sourceHeader, rows: sourceRows } = await rowsOf(sample);
    const labelAt = csvFields(sourceHeader)!.indexOf('Label');
    const sourceSet = new Set(sourceRows);

    const owner = new Map<string, string>();
    for (const f of files) {
      const { header, rows } = await rowsOf(f.file);
      assert.equal(header, sourceHeader, 'each office file keeps the source header');
      const families = offices.find((o) => o.name === f.name)!.families;
      let benign = 0;
      for (const row of rows) {
        assert.ok(sourceSet.has(row), 'rows are copied unchanged from the sample');
        const other = owner.get(row);
        assert.equal(other, undefined, `a flow is in both ${other} and ${f.name}`);
        owner.set(row, f.name);
        const label = csvFields(row)![labelAt]!;
        if (label === 'BENIGN') benign++;
        else {
          assert.ok(families.includes(label), `${f.name} holds only its own families`);
          if (f.role === 'site') {
            assert.notEqual(label, 'Botnet', `training office ${f.name} holds a Botnet row`);
            assert.notEqual(label, CIC_DEMO_PLAN.validationFamily, `training office ${f.name} holds a validation row`);
          }
        }
      }
      assert.equal(benign, f.benign);
      assert.ok(benign > 100, `${f.name} has its own benign slice`);
    }
    // Every benign flow of the sample is in exactly one office, in slices of equal size (within one).
    const sourceBenign = sourceRows.filter((r) => csvFields(r)![labelAt] === 'BENIGN');
    assert.equal(sourceBenign.filter((r) => owner.has(r)).length, sourceBenign.length);
    const sizes = files.map((f) => f.benign);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
    // The held-out office has all the Botnet flows and only benign flows besides.
    const held = files.find((f) => f.role === 'held-out')!;
    const botnet = sourceRows.filter((r) => csvFields(r)![labelAt] === 'Botnet').length;
    assert.deepEqual(held.attacks, { Botnet: botnet });

    // A training office's file is what its agent reads: the built-in schema loads it, identifiers dropped.
    const site = await loadFlowTable(files[0]!.file, schema);
    assert.equal(site.dim, 85, 'identifier columns and Dst Port never become features');
    assert.deepEqual(site.families, ['BENIGN', ...CIC_DEMO_PLAN.sites[0]!.families].sort());
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
