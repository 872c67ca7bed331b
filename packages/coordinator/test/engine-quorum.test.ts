import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isFedmetaError } from '@fedmeta/shared';
import { RoundEngine } from '../src/engine/round-engine.js';
import { createMemoryHub } from '../src/engine/memory-hub.js';
import type { MemoryHub } from '../src/engine/memory-hub.js';
import { quorumFor, sitesToStart, validateEngineConfig } from '../src/engine/config.js';
import type { QuorumRule, RoundsConfig } from '../src/engine/config.js';
import { digestState } from '../src/engine/digest.js';
import type { Checkpoint } from '../src/state/types.js';
import { MemoryStore } from './helpers/memory-store.js';
import { captureLogger, delay, engineConfig, flush, initialCheckpoint, quadraticUpdate, vec } from './helpers/engine-fixtures.js';

const DIM = 6;
const target = vec(DIM, (j) => j);

/** `n` sites of which only the first `answering` to receive each attempt's offer send an update. */
function federation(n: number, answering: () => number): MemoryHub {
  const m = createMemoryHub();
  // Each attempt of a round has its own deadline, so the deadline tells attempts apart.
  const answered = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    m.connect(`site-${String(i).padStart(2, '0')}`, (offer) => {
      const k = answered.get(offer.deadline) ?? 0;
      if (k >= answering()) return null;
      answered.set(offer.deadline, k + 1);
      return quadraticUpdate(offer, target);
    });
  }
  return m;
}

function engineFor(m: MemoryHub, rounds: Partial<RoundsConfig>, store = new MemoryStore()): RoundEngine {
  return new RoundEngine({
    store,
    hub: m.hub,
    config: engineConfig({ deadlineSeconds: 0.25, maxConsecutiveAborts: 1, ...rounds }),
    logger: captureLogger('silent').logger,
  });
}

test('a fractional quorum is a fraction of the sites sampled in that round, rounded up', async () => {
  assert.equal(quorumFor({ kind: 'fraction', value: 0.5 }, 3), 2);
  assert.equal(quorumFor({ kind: 'fraction', value: 0.5 }, 10), 5);
  assert.equal(quorumFor({ kind: 'fraction', value: 0.01 }, 3), 1, 'at least one update');
  assert.equal(quorumFor({ kind: 'count', value: 4 }, 100), 4, 'a count is absolute');

  // Six sites online, half sampled: three are asked, so half of them means two updates (not half of minSites).
  const half: Partial<RoundsConfig> = { sampleFraction: 0.5, minSites: 2, quorum: { kind: 'fraction', value: 0.5 } };
  let answering = 2;
  const m = federation(6, () => answering);
  const engine = engineFor(m, half);
  await engine.init(initialCheckpoint(DIM - 1));
  const ok = await engine.runRound();
  assert.equal(ok.status, 'committed');
  assert.equal(ok.sampled.length, 3);
  assert.equal(ok.accepted, 2);

  answering = 1;
  await assert.rejects(engine.runRound(), (e) => isFedmetaError(e, ErrorCode.NO_QUORUM));
  const aborted = engine.status().lastRound;
  assert.equal(aborted?.status, 'aborted');
  assert.equal(aborted?.sampled.length, 3);
  assert.match(aborted?.reason ?? '', /1 of 3 sampled sites .* the quorum is 2/);

  // With every site sampled the same fraction asks for more: ten sampled, five needed.
  const all = federation(10, () => answering);
  const wide = engineFor(all, { sampleFraction: 1, minSites: 2, quorum: { kind: 'fraction', value: 0.5 } });
  await wide.init(initialCheckpoint(DIM - 1));
  answering = 4;
  await assert.rejects(wide.runRound(), (e) => isFedmetaError(e, ErrorCode.NO_QUORUM));
  assert.match(wide.status().lastRound?.reason ?? '', /4 of 10 sampled sites .* the quorum is 5/);
  answering = 5;
  const r = await wide.runRound();
  assert.equal(r.status, 'committed');
  assert.equal(r.accepted, 5);
});

test('a count quorum is absolute, and a bare number still means a count', async () => {
  const m = federation(8, () => 3);
  const engine = engineFor(m, { sampleFraction: 1, minSites: 2, quorum: 3 });
  await engine.init(initialCheckpoint(DIM - 1));
  const r = await engine.runRound();
  assert.equal(r.status, 'committed');
  assert.equal(r.sampled.length, 8);
  assert.equal(r.accepted, 3);
  assert.deepEqual(validateEngineConfig(engineConfig({ quorum: 3, minSites: 3 })).rounds.quorum, { kind: 'count', value: 3 });
});

