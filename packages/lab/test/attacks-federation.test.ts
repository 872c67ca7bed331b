import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyReport, initRuntime } from '@fedmeta/shared';
import type { ModelSpec } from '@fedmeta/shared';
import { runFederation } from '../src/attacks/index.js';
import type { FederationRun, MaliciousFn } from '../src/attacks/index.js';
import type { LabSite } from '../src/methods/index.js';

/** Sites whose local work is a fixed vector of ones: the aggregate can then be worked out by hand. */
const spec: ModelSpec = { inputDim: 3, hidden: [2], activation: 'relu', task: { kind: 'binary' } };
const size = 3 * 2 + 2 + 2 * 1 + 1;

function site(name: string): LabSite {
  const table = { x: new Float32Array(0), labels: new Int32Array(0), family: new Int32Array(0), families: [], n: 0, dim: 3, fingerprint: 'test', report: emptyReport() };
  return { name, table, families: [], trainBenign: new Int32Array(0), trainAttack: new Map(), validation: [], seed: 1 };
}

function run(aggregator: FederationRun['aggregator'], malicious: ReadonlyMap<string, MaliciousFn>): FederationRun {
  return {
    spec,
    sites: ['a', 'b', 'c', 'd', 'e'].map(site),
    rounds: 1,
    init: new Float32Array(size),
    optimizer: { kind: 'sgd', lr: 1 },
    aggregator,
    seed: 3,
    // 1 episode × 2 classes × (2 + 3) shots: the 10 examples the honest sites report, so weights are equal.
    task: { algorithm: 'fomaml', innerSteps: 1, innerLr: 0.1, shots: 2, queryShots: 3, episodes: 1 },
    local: () => ({ update: new Float32Array(size).fill(1), examples: 10, supportLoss: 0.5, queryLoss: 0.5 }),
    malicious,
  };
}

test('an omniscient attacker sees every honest update of the round, and its update reaches the aggregate', async () => {
  await initRuntime();
  const seen: number[] = [];
  const ipm: MaliciousFn = async (ctx) => {
    const honest = await ctx.honestUpdates();
    seen.push(honest.length, ctx.n, ctx.f);
    assert.ok(honest.every((u) => u.every((v) => v === 1)));
    return new Float32Array(size).fill(-0.5);
  };
  const out = await runFederation(run({ kind: 'mean' }, new Map([['c', ipm]])));
  assert.deepEqual(seen, [4, 5, 1]);
  // mean = (4 × 1 − 0.5) / 5 = 0.7; one SGD step of size 1 from zero.
  for (const v of out.params) assert.ok(Math.abs(v + 0.7) < 1e-6);
});

test('the configured aggregator is the one the engine uses: the median ignores a huge update the mean follows', async () => {
  await initRuntime();
  const huge: MaliciousFn = () => new Float32Array(size).fill(1e6);
  const bad = new Map([['a', huge]]);
  const median = await runFederation(run({ kind: 'median' }, bad));
  for (const v of median.params) assert.ok(Math.abs(v + 1) < 1e-6);
  const mean = await runFederation(run({ kind: 'mean' }, bad));
  for (const v of mean.params) assert.ok(Math.abs(v + (4 + 1e6) / 5) < 1);
  assert.equal(median.honestNorms.length, 1);
});
