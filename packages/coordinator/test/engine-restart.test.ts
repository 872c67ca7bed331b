import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '@fedmeta/shared';
import { RoundEngine } from '../src/engine/round-engine.js';
import { createMemoryHub } from '../src/engine/memory-hub.js';
import type { EngineStore, RoundStartedEntry } from '../src/engine/store.js';
import type { Checkpoint, RoundRecord } from '../src/state/types.js';
import { FileStateStore } from '../src/state/file-store.js';
import type { StateStore } from '../src/state/store.js';
import { MemoryStore } from './helpers/memory-store.js';
import { bytesOf, captureLogger, flush, engineConfig, initialCheckpoint, quadraticSite, vec } from './helpers/engine-fixtures.js';

// The real store must fit the engine's view of it as it is.
const storeFitsEngine: (s: StateStore) => EngineStore = (s) => s;
void storeFitsEngine;

const DIM = 16;
const SITES = ['berlin', 'lyon', 'madrid', 'oslo', 'porto'];
const config = engineConfig(
  { sampleFraction: 0.6, minSites: 3, quorum: { kind: 'count', value: 3 }, deadlineSeconds: 2 },
  { optimizer: { kind: 'adam', lr: 0.05 }, seed: 7 },
);

function federation(respond: () => boolean = () => true) {
  const m = createMemoryHub();
  SITES.forEach((name, i) => {
    const site = quadraticSite(vec(DIM, (j) => Math.sin(i + j)), { examples: 50 + 25 * i });
    m.connect(name, (offer) => (respond() ? site(offer) : null));
  });
  return m;
}

function withoutTimes(records: readonly RoundRecord[]): unknown[] {
  return records.map(({ startedAt: _s, endedAt: _e, ...rest }) => rest);
}

function sameOptimizer(a: Checkpoint, b: Checkpoint): void {
  assert.equal(a.optimizer.step, b.optimizer.step);
  assert.deepEqual(Object.keys(a.optimizer.buffers).sort(), ['m', 'v']);
  for (const k of Object.keys(a.optimizer.buffers)) {
    assert.ok(bytesOf(a.optimizer.buffers[k] as Float64Array).equals(bytesOf(b.optimizer.buffers[k] as Float64Array)), `buffer ${k}`);
  }
}

interface StoreKind {
  name: string;
  /** Opens the store of one coordinator life; the same `dir` is the same data. */
  open(dir: string): Promise<{ store: EngineStore; close(): Promise<void> }>;
}

const memoryStores = new Map<string, MemoryStore>();
const kinds: StoreKind[] = [
  {
    name: 'in-memory store',
    open: async (dir) => {
      const store = memoryStores.get(dir) ?? new MemoryStore();
      memoryStores.set(dir, store);
      return { store, close: async () => {} };
    },
  },
  {
    name: 'file store',
    open: async (dir) => {
      const store = new FileStateStore(dir);
      await store.open();
      return { store, close: () => store.close() };
    },
  },
];

for (const kind of kinds) {
  test(`restart (${kind.name}): resumes at the same version with byte-equal state and continues as if never stopped`, async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'fedmeta-engine-'));
    t.after(() => rm(root, { recursive: true, force: true }));
    const logger = captureLogger('silent').logger;

    // Uninterrupted: six rounds in one life.
    const a = await kind.open(join(root, 'a'));
    const straight = new RoundEngine({ store: a.store, hub: federation().hub, config, logger });
    await straight.init(initialCheckpoint(DIM - 1));
    await straight.runRounds(6);
    const expected = straight.checkpoint() as Checkpoint;
    await a.close();

    // Interrupted after three rounds; the next life starts from what the store holds.
    const b1 = await kind.open(join(root, 'b'));
    const first = new RoundEngine({ store: b1.store, hub: federation().hub, config, logger });
    await first.init(initialCheckpoint(DIM - 1));
    await first.runRounds(3);
    const before = first.checkpoint() as Checkpoint;
    first.close();
    await b1.close();

    const b2 = await kind.open(join(root, 'b'));
    const m2 = federation();
    const acks: string[] = [];
    m2.connect('early', () => null, { onAck: (ack) => acks.push(ack.error?.code ?? 'ok') });
    const second = new RoundEngine({ store: b2.store, hub: m2.hub, config, logger });
    assert.equal(second.ready, false);
    const early = second.submit('early', { round: 3, version: 3, counts: { episodes: 1, examples: 1 }, metrics: { supportLoss: 0, queryLoss: 0 }, update: new Float32Array(DIM) });
    assert.equal(early.error?.code, ErrorCode.NOT_READY);
    await flush();
    assert.deepEqual(acks, [ErrorCode.NOT_READY], 'the site is told why');
    m2.disconnect('early');

    const info = await second.init(initialCheckpoint(DIM - 1, 5)); // ignored: the store has a checkpoint
    assert.deepEqual(info, { restored: true, version: 3, nextRound: 3 });
    const restored = second.checkpoint() as Checkpoint;
    assert.ok(bytesOf(restored.params).equals(bytesOf(before.params)));
    sameOptimizer(restored, before);
    assert.deepEqual(restored.history, before.history);

    await second.runRounds(3);
    const after = second.checkpoint() as Checkpoint;
    assert.equal(after.version, 6);
    assert.ok(bytesOf(after.params).equals(bytesOf(expected.params)), 'same parameters as the uninterrupted run');
    sameOptimizer(after, expected);
    // The update refused before the restore finished is counted in the first round after it; the rest is identical.
    assert.deepEqual(after.history[3]?.rejected, { [ErrorCode.NOT_READY]: 1 });
    const history = after.history.map((r, i) => (i === 3 ? { ...r, rejected: {} } : r));
    assert.deepEqual(withoutTimes(history), withoutTimes(expected.history));
    assert.ok(after.history.some((r) => r.sampled.length === 3), 'a fraction of the sites was sampled');
    await b2.close();
  });
}

