import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isFedmetaError } from '@fedmeta/shared';
import { RoundEngine } from '../src/engine/round-engine.js';
import { createMemoryHub } from '../src/engine/memory-hub.js';
import type { RoundOffer } from '../src/engine/hub.js';
import type { RoundRecord } from '../src/state/types.js';
import { MemoryStore } from './helpers/memory-store.js';
import { ManualClock } from './helpers/manual-clock.js';
import { captureLogger, delay, flush, distance, engineConfig, initialCheckpoint, quadraticSite, vec } from './helpers/engine-fixtures.js';

const DIM = 8;

test('rounds commit with every site and the meta-parameters converge to the sites\' weighted target', async () => {
  const m = createMemoryHub();
  const store = new MemoryStore();
  const offers: RoundOffer[] = [];
  const targets = [0, 1, 2, 3].map((i) => vec(DIM, (j) => i - j * 0.25));
  const examples = [100, 200, 300, 400];
  targets.forEach((t, i) => m.connect(`site-${i}`, quadraticSite(t, { examples: examples[i] as number, onOffer: (o) => offers.push(o) })));
  const { logger } = captureLogger('silent');
  const engine = new RoundEngine({ store, hub: m.hub, config: engineConfig({ quorum: { kind: 'count', value: 3 }, minSites: 3 }), logger });
  const events: string[] = [];
  for (const e of ['round-started', 'update-accepted', 'round-committed', 'round-aborted'] as const) engine.on(e, () => events.push(e));

  await engine.init(initialCheckpoint(DIM - 1));
  const total = examples.reduce((a, b) => a + b, 0);
  const goal = vec(DIM, (j) => targets.reduce((s, t, i) => s + (t[j] as number) * (examples[i] as number), 0) / total);
  const start = distance(engine.params(), goal);

  const distances: number[] = [];
  const progress: number[] = [];
  const records = await engine.runRounds(8, {
    onProgress: (_r, done) => {
      progress.push(done);
      distances.push(distance(engine.params(), goal));
    },
  });

  assert.deepEqual(progress, [1, 2, 3, 4, 5, 6, 7, 8]);
  records.forEach((r, i) => {
    assert.equal(r.status, 'committed');
    assert.equal(r.round, i);
    assert.equal(r.fromVersion, i);
    assert.deepEqual(r.sampled, ['site-0', 'site-1', 'site-2', 'site-3']);
    assert.equal(r.accepted, 4);
    assert.deepEqual(r.rejected, {});
    assert.deepEqual(r.sites.map((s) => s.siteId), r.sampled);
  });
  for (let i = 1; i < distances.length; i++) assert.ok((distances[i] as number) < (distances[i - 1] as number));
  assert.ok((distances.at(-1) as number) < start * 0.01, `distance ${distances.at(-1)} of ${start}`);

  // Round 0 started from zeros: each site's query loss is ||target||^2, averaged by examples.
  const loss0 = targets.reduce((s, t, i) => s + (examples[i] as number) * t.reduce((a, x) => a + x * x, 0), 0) / total;
  assert.ok(Math.abs((records[0]?.meanQueryLoss as number) - loss0) < 1e-6 * loss0);

  // Every site got the same task for a round, with the configured settings and a deadline ahead.
  const byRound = new Map<number, RoundOffer[]>();
  for (const o of offers) byRound.set(o.round, [...(byRound.get(o.round) ?? []), o]);
  assert.equal(byRound.size, 8);
  const seeds = new Set<number>();
  for (const [round, os] of byRound) {
    assert.equal(os.length, 4);
    assert.ok(os.every((o) => o.version === round && o.task.seed === os[0]?.task.seed));
    seeds.add(os[0]?.task.seed as number);
    const t = os[0]?.task;
    assert.deepEqual({ ...t, seed: 0 }, { algorithm: 'reptile', innerSteps: 3, innerLr: 0.05, shots: 5, queryShots: 5, episodes: 2, seed: 0 });
    assert.ok((os[0]?.deadline as number) > Date.now());
  }
  assert.equal(seeds.size, 8, 'each round gets its own task seed');

  const latest = store.latest();
  assert.equal(latest?.version, 8);
  assert.equal(latest?.nextRound, 8);
  assert.deepEqual(latest?.params, engine.params());
  assert.equal(latest?.history.length, 8);
  assert.equal(events.filter((e) => e === 'round-started').length, 8);
  assert.equal(events.filter((e) => e === 'update-accepted').length, 32);
  assert.equal(events.filter((e) => e === 'round-committed').length, 8);
  assert.equal(events.filter((e) => e === 'round-aborted').length, 0);
  const st = engine.status();
  assert.equal(st.version, 8);
  assert.equal(st.roundInFlight, null);
  assert.deepEqual(st.sitesOnline, ['site-0', 'site-1', 'site-2', 'site-3']);
  assert.equal(st.lastRound?.round, 7);
});

