import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isFedmetaError } from '@fedmeta/shared';
import { RoundEngine } from '../src/engine/round-engine.js';
import { createMemoryHub } from '../src/engine/memory-hub.js';
import { pickBestVersion } from '../src/engine/records.js';
import type { RoundRecord } from '../src/state/types.js';
import { MemoryStore } from './helpers/memory-store.js';
import { captureLogger, flush, engineConfig, initialCheckpoint, quadraticSite, vec } from './helpers/engine-fixtures.js';

const DIM = 8;

/** Sites whose validation F1 peaks on version 2 while their loss keeps falling: the last version is not the best. */
async function federation(opts: { reportF1: boolean; store?: MemoryStore; delayMs?: number }) {
  const m = createMemoryHub();
  const releases: number[] = [];
  const valF1 = opts.reportF1 ? (o: { version: number }) => 0.9 - 0.1 * Math.abs(o.version - 2) : undefined;
  for (const name of ['a', 'b', 'c']) {
    m.connect(name, quadraticSite(vec(DIM, () => 1), { valF1, delayMs: opts.delayMs ?? 0 }), {
      onRelease: (v) => name === 'a' && releases.push(v),
    });
  }
  const store = opts.store ?? new MemoryStore();
  const engine = new RoundEngine({ store, hub: m.hub, config: engineConfig({ quorum: { kind: 'count', value: 2 }, minSites: 2 }), logger: captureLogger('silent').logger });
  await engine.init(initialCheckpoint(DIM - 1));
  return { engine, store, releases };
}

test('release by number, release --best by the sites\' validation F1, and rollback, each broadcast to the sites', async () => {
  const { engine, store, releases } = await federation({ reportF1: true });
  await assert.rejects(engine.release('best'), (e) => isFedmetaError(e, ErrorCode.PRECONDITION));
  await engine.runRounds(5);
  assert.equal(engine.status().version, 5);

  assert.equal(await engine.release('best'), 2, 'the version the sites scored best, not the last one');
  assert.equal(await engine.release(4), 4);
  assert.deepEqual(engine.status().releases, [2, 4]);
  assert.equal(engine.status().released, 4);
  assert.equal(await engine.rollback(), 2);
  assert.equal(engine.status().released, 2);
  await assert.rejects(engine.rollback(), (e) => isFedmetaError(e, ErrorCode.PRECONDITION) && /only release/.test(e.message));
  await assert.rejects(engine.release(99), (e) => isFedmetaError(e, ErrorCode.UNKNOWN_VERSION));
  await assert.rejects(engine.release(-1), (e) => isFedmetaError(e, ErrorCode.UNKNOWN_VERSION));
  store.prune(1);
  await assert.rejects(engine.release(1), (e) => isFedmetaError(e, ErrorCode.UNKNOWN_VERSION) && /kept versions are 0, 2, 3, 4, 5/.test(e.message));
  await flush();
  assert.deepEqual(releases, [2, 4, 2]);

  // The release stack is part of the committed state: a restarted coordinator knows it.
  const again = new RoundEngine({ store, hub: createMemoryHub().hub, config: engineConfig({ quorum: { kind: 'count', value: 2 }, minSites: 2 }), logger: captureLogger('silent').logger });
  await again.init();
  assert.equal(again.status().released, 2);
  assert.deepEqual(again.status().releases, [2]);
});

test('without F1 reports, --best picks the lowest query loss, which scores the version a round started from', async () => {
  const { engine } = await federation({ reportF1: false });
  await engine.runRounds(4);
  // The loss falls every round; the newest version (4) has not been measured yet, so 3 is the best known.
  assert.equal(await engine.release('best'), 3);
});

test('a release while a round is in flight is kept by the round\'s commit', async () => {
  const { engine, store } = await federation({ reportF1: true, delayMs: 40 });
  await engine.runRound();
  const running = engine.runRound();
  await flush();
  assert.equal(await engine.release(1), 1);
  await running;
  const latest = store.latest();
  assert.equal(latest?.version, 2);
  assert.deepEqual(latest?.released, [1]);
});

test('pickBestVersion: F1 first, ties to the newer version, only kept versions, aborted rounds ignored', () => {
  const rec = (fromVersion: number, extra: Partial<RoundRecord>): RoundRecord => ({
    round: fromVersion,
    fromVersion,
    status: 'committed',
    startedAt: '',
    endedAt: '',
    sampled: [],
    accepted: 1,
    rejected: {},
    sites: [],
    ...extra,
  });
  const all = new Set([0, 1, 2, 3, 4]);
  const h = [rec(0, { meanValF1: 0.5, meanQueryLoss: 1 }), rec(1, { meanValF1: 0.7, meanQueryLoss: 0.9 }), rec(2, { meanValF1: 0.7, meanQueryLoss: 0.2 }), rec(3, { meanValF1: 0.95, status: 'aborted' })];
  assert.equal(pickBestVersion(h, all), 2);
  assert.equal(pickBestVersion(h, new Set([0, 1])), 1);
  assert.equal(pickBestVersion([rec(0, { meanQueryLoss: 0.3 }), rec(1, { meanQueryLoss: 0.1 }), rec(2, { meanQueryLoss: 0.2 })], all), 1);
  assert.equal(pickBestVersion([], all), null);
});