test('a crash mid-round: the restarted engine re-issues the same round, attempt and sample, and keeps the earlier abort', async () => {
  const store = new MemoryStore();
  const logger = captureLogger('silent').logger;
  const patient = engineConfig({ sampleFraction: 0.6, minSites: 3, quorum: { kind: 'count', value: 3 }, deadlineSeconds: 5 }, { seed: 7 });
  const quick = { ...patient, rounds: { ...patient.rounds, deadlineSeconds: 0.08 } };
  const first = new RoundEngine({ store, hub: federation().hub, config: patient, logger });
  await first.init(initialCheckpoint(DIM - 1));
  await first.runRound();

  // Round 1: every site silent. Attempt 0 aborts; the coordinator dies during attempt 1.
  const silent = new RoundEngine({ store, hub: federation(() => false).hub, config: quick, logger });
  await silent.init();
  let startedAttempt1!: () => void;
  const attempt1 = new Promise<void>((r) => (startedAttempt1 = r));
  silent.on('round-started', (e) => e.attempt === 1 && startedAttempt1());
  const dying = silent.runRound();
  await attempt1;
  silent.close();
  await assert.rejects(dying, (e: Error) => /closed during round 1/.test(e.message));
  const journal = store.journalEntries() as unknown as RoundStartedEntry[];
  const started = journal.filter((e) => e.type === 'round-started');
  assert.deepEqual(started.map((e) => [e.round, e.attempt]), [[1, 0], [1, 1]]);

  const revived = new RoundEngine({ store, hub: federation().hub, config: patient, logger });
  const seen: { attempt: number; sampled: string[] }[] = [];
  revived.on('round-started', (e) => seen.push(e));
  await revived.init();
  const r = await revived.runRound();
  assert.equal(r.round, 1);
  assert.equal(seen[0]?.attempt, 1);
  assert.deepEqual(seen[0]?.sampled, started[1]?.sampled);
  assert.deepEqual(r.sampled, started[1]?.sampled);
  const history = (revived.checkpoint() as Checkpoint).history;
  assert.deepEqual(history.map((h) => [h.round, h.status]), [[0, 'committed'], [1, 'aborted'], [1, 'committed']]);
  assert.equal(store.journalEntries().length, 0, 'a commit spends the journal');
});

test('a failed commit leaves the engine at its last version, and the round runs again', async () => {
  const store = new MemoryStore();
  const engine = new RoundEngine({ store, hub: federation().hub, config, logger: captureLogger('silent').logger });
  await engine.init(initialCheckpoint(DIM - 1));
  const before = engine.params();
  store.failNextCommit = true;
  await assert.rejects(engine.runRound(), /simulated write failure/);
  assert.equal(engine.status().version, 0);
  assert.ok(bytesOf(engine.params()).equals(bytesOf(before)));
  const r = await engine.runRound();
  assert.equal(r.round, 0);
  assert.equal(engine.status().version, 1);
});

test('an empty data directory and no initial checkpoint is a clear configuration error', async () => {
  const engine = new RoundEngine({ store: new MemoryStore(), hub: createMemoryHub().hub, config, logger: captureLogger('silent').logger });
  await assert.rejects(engine.init(), (e: Error & { code?: string }) => e.code === ErrorCode.CONFIG);
});