test('a round reaches its quorum with one site silent and commits at the deadline', async () => {
  const m = createMemoryHub();
  const target = vec(DIM, () => 1);
  m.connect('a', quadraticSite(target));
  m.connect('b', quadraticSite(target));
  m.connect('silent', () => null);
  const engine = new RoundEngine({
    store: new MemoryStore(),
    hub: m.hub,
    config: engineConfig({ quorum: { kind: 'count', value: 2 }, minSites: 2, deadlineSeconds: 0.15 }),
    logger: captureLogger('silent').logger,
  });
  await engine.init(initialCheckpoint(DIM - 1));
  const t0 = Date.now();
  const r = await engine.runRound();
  const took = Date.now() - t0;
  assert.equal(r.status, 'committed');
  assert.deepEqual(r.sampled, ['a', 'b', 'silent']);
  assert.equal(r.accepted, 2);
  assert.deepEqual(r.sites.map((s) => s.siteId), ['a', 'b']);
  assert.ok(took >= 140 && took < 2000, `closed after ${took} ms`);
  assert.equal(engine.status().version, 1);
  assert.ok(distance(engine.params(), target) < distance(new Float32Array(DIM), target));
});

test('without a quorum a round is aborted and re-issued, and gives up with a clear error, never hanging', async () => {
  const m = createMemoryHub();
  m.connect('a', quadraticSite(vec(DIM, () => 1)));
  m.connect('b', () => null);
  m.connect('c', () => null);
  const store = new MemoryStore();
  const engine = new RoundEngine({
    store,
    hub: m.hub,
    config: engineConfig({ quorum: { kind: 'count', value: 2 }, minSites: 2, deadlineSeconds: 0.2, maxConsecutiveAborts: 3 }),
    logger: captureLogger('silent').logger,
  });
  const aborted: RoundRecord[] = [];
  const attempts: number[] = [];
  engine.on('round-aborted', (e) => {
    aborted.push(e.record);
    attempts.push(e.attempt);
  });
  await engine.init(initialCheckpoint(DIM - 1));
  const t0 = Date.now();
  await assert.rejects(engine.runRound(), (e) => isFedmetaError(e, ErrorCode.NO_QUORUM) && /aborted 3 times/.test(e.message));
  assert.ok(Date.now() - t0 < 3000);
  assert.deepEqual(attempts, [0, 1, 2]);
  assert.ok(aborted.every((r) => r.status === 'aborted' && r.round === 0 && r.accepted === 1 && /quorum is 2/.test(r.reason ?? '')));
  assert.equal(engine.status().version, 0);
  assert.equal(engine.status().lastRound?.status, 'aborted');

  // The sites come back: the next call re-issues round 0 (attempt 3) and commits it.
  m.connect('b', quadraticSite(vec(DIM, () => 1)));
  m.connect('c', quadraticSite(vec(DIM, () => 1)));
  const r = await engine.runRound();
  assert.equal(r.status, 'committed');
  assert.equal(r.round, 0);
  const history = store.latest()?.history ?? [];
  assert.deepEqual(history.map((h) => [h.round, h.status]), [[0, 'aborted'], [0, 'aborted'], [0, 'aborted'], [0, 'committed']]);
});

test('a site that misses the first attempt answers the re-issued one, which commits', async () => {
  const m = createMemoryHub();
  const target = vec(DIM, () => 2);
  let offersToLate = 0;
  m.connect('a', quadraticSite(target));
  m.connect('b', quadraticSite(target));
  const late = quadraticSite(target);
  m.connect('late', (offer) => (++offersToLate === 1 ? null : late(offer)));
  const engine = new RoundEngine({
    store: new MemoryStore(),
    hub: m.hub,
    config: engineConfig({ quorum: { kind: 'count', value: 3 }, minSites: 3, deadlineSeconds: 0.3 }),
    logger: captureLogger('silent').logger,
  });
  await engine.init(initialCheckpoint(DIM - 1));
  const r = await engine.runRound();
  assert.equal(r.status, 'committed');
  assert.equal(r.accepted, 3);
  assert.equal(offersToLate, 2);
  assert.deepEqual(engine.checkpoint()?.history.map((h) => h.status), ['aborted', 'committed']);
});

