import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isFedmetaError } from '@fedmeta/shared';
import { RoundEngine } from '../src/engine/round-engine.js';
import { createMemoryHub } from '../src/engine/memory-hub.js';
import { checkUpdateContent } from '../src/engine/check-update.js';
import type { MemorySite } from '../src/engine/memory-hub.js';
import type { PlainSiteUpdate, SiteUpdate, UpdateAck } from '../src/engine/hub.js';
import { MemoryStore } from './helpers/memory-store.js';
import { captureLogger, flush, engineConfig, initialCheckpoint, quadraticUpdate, vec } from './helpers/engine-fixtures.js';

const DIM = 8;
const target = vec(DIM, (i) => i / 4);

test('an update before the state is restored is refused with NOT_READY and acknowledged as such', async () => {
  const m = createMemoryHub();
  const acks: UpdateAck[] = [];
  m.connect('a', () => null, { onAck: (a) => acks.push(a) });
  const engine = new RoundEngine({ store: new MemoryStore(), hub: m.hub, config: engineConfig(), logger: captureLogger('silent').logger });
  assert.equal(engine.ready, false);
  const update: SiteUpdate = {
    round: 0,
    version: 0,
    counts: { episodes: 1, examples: 10 },
    metrics: { supportLoss: 1, queryLoss: 1 },
    update: new Float32Array(DIM),
  };
  const res = engine.submit('a', update);
  assert.equal(res.accepted, false);
  assert.equal(res.error?.code, ErrorCode.NOT_READY);
  await flush();
  assert.deepEqual(acks.map((a) => [a.accepted, a.error?.code]), [[false, ErrorCode.NOT_READY]]);
  await assert.rejects(engine.runRound(), (e) => isFedmetaError(e, ErrorCode.NOT_READY));
});

test('stale, future, duplicate, wrong-length, NaN, infinite and unsampled updates are refused with codes, counted, and the round commits', async () => {
  const m = createMemoryHub();
  const { logger, lines } = captureLogger('debug');
  const acks = new Map<string, UpdateAck[]>();
  const onAck = (name: string) => (a: UpdateAck) => acks.set(name, [...(acks.get(name) ?? []), a]);
  let messy = false;
  let openGate!: () => void;
  const gate = new Promise<void>((r) => (openGate = r));
  const sites = new Map<string, MemorySite>();
  const connect = (name: string, misbehave: (u: PlainSiteUpdate, self: MemorySite) => SiteUpdate | null) => {
    sites.set(
      name,
      m.connect(
        name,
        async (offer) => {
          const good = quadraticUpdate(offer, target);
          if (!messy) return good;
          // The answers wait for the test's signal, so every bad message is judged while the round is open.
          const out = misbehave(good, sites.get(name) as MemorySite);
          await gate;
          return out;
        },
        { onAck: onAck(name) },
      ),
    );
  };
  connect('a-dup', (u, self) => {
    self.sendUpdate(u);
    return u;
  });
  connect('b-short', (u) => ({ ...u, update: u.update.subarray(0, DIM - 1) }));
  connect('c-nan', (u) => {
    u.update[3] = Number.NaN;
    return u;
  });
  connect('d-inf', (u) => {
    u.update[0] = Number.POSITIVE_INFINITY;
    return u;
  });
  connect('e-stale', (u, self) => {
    self.sendUpdate({ ...u, round: u.round - 1, version: u.version - 1 });
    self.sendUpdate({ ...u, round: u.round + 1 });
    return u;
  });
  const engine = new RoundEngine({ store: new MemoryStore(), hub: m.hub, config: engineConfig({ quorum: { kind: 'count', value: 2 }, minSites: 2, deadlineSeconds: 5 }), logger });
  const rejectedEvents: string[] = [];
  engine.on('update-rejected', (e) => rejectedEvents.push(`${e.site}:${e.code}`));
  await engine.init(initialCheckpoint(DIM - 1));
  await engine.runRound(); // a clean round first, so that "a past round" exists
  await flush(); // let its acks land
  acks.clear();

  messy = true;
  const started = new Promise((r) => engine.once('round-started', r));
  const running = engine.runRound();
  await started;
  const intruder = m.connect('intruder', () => null, { onAck: onAck('intruder') });
  intruder.sendUpdate(quadraticUpdate({ round: 1, version: 1, params: new Float32Array(DIM), task: { episodes: 1 } } as never, target));
  await flush();
  openGate();
  const t0 = Date.now();
  const r = await running;
  // Every sampled site answered (some with refused updates), so the round did not wait for its deadline.
  assert.ok(Date.now() - t0 < 4000);
  assert.equal(r.status, 'committed');
  assert.equal(r.round, 1);
  assert.equal(r.accepted, 2);
  assert.deepEqual(r.sites.map((s) => s.siteId), ['a-dup', 'e-stale']);
  assert.deepEqual(r.rejected, {
    [ErrorCode.DUPLICATE_UPDATE]: 1,
    [ErrorCode.WRONG_LENGTH]: 1,
    [ErrorCode.NON_FINITE]: 2,
    [ErrorCode.STALE_ROUND]: 2,
    [ErrorCode.UNKNOWN_SITE]: 1,
  });
  assert.equal(rejectedEvents.length, 7);
  await flush();
  const codes = (name: string) => (acks.get(name) ?? []).map((a) => (a.accepted ? 'ok' : a.error?.code));
  assert.deepEqual(codes('a-dup'), ['ok', ErrorCode.DUPLICATE_UPDATE]);
  assert.deepEqual(codes('b-short'), [ErrorCode.WRONG_LENGTH]);
  assert.deepEqual(codes('c-nan'), [ErrorCode.NON_FINITE]);
  assert.deepEqual(codes('d-inf'), [ErrorCode.NON_FINITE]);
  assert.deepEqual(codes('e-stale'), [ErrorCode.STALE_ROUND, ErrorCode.STALE_ROUND, 'ok']);
  assert.deepEqual(codes('intruder'), [ErrorCode.UNKNOWN_SITE]);
  assert.ok((acks.get('b-short')?.[0]?.error?.message ?? '').includes('7 values but the model has 8'));

  // Each refusal is logged once on a child logger that names the round and the site, with its code.
  const refused = lines().filter((l) => l['msg'] === 'update rejected' && l['round'] === 1);
  assert.equal(refused.length, 7);
  assert.ok(refused.every((l) => typeof l['site'] === 'string' && typeof l['code'] === 'string' && l['attempt'] === 0));
});

