import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cicFlowMeterSchema, createRng, featureDim, initParams, initRuntime, predictScores } from '@fedmeta/shared';
import type { FeatureStats, ModelSpec } from '@fedmeta/shared';
import { controlledColumns, controlledMask, lowerBounds, pgdAttack } from '../src/evasion/index.js';
import type { PgdNorm } from '../src/evasion/index.js';

const spec: ModelSpec = { inputDim: 6, hidden: [8], activation: 'relu', task: { kind: 'binary' } };
const mask = Uint8Array.from([1, 1, 0, 1, 0, 0]);
// Feature 0 may not go below −0.3, feature 1 below 0.2 (a value some rows start under), feature 3 is free.
const lower = Float64Array.from([-0.3, 0.2, Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY]);

function rows(n: number): Float32Array {
  const rng = createRng(11);
  return Float32Array.from({ length: n * spec.inputDim }, () => rng.normal());
}

for (const norm of ['linf', 'l2'] as PgdNorm[]) {
  test(`PGD (${norm}) changes only controlled features, stays in the budget and the domain, and lowers the score`, async () => {
    await initRuntime();
    const params = initParams(spec, 5).values;
    const n = 40;
    const x0 = rows(n);
    const epsilon = 0.8;
    for (const rng of [undefined, createRng(3)]) {
      const x = pgdAttack(spec, params, x0, n, { epsilon, norm, steps: 20, mask, lower, ...(rng !== undefined ? { rng } : {}) });
      for (let r = 0; r < n; r++) {
        let sq = 0;
        for (let j = 0; j < spec.inputDim; j++) {
          const i = r * spec.inputDim + j;
          const d = x[i]! - x0[i]!;
          if (mask[j] === 0) assert.equal(x[i], x0[i], `uncontrolled feature ${j} of row ${r} changed`);
          if (norm === 'linf') assert.ok(Math.abs(d) <= epsilon + 1e-6, `|Δ| = ${Math.abs(d)} over the budget`);
          sq += d * d;
          assert.ok(x[i]! >= Math.min(lower[j]!, x0[i]!) - 1e-6, `feature ${j} of row ${r} left its domain`);
        }
        if (norm === 'l2') assert.ok(Math.sqrt(sq) <= epsilon + 1e-5, `||Δ|| = ${Math.sqrt(sq)} over the budget`);
      }
      const before = predictScores(spec, params, x0, n).reduce((a, b) => a + b, 0);
      const after = predictScores(spec, params, x, n).reduce((a, b) => a + b, 0);
      assert.ok(after < before, `the attack should lower the mean score (${before / n} -> ${after / n})`);
    }
  });
}

test('a zero budget returns the flows unchanged', async () => {
  await initRuntime();
  const x0 = rows(3);
  assert.deepEqual(pgdAttack(spec, initParams(spec, 1).values, x0, 3, { epsilon: 0, norm: 'linf', steps: 5, mask, lower }), x0);
});

test('the CIC controlled features exclude protocol, flags, backward-only features and the label; bounds mean raw >= 0', () => {
  const schema = cicFlowMeterSchema;
  const m = controlledMask(schema);
  const names = schema.numeric.map((c) => c.column);
  assert.equal(m.length, featureDim(schema));
  for (let j = names.length; j < m.length; j++) assert.equal(m[j], 0, 'protocol one-hot slots are never controlled');
  for (const c of controlledColumns(schema)) {
    assert.ok(!/Flag|Bwd|Protocol|Label|Init Win|Header/.test(c), `${c} should not be attacker-controlled`);
  }
  const count = Array.from(m).reduce((a, b) => a + b, 0);
  assert.equal(count, controlledColumns(schema).length);
  // Raw 0 is 0 after the signed log; standardised with mean 2 and std 4 it is −0.5.
  const stats: FeatureStats = { count: 1, mean: new Array(m.length).fill(2), std: new Array(m.length).fill(4) };
  const lo = lowerBounds(schema, stats, m);
  for (let j = 0; j < m.length; j++) assert.equal(lo[j], m[j] === 1 ? -0.5 : Number.NEGATIVE_INFINITY);
});
