import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryHub } from '../src/engine/memory-hub.js';
import type { RoundOffer, SiteUpdate } from '../src/engine/hub.js';
import { flush } from './helpers/engine-fixtures.js';

const offer = (params: Float32Array): RoundOffer => ({
  round: 1,
  version: 1,
  task: { algorithm: 'fomaml', innerSteps: 2, innerLr: 0.1, shots: 3, queryShots: 3, episodes: 1, seed: 9 },
  spec: { inputDim: params.length - 1, hidden: [], activation: 'relu', task: { kind: 'binary' } },
  manifest: [
    { name: 'dense0/kernel', shape: [params.length - 1, 1], dtype: 'float32' },
    { name: 'dense0/bias', shape: [1], dtype: 'float32' },
  ],
  params,
  deadline: 0,
});

const update = (v: Float32Array): SiteUpdate => ({
  round: 1,
  version: 1,
  counts: { episodes: 1, examples: 6 },
  metrics: { supportLoss: 1, queryLoss: 0.5 },
  update: v,
});

test('messages are delivered later, in order, and as copies that share no memory with the sender', async () => {
  const m = createMemoryHub();
  const got: { site: string; update: SiteUpdate }[] = [];
  m.hub.onUpdate((site, u) => got.push({ site, update: u }));
  let received: RoundOffer | null = null;
  const sent = new Float32Array([1, 2, 3]);
  const site = m.connect('a', (o) => {
    received = o;
    o.params[0] = 100; // a site scribbling on its copy
    return update(sent);
  });
  const params = new Float32Array([1, 2, 3]);
  m.hub.sendOffer('a', offer(params));
  assert.equal(received, null, 'not delivered synchronously');
  await flush();
  assert.ok(received);
  assert.deepEqual([...params], [1, 2, 3], "the engine's vector is untouched");
  assert.equal(got.length, 1);
  sent[1] = -1; // the site reuses its buffer after sending
  assert.deepEqual([...(got[0]?.update.update ?? [])], [1, 2, 3]);

  const order: number[] = [];
  m.hub.onUpdate((_s, u) => order.push(u.counts.examples));
  for (let i = 1; i <= 5; i++) site.sendUpdate({ ...update(new Float32Array(3)), counts: { episodes: 1, examples: i } });
  await flush();
  assert.deepEqual(order, [1, 2, 3, 4, 5]);
});

test('presence, sorted online list, reconnects, and messages lost with a closed connection', async () => {
  const m = createMemoryHub();
  const presence: string[] = [];
  m.hub.onPresence((s, on) => presence.push(`${s}:${on ? 'on' : 'off'}`));
  const got: string[] = [];
  m.hub.onUpdate((s) => got.push(s));
  const releases: number[] = [];
  m.connect('zeta', () => null);
  const alpha = m.connect('alpha', () => update(new Float32Array(1)), { onRelease: (v) => releases.push(v) });
  assert.deepEqual(m.hub.online(), ['alpha', 'zeta']);

  // An update in flight when its connection closes is lost, as on a socket.
  alpha.sendUpdate(update(new Float32Array(1)));
  alpha.disconnect();
  assert.equal(alpha.connected, false);
  assert.deepEqual(m.hub.online(), ['zeta']);
  m.hub.sendOffer('alpha', offer(new Float32Array(1))); // to nobody: dropped
  await flush();
  assert.deepEqual(got, []);

  // A second connection under a name replaces the first.
  const z2 = m.connect('zeta', () => null);
  m.hub.broadcastRelease(3);
  await flush();
  assert.deepEqual(presence, ['zeta:on', 'alpha:on', 'alpha:off', 'zeta:off', 'zeta:on']);
  assert.deepEqual(releases, [], 'a disconnected site hears no release');
  assert.equal(z2.connected, true);
});

test('a site whose handler throws stays silent and the error is reported', async () => {
  const errors: string[] = [];
  const m = createMemoryHub({ onSiteError: (site) => errors.push(site) });
  const got: string[] = [];
  m.hub.onUpdate((s) => got.push(s));
  m.connect('broken', () => {
    throw new Error('boom');
  });
  m.hub.sendOffer('broken', offer(new Float32Array(2)));
  await flush();
  assert.deepEqual(errors, ['broken']);
  assert.deepEqual(got, []);
});
