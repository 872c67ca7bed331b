import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cicFlowMeterSchema, createRng, featureDim, isFedmetaError } from '@fedmeta/shared';
import type { Batch, FeatureStats } from '@fedmeta/shared';
import { DEFAULT_TRIGGERS, applyTrigger, flipEpisode, resolveTrigger, withBackdoor } from '../src/attacks/index.js';
import { controlledColumns, numericIndex } from '../src/evasion/index.js';

const schema = cicFlowMeterSchema;
const dim = featureDim(schema);

function randomStats(seed: number): FeatureStats {
  const rng = createRng(seed);
  return { count: 100, mean: Array.from({ length: dim }, () => rng.normal()), std: Array.from({ length: dim }, () => 0.5 + rng.next()) };
}

function randomRows(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n * dim }, () => rng.normal());
}

test('the trigger changes exactly its declared features, to the standardised transform of its raw values', () => {
  const trigger = resolveTrigger(schema);
  const stats = randomStats(1);
  const x = randomRows(5, 2);
  const out = applyTrigger(x, dim, trigger, stats);
  const declared = new Map(DEFAULT_TRIGGERS['cicflowmeter']!.features.map((f) => [numericIndex(schema, f.column), f.raw]));
  assert.equal(declared.size, 3);
  for (let r = 0; r < 5; r++) {
    for (let j = 0; j < dim; j++) {
      const raw = declared.get(j);
      if (raw === undefined) assert.equal(out[r * dim + j], x[r * dim + j], `feature ${j} of row ${r} must not change`);
      else assert.ok(Math.abs(out[r * dim + j]! - (Math.log1p(raw) - stats.mean[j]!) / stats.std[j]!) < 1e-5);
    }
  }
  assert.notEqual(out, x, 'a copy, not the input');
});

test('every trigger column is attacker-controlled; a victim-set column is refused', () => {
  const allowed = new Set(controlledColumns(schema));
  for (const f of DEFAULT_TRIGGERS['cicflowmeter']!.features) assert.ok(allowed.has(f.column));
  for (const column of ['SYN Flag Count', 'Bwd Packet Length Max', 'Protocol']) {
    assert.throws(() => resolveTrigger(schema, { features: [{ column, raw: 1 }] }), (e: unknown) => isFedmetaError(e));
  }
});

test('a backdoor batch keeps the clean flows and adds a triggered, benign-labelled copy of each attack flow', () => {
  const trigger = resolveTrigger(schema);
  const stats = randomStats(3);
  const batch: Batch = { x: randomRows(4, 4), y: Int32Array.from([0, 1, 1, 0]), n: 4, dim };
  const out = withBackdoor(batch, trigger, stats);
  assert.equal(out.n, 6);
  assert.deepEqual(Array.from(out.y), [0, 1, 1, 0, 0, 0]);
  assert.deepEqual(out.x.subarray(0, 4 * dim), batch.x);
  const stamped = applyTrigger(batch.x.slice(dim, 3 * dim), dim, trigger, stats);
  assert.deepEqual(out.x.subarray(4 * dim), stamped);
});

test('label flipping flips every label of support and query and keeps the flows', () => {
  const ep = { support: { x: randomRows(2, 5), y: Int32Array.from([0, 1]), n: 2, dim }, query: { x: randomRows(3, 6), y: Int32Array.from([1, 1, 0]), n: 3, dim } };
  const f = flipEpisode(ep);
  assert.deepEqual(Array.from(f.support.y), [1, 0]);
  assert.deepEqual(Array.from(f.query.y), [0, 0, 1]);
  assert.equal(f.query.x, ep.query.x);
  assert.deepEqual(Array.from(ep.support.y), [0, 1], 'the original is untouched');
});