test('an update arriving after its round closed is refused as stale and counted in the next round', async () => {
  const m = createMemoryHub();
  const site = m.connect('a', (offer) => quadraticUpdate(offer, target));
  const engine = new RoundEngine({ store: new MemoryStore(), hub: m.hub, config: engineConfig(), logger: captureLogger('silent').logger });
  await engine.init(initialCheckpoint(DIM - 1));
  await engine.runRound();
  const late = quadraticUpdate({ round: 0, version: 0, params: new Float32Array(DIM), task: { episodes: 1 } } as never, target);
  site.sendUpdate(late);
  await flush();
  const r = await engine.runRound();
  assert.deepEqual(r.rejected, { [ErrorCode.STALE_ROUND]: 1 });
  assert.equal(r.accepted, 1);
});

test('content checks: counts, losses and scores that the maths relies on', () => {
  const good: SiteUpdate = {
    round: 0,
    version: 0,
    counts: { episodes: 2, examples: 20 },
    metrics: { supportLoss: 0.5, queryLoss: 0.4, valF1: 0.8 },
    update: new Float32Array(4),
  };
  assert.equal(checkUpdateContent(good, 4), null);
  const code = (u: SiteUpdate) => checkUpdateContent(u, 4)?.code;
  assert.equal(code({ ...good, counts: { episodes: 2, examples: 0 } }), ErrorCode.SCHEMA);
  assert.equal(code({ ...good, counts: { episodes: 1.5, examples: 3 } }), ErrorCode.SCHEMA);
  assert.equal(code({ ...good, metrics: { supportLoss: 0.5, queryLoss: 0.4, valF1: 1.5 } }), ErrorCode.SCHEMA);
  assert.equal(code({ ...good, metrics: { supportLoss: Number.NaN, queryLoss: 0.4 } }), ErrorCode.NON_FINITE);
  assert.equal(code({ ...good, update: new Float64Array(4) as unknown as Float32Array }), ErrorCode.SCHEMA);
  assert.equal(code({ ...good, update: new Float32Array([0, Number.NEGATIVE_INFINITY, 0, 0]) }), ErrorCode.NON_FINITE);
  assert.equal(code({ ...good, update: new Float32Array(5) }), ErrorCode.WRONG_LENGTH);
  // Messages give counts, never the offending values.
  const msg = checkUpdateContent({ ...good, update: new Float32Array([1.2345, Number.NaN, 6.789, 0]) }, 4)?.message ?? '';
  assert.match(msg, /1 of 4 values/);
  assert.doesNotMatch(msg, /1\.2345|6\.789/);
});
