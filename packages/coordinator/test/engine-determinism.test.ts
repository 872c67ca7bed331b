import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isFedmetaError } from '@fedmeta/shared';
import { RoundEngine } from '../src/engine/round-engine.js';
import { createMemoryHub } from '../src/engine/memory-hub.js';
import { sampleCount, sampleSites, taskSeed } from '../src/engine/seeds.js';
import { validateEngineConfig } from '../src/engine/config.js';
import type { Checkpoint } from '../src/state/types.js';
import { MemoryStore } from './helpers/memory-store.js';
import { bytesOf, captureLogger, engineConfig, initialCheckpoint, quadraticSite, vec } from './helpers/engine-fixtures.js';

const DIM = 32;

/**
 * Runs a round where the sites answer after the given delays (ms). Their updates mix +-1e17 with small values,
 * so that summing them in arrival order would give a different floating-point aggregate for each order.
 */
async function runWithDelays(delays: number[]): Promise<Checkpoint> {
  const m = createMemoryHub();
  const pattern = [1e17, -1e17, 1, 3, -1e17, 1e17];
  delays.forEach((d, i) => {
    m.connect(`site-${i}`, async (offer) => {
      await new Promise((r) => setTimeout(r, d));
      return {
        round: offer.round,
        version: offer.version,
        counts: { episodes: 1, examples: 100 },
        metrics: { supportLoss: i, queryLoss: i },
        update: vec(DIM, (j) => pattern[(i + j) % pattern.length] as number),
      };
    });
  });
  const config = engineConfig({ quorum: { kind: 'count', value: 6 }, minSites: 6 }, { optimizer: { kind: 'sgd', lr: 1 } });
  const engine = new RoundEngine({ store: new MemoryStore(), hub: m.hub, config, logger: captureLogger('silent').logger });
  await engine.init(initialCheckpoint(DIM - 1));
  await engine.runRound();
  return engine.checkpoint() as Checkpoint;
}

test('the aggregate does not depend on the order updates arrive in', async () => {
  const orders = [
    [0, 8, 16, 24, 32, 40],
    [40, 32, 24, 16, 8, 0],
    [16, 40, 0, 32, 8, 24],
  ];
  const results = await Promise.all(orders.map((o) => runWithDelays(o)));
  const [first, ...rest] = results as [Checkpoint, ...Checkpoint[]];
  assert.ok(first.params.some((x) => x !== 0));
  for (const r of rest) {
    assert.ok(bytesOf(r.params).equals(bytesOf(first.params)));
    assert.deepEqual(r.history.map((h) => h.sites), first.history.map((h) => h.sites));
  }
});

test('site sampling: a fraction with a minimum, sorted, reproducible from (seed, round, attempt)', () => {
  const online = Array.from({ length: 20 }, (_, i) => `site-${String(i).padStart(2, '0')}`);
  assert.equal(sampleCount(20, 0.3, 2), 6);
  assert.equal(sampleCount(20, 0.01, 4), 4);
  assert.equal(sampleCount(3, 0.5, 5), 3);
  assert.equal(sampleCount(7, 1, 1), 7);

  const s = sampleSites(online, 6, 42, 3, 0);
  assert.equal(s.length, 6);
  assert.deepEqual(s, [...s].sort());
  assert.ok(s.every((x) => online.includes(x)));
  assert.equal(new Set(s).size, 6);
  // The same online set in another order samples the same way.
  assert.deepEqual(sampleSites([...online].reverse(), 6, 42, 3, 0), s);
  const perRound = new Set(Array.from({ length: 10 }, (_, r) => sampleSites(online, 6, 42, r, 0).join()));
  assert.ok(perRound.size > 5, 'rounds sample different sites');
  assert.notDeepEqual(sampleSites(online, 6, 43, 3, 0), s);
  assert.deepEqual(sampleSites(online, 25, 42, 3, 0), online);

  // Every site gets sampled about equally often.
  const counts = new Map<string, number>();
  for (let r = 0; r < 2000; r++) for (const x of sampleSites(online, 5, 1, r, 0)) counts.set(x, (counts.get(x) ?? 0) + 1);
  for (const c of counts.values()) assert.ok(c > 400 && c < 600, `sampled ${c} times, expected about 500`);

  assert.equal(taskSeed(42, 3), taskSeed(42, 3));
  assert.notEqual(taskSeed(42, 3), taskSeed(42, 4));
  assert.ok(Number.isInteger(taskSeed(42, 3)) && taskSeed(42, 3) >= 0 && taskSeed(42, 3) < 2 ** 32);
});

test('two engines with the same seed sample the same sites and send the same tasks', async () => {
  const run = async () => {
    const m = createMemoryHub();
    const seen: string[] = [];
    for (let i = 0; i < 10; i++) {
      const name = `s${i}`;
      m.connect(name, quadraticSite(vec(DIM, () => i), { onOffer: (o) => seen.push(`${o.round}:${name}:${o.task.seed}`) }));
    }
    const engine = new RoundEngine({
      store: new MemoryStore(),
      hub: m.hub,
      config: engineConfig({ sampleFraction: 0.3, minSites: 2, quorum: { kind: 'count', value: 2 } }),
      logger: captureLogger('silent').logger,
    });
    await engine.init(initialCheckpoint(DIM - 1));
    const records = await engine.runRounds(4);
    return { sampled: records.map((r) => r.sampled), seen: seen.sort() };
  };
  const a = await run();
  const b = await run();
  assert.deepEqual(a, b);
  assert.ok(a.sampled.every((s) => s.length === 3));
});

test('configuration is checked once, with the field to fix named', () => {
  const bad = (rounds: object, rest: object = {}) => () => validateEngineConfig(engineConfig(rounds, rest));
  const isConfig = (field: RegExp) => (e: unknown) => isFedmetaError(e, ErrorCode.CONFIG) && field.test(e.message);
  assert.throws(bad({ sampleFraction: 0 }), isConfig(/rounds\.sampleFraction/));
  assert.throws(bad({ sampleFraction: 1.5 }), isConfig(/rounds\.sampleFraction/));
  assert.throws(bad({ quorum: { kind: 'count', value: 0 } }), isConfig(/rounds\.quorum/));
  assert.throws(bad({ deadlineSeconds: Number.NaN }), isConfig(/rounds\.deadlineSeconds/));
  assert.throws(bad({ algorithm: 'sgd' }), isConfig(/rounds\.algorithm/));
  assert.throws(bad({ sampleFraction: 0.5, minSites: 2, quorum: { kind: 'count', value: 3 } }), isConfig(/rounds\.quorum .*minSites/));
  assert.throws(bad({ quorum: { kind: 'count', value: 3 }, minSites: 3 }, { aggregator: { kind: 'multi-krum', f: 1 } }), isConfig(/quorum 3 is too small/));
  assert.throws(bad({}, { seed: -1 }), isConfig(/seed/));
  const ok = validateEngineConfig(engineConfig({ quorum: { kind: 'count', value: 5 }, minSites: 5 }, { aggregator: { kind: 'multi-krum', f: 1 } }));
  assert.ok(Object.isFrozen(ok) && Object.isFrozen(ok.rounds));
});