test('a round starts once minSites sites are online, and at least a count quorum', async () => {
  const fraction: QuorumRule = { kind: 'fraction', value: 0.5 };
  assert.equal(sitesToStart({ minSites: 3, quorum: fraction }), 3);
  assert.equal(sitesToStart({ minSites: 2, quorum: { kind: 'count', value: 4 } }), 4);
  assert.equal(sitesToStart({ minSites: 5, quorum: { kind: 'count', value: 4 } }), 5);

  const m = federation(0, () => 10);
  const engine = engineFor(m, { minSites: 3, quorum: fraction, deadlineSeconds: 2 });
  await engine.init(initialCheckpoint(DIM - 1));
  assert.equal(engine.sitesToStart, 3);
  const running = engine.runRound();
  const site = (offer: Parameters<typeof quadraticUpdate>[0]) => quadraticUpdate(offer, target);
  m.connect('a', site);
  m.connect('b', site);
  await delay(60);
  assert.equal(engine.status().roundInFlight?.phase, 'waiting-for-sites', 'two sites are not enough to start');
  m.connect('c', site);
  const r = await running;
  assert.equal(r.status, 'committed');
  assert.deepEqual(r.sampled, ['a', 'b', 'c']);
});

test('a fractional quorum is checked against the aggregator on the smallest round it allows', () => {
  const trimmed = { aggregator: { kind: 'trimmed-mean' as const, trim: 1 } };
  // Half of four sampled sites is two updates; a trimmed mean that drops one from each end needs three.
  assert.throws(
    () => validateEngineConfig(engineConfig({ minSites: 4, quorum: { kind: 'fraction', value: 0.5 } }, trimmed)),
    (e) => isFedmetaError(e, ErrorCode.CONFIG) && /rounds\.quorum 0\.5 of 4 sampled sites \(2\) is too small/.test(e.message),
  );
  validateEngineConfig(engineConfig({ minSites: 6, quorum: { kind: 'fraction', value: 0.5 } }, trimmed));
  for (const value of [0, -0.5, 1.5, Number.NaN]) {
    assert.throws(() => validateEngineConfig(engineConfig({ quorum: { kind: 'fraction', value } })), (e) => isFedmetaError(e, ErrorCode.CONFIG) && /rounds\.quorum\.value/.test(e.message));
  }
  assert.throws(() => validateEngineConfig(engineConfig({ quorum: { kind: 'most' } as unknown as QuorumRule })), (e) => isFedmetaError(e, ErrorCode.CONFIG));
});

test('refusals at the transport are counted in the open round\'s record, or between rounds in the next one', async () => {
  const m = createMemoryHub();
  let hold: (() => void) | null = null;
  m.connect('a', async (offer) => {
    // Answers only once the test has recorded refusals during the round.
    await new Promise<void>((r) => (hold = r));
    return quadraticUpdate(offer, target);
  });
  const engine = engineFor(m, { deadlineSeconds: 5 });
  const events: unknown[] = [];
  engine.on('update-rejected', (e) => events.push(e));
  await engine.init(initialCheckpoint(DIM - 1));

  engine.recordRejection('a', null, ErrorCode.DECODE);
  const running = engine.runRound();
  while (hold === null) await flush(1);
  engine.recordRejection('a', 0, ErrorCode.OVERSIZE);
  engine.recordRejection('a', 0, ErrorCode.NON_FINITE);
  engine.recordRejection('a', 0, ErrorCode.NON_FINITE);
  (hold as () => void)();
  const r = await running;
  assert.equal(r.status, 'committed');
  assert.deepEqual(r.rejected, { [ErrorCode.DECODE]: 1, [ErrorCode.OVERSIZE]: 1, [ErrorCode.NON_FINITE]: 2 });
  assert.deepEqual(events[0], { round: null, site: 'a', code: ErrorCode.DECODE });
  assert.deepEqual(events[1], { round: 0, site: 'a', code: ErrorCode.OVERSIZE });
  assert.equal(events.length, 4);
});

test('the state digest is that of the exact parameters and optimizer state held, and survives a restart', async () => {
  const store = new MemoryStore();
  const m = federation(2, () => 2);
  const config = engineConfig({ minSites: 2, quorum: { kind: 'count', value: 2 } }, { optimizer: { kind: 'adam', lr: 0.1 } });
  const first = new RoundEngine({ store, hub: m.hub, config, logger: captureLogger('silent').logger });
  assert.equal(first.stateDigest(), null, 'nothing to show before the state is restored');
  await first.init(initialCheckpoint(DIM - 1));
  const commits: { aggregateMs: number; commitMs: number }[] = [];
  first.on('round-committed', (e) => commits.push(e.timings));
  await first.runRounds(2);
  assert.ok(commits.every((c) => c.aggregateMs >= 0 && c.commitMs >= 0));
  const cp = store.latest() as Checkpoint;
  const digest = first.stateDigest();
  assert.deepEqual(digest, digestState(cp.version, cp.params, cp.optimizer));
  assert.equal(digest?.version, 2);
  first.close();

  const second = new RoundEngine({ store, hub: createMemoryHub().hub, config, logger: captureLogger('silent').logger });
  await second.init();
  assert.deepEqual(second.stateDigest(), digest);
  const changed = { ...cp.optimizer, buffers: { ...cp.optimizer.buffers, m: (cp.optimizer.buffers['m'] as Float64Array).map((x, i) => (i === 0 ? x + 1e-12 : x)) } };
  assert.notEqual(digestState(cp.version, cp.params, changed).optimizer, digest?.optimizer, 'one changed value changes the digest');
});