test('a round waits for a quorum of sites to come online, within its deadline', async () => {
  const m = createMemoryHub();
  const engine = new RoundEngine({
    store: new MemoryStore(),
    hub: m.hub,
    config: engineConfig({ quorum: { kind: 'count', value: 1 }, deadlineSeconds: 1 }),
    logger: captureLogger('silent').logger,
  });
  await engine.init(initialCheckpoint(DIM - 1));
  const t0 = Date.now();
  const running = engine.runRound();
  await delay(30);
  assert.equal(engine.status().roundInFlight?.phase, 'waiting-for-sites');
  m.connect('a', quadraticSite(vec(DIM, () => 1)));
  const r = await running;
  assert.equal(r.status, 'committed');
  assert.ok(Date.now() - t0 < 900);
});

test('nobody online: each attempt ends at the injected clock\'s deadline and the round gives up', async () => {
  const clock = new ManualClock();
  const m = createMemoryHub();
  const engine = new RoundEngine({
    store: new MemoryStore(),
    hub: m.hub,
    config: engineConfig({ quorum: { kind: 'count', value: 1 }, deadlineSeconds: 60, maxConsecutiveAborts: 2 }),
    logger: captureLogger('silent').logger,
    clock,
  });
  await engine.init(initialCheckpoint(DIM - 1));
  const reasons: string[] = [];
  engine.on('round-aborted', (e) => reasons.push(e.record.reason ?? ''));
  const running = engine.runRound();
  let settled = false;
  running.catch(() => undefined).finally(() => (settled = true));
  await flush();
  clock.advance(59_000);
  await flush();
  assert.equal(settled, false, 'still inside the first deadline');
  clock.advance(1_000);
  await flush();
  clock.advance(60_000);
  await assert.rejects(running, (e) => isFedmetaError(e, ErrorCode.NO_QUORUM));
  assert.equal(reasons.length, 2);
  assert.match(reasons[0] as string, /only 0 sites were online/);
  assert.equal(clock.pending(), 0, 'no timer is left behind');
});

test('offers carry the injected clock\'s deadline; a sampled site that reconnects mid-round gets the offer again', async () => {
  const clock = new ManualClock();
  const m = createMemoryHub();
  const target = vec(DIM, () => 1);
  const seen: RoundOffer[] = [];
  m.connect('a', quadraticSite(target));
  m.connect('b', (offer) => {
    seen.push(offer);
    return null; // loses its work, as an agent killed mid-round does
  });
  const engine = new RoundEngine({
    store: new MemoryStore(),
    hub: m.hub,
    config: engineConfig({ quorum: { kind: 'count', value: 2 }, minSites: 2, deadlineSeconds: 30 }),
    logger: captureLogger('silent').logger,
    clock,
  });
  await engine.init(initialCheckpoint(DIM - 1));
  const running = engine.runRound();
  await flush();
  assert.equal(seen[0]?.deadline, clock.now() + 30_000);
  m.disconnect('b');
  m.connect('b', quadraticSite(target, { onOffer: (o) => seen.push(o) }));
  const r = await running; // both answered: no need to advance the clock to the deadline
  assert.equal(r.accepted, 2);
  assert.equal(seen.length, 2);
  assert.equal(seen[1]?.round, 0);
  assert.equal(clock.pending(), 0);
});

test('a round already running refuses a second runRound, and close() ends the round in flight', async () => {
  const m = createMemoryHub();
  m.connect('a', () => null);
  const engine = new RoundEngine({
    store: new MemoryStore(),
    hub: m.hub,
    config: engineConfig({ quorum: { kind: 'count', value: 1 }, deadlineSeconds: 30 }),
    logger: captureLogger('silent').logger,
  });
  await engine.init(initialCheckpoint(DIM - 1));
  const running = engine.runRound();
  await flush();
  await assert.rejects(engine.runRound(), (e) => isFedmetaError(e, ErrorCode.ROUND_IN_FLIGHT));
  engine.close();
  await assert.rejects(running, (e) => isFedmetaError(e, ErrorCode.NOT_READY));
  assert.equal(engine.ready, false);
});
