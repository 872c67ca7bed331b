import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Packr } from 'msgpackr';
import { ErrorCode } from '@fedmeta/shared';
import type { RoundOfferMessage } from '@fedmeta/shared';
import { addSite } from '../src/state/registry.js';
import type { RunningCoordinator } from '../src/serve.js';
import { connect, hello, onOffers, quadraticUpdate, sendChunked, sendUpdate, startTest, waitFor } from './transport-fixtures.js';
import type { SiteSocket } from './transport-fixtures.js';

type Handler = (socket: SiteSocket, offer: RoundOfferMessage, params: Float32Array) => Promise<void> | void;

async function joinSites(
  t: { after: (fn: () => void) => void },
  c: RunningCoordinator,
  names: string[],
  handler: (name: string) => Handler,
): Promise<Map<string, SiteSocket>> {
  const out = new Map<string, SiteSocket>();
  for (const name of names) {
    const { token } = await addSite(c.store, name);
    const { socket } = await connect(c.url, hello(name, { kind: 'enroll', token }), t);
    const h = handler(name);
    onOffers(socket, (offer, params) => void h(socket, offer, params));
    out.set(name, socket);
  }
  await waitFor(() => c.hub.online().length === names.length, 4000, 'sites online');
  return out;
}

const honest = (target: number): Handler => async (socket, offer, params) => {
  const ack = await sendUpdate(socket, quadraticUpdate(offer, params, target));
  assert.equal(ack.accepted, true, ack.error?.message);
};

test('three socket sites send computed updates and the round commits a new version', async (t) => {
  const { c } = await startTest(t);
  await joinSites(t, c, ['s1', 's2', 's3'], (name) => honest(Number(name.slice(1))));
  const before = c.engine.params();
  const record = await c.engine.runRound();
  assert.equal(record.status, 'committed');
  assert.equal(record.accepted, 3);
  assert.deepEqual(record.sampled, ['s1', 's2', 's3']);
  assert.deepEqual(record.rejected, {});
  assert.equal(c.engine.status().version, 1);
  // Equal examples: the mean gradient is 2 (p - 2); sgd with lr 0.5 lands every parameter on 2.
  const after = c.engine.params();
  for (let i = 0; i < after.length; i++) {
    assert.ok(Math.abs((after[i] as number) - 2) < 1e-5, `param ${i}: ${before[i]} -> ${after[i]}`);
  }
  assert.equal(c.store.latest()?.version, 1);
});

/** msgpack bytes of an update that encodeMessage would refuse to produce. */
function rawUpdate(offer: RoundOfferMessage, update: Float32Array): Uint8Array {
  const packr = new Packr({ moreTypes: true, useRecords: false });
  return packr.pack({
    type: 'update',
    round: offer.round,
    version: offer.version,
    counts: { episodes: 1, examples: 10 },
    metrics: { supportLoss: 1, queryLoss: 1 },
    update,
    chunks: 0,
    secagg: null,
    privacy: null,
  });
}

test('stale, duplicate, wrong-length, non-finite and oversize updates are refused with codes and counted; the round goes on', async (t) => {
  const { c, log } = await startTest(t, { flags: { 'rounds.deadlineSeconds': 2, 'rounds.minSites': 3, 'rounds.quorum': 3 } });
  const { maxMessageBytes, maxHttpBufferSize } = c.hub.limits;
  const codes: string[] = [];
  let previous: RoundOfferMessage | null = null;
  let dropped = false;
  const sockets = await joinSites(t, c, ['s1', 's2', 's3', 's4'], (name) => async (socket, offer, params) => {
    if (offer.round === 0) {
      previous = offer;
      await honest(1)(socket, offer, params);
      return;
    }
    const good = quadraticUpdate(offer, params, 1);
    const refuse = async (bytes: Parameters<typeof sendUpdate>[1]) => {
      const ack = await sendUpdate(socket, bytes);
      assert.equal(ack.accepted, false);
      assert.ok(ack.error, 'a refusal carries its error');
      assert.ok(!/\d\.\d{3}/.test(ack.error.message), 'no values in the message');
      codes.push(ack.error.code);
    };
    if (name === 's1') {
      await refuse(quadraticUpdate(previous as RoundOfferMessage, params, 1));
      await honest(1)(socket, offer, params);
      await refuse(good);
    } else if (name === 's2') {
      await refuse({ ...good, update: new Float32Array(3) });
      await honest(1)(socket, offer, params);
    } else if (name === 's3') {
      await refuse(rawUpdate(offer, new Float32Array(params.length).fill(Number.NaN)));
      await refuse(rawUpdate(offer, new Float32Array(params.length).fill(Number.POSITIVE_INFINITY)));
      await honest(1)(socket, offer, params);
    } else {
      await refuse(new Uint8Array(maxMessageBytes + 1));
      // Beyond socket.io's buffer limit the connection itself is cut; the round must finish without this site.
      const gone = new Promise<string>((r) => socket.once('disconnect', r));
      socket.emit('update', new Uint8Array(maxHttpBufferSize + 1024), () => assert.fail('no acknowledgement for a cut connection'));
      await gone;
      dropped = true;
    }
  });
  assert.equal(sockets.size, 4);

  const first = await c.engine.runRound();
  assert.equal(first.status, 'committed');
  assert.equal(first.accepted, 4);

  // s4 is cut off before it answers round 1: the round waits for the deadline and commits with the quorum.
  const second = await c.engine.runRound();
  assert.equal(second.status, 'committed');
  assert.equal(second.accepted, 3);
  assert.ok(dropped, 'the oversize connection was closed');
  assert.equal(c.engine.status().version, 2);

  assert.deepEqual([...codes].sort(), [
    ErrorCode.DUPLICATE_UPDATE,
    ErrorCode.NON_FINITE,
    ErrorCode.NON_FINITE,
    ErrorCode.OVERSIZE,
    ErrorCode.STALE_ROUND,
    ErrorCode.WRONG_LENGTH,
  ].sort());
  // The round's record counts every refusal by reason: those the engine judged (stale, duplicate) and those the
  // transport refused before the engine saw them (wrong length, non-finite, oversize).
  assert.deepEqual(second.rejected, {
    [ErrorCode.STALE_ROUND]: 1,
    [ErrorCode.DUPLICATE_UPDATE]: 1,
    [ErrorCode.WRONG_LENGTH]: 1,
    [ErrorCode.NON_FINITE]: 2,
    [ErrorCode.OVERSIZE]: 1,
  });
  assert.deepEqual(first.rejected, {}, 'nothing was refused in the first round');
  assert.deepEqual(c.store.latest()?.history.at(-1)?.rejected, second.rejected, 'the counts are in the committed record');
  const counts = c.hub.rejectionCounts();
  assert.deepEqual(counts, {
    [ErrorCode.STALE_ROUND]: 1,
    [ErrorCode.DUPLICATE_UPDATE]: 1,
    [ErrorCode.WRONG_LENGTH]: 1,
    [ErrorCode.NON_FINITE]: 2,
    [ErrorCode.OVERSIZE]: 1,
  });

  // Each refusal at the transport is logged under the site's and round's child logger, with the code only.
  const lines = log.lines().filter((l) => l['msg'] === 'message rejected');
  assert.equal(lines.length, 4);
  const allowed = new Set(['level', 'time', 'pid', 'hostname', 'component', 'subsystem', 'site', 'round', 'code', 'msg']);
  for (const l of lines) {
    assert.equal(l['round'], 1);
    assert.ok(typeof l['site'] === 'string' && typeof l['code'] === 'string');
    assert.deepEqual(Object.keys(l).filter((k) => !allowed.has(k)), [], 'nothing but identifiers and the code');
  }
  assert.ok(lines.some((l) => l['site'] === 's2' && l['code'] === ErrorCode.WRONG_LENGTH));
});

test('a model larger than one message travels in chunks both ways', async (t) => {
  const chunkValues = 3;
  const { c } = await startTest(t, { chunkValues });
  assert.equal(c.hub.limits.chunkValues, 3);
  const { token } = await addSite(c.store, 'probe');
  const probe = await connect(c.url, hello('probe', { kind: 'enroll', token }), t);
  assert.equal(probe.welcome.chunkValues, 3, 'the welcome tells a site the chunk size to send its updates at');
  assert.equal(probe.welcome.maxMessageBytes, c.hub.limits.maxMessageBytes);
  probe.socket.disconnect();
  await waitFor(() => c.hub.online().length === 0, 4000, 'the probe gone');
  const offers: { chunks: number; spec: RoundOfferMessage['spec']; params: Float32Array }[] = [];
  const releases: Float32Array[] = [];
  const specs: unknown[] = [];
  const sockets = await joinSites(t, c, ['s1', 's2', 's3'], () => async (socket, offer, params) => {
    offers.push({ chunks: offer.chunks, spec: offer.spec, params });
    const acks = await sendChunked(socket, quadraticUpdate(offer, params, -1), chunkValues);
    assert.equal(acks.length, 4, 'header and three chunks');
    assert.ok(acks.every((a) => a.accepted), JSON.stringify(acks.map((a) => a.error)));
    assert.deepEqual(acks.slice(1).map((a) => a.chunk), [0, 1, 2]);
  });
  const start = c.engine.params();
  const record = await c.engine.runRound();
  assert.equal(record.status, 'committed');
  assert.equal(record.accepted, 3);
  assert.equal(offers.length, 3);
  for (const o of offers) {
    assert.equal(o.chunks, 3);
    assert.deepEqual(o.spec, c.engine.checkpoint()?.spec, 'the offer names the model');
    assert.deepEqual(o.params, start, 'the reassembled offer is the checkpoint, byte for byte');
  }
  assert.ok(c.engine.params().every((x) => Math.abs(x + 1) < 1e-5));

  // A release reaches every site in chunks too, and reassembles to the released version's parameters.
  for (const s of sockets.values()) {
    let assembled: Float32Array | null = null;
    let parts: Float32Array[] = [];
    s.on('release', async (payload) => {
      const { decodeMessage } = await import('@fedmeta/shared');
      const m = decodeMessage(payload, { maxBytes: 1 << 20 });
      if (m.type === 'release') specs.push(m.spec);
      parts = [];
    });
    s.on('params-chunk', async (payload) => {
      const { decodeMessage } = await import('@fedmeta/shared');
      const m = decodeMessage(payload, { maxBytes: 1 << 20 });
      if (m.type !== 'params-chunk' || m.version !== 1) return;
      parts[m.index] = m.values;
      if (parts.filter(Boolean).length === m.count) {
        assembled = new Float32Array(parts.flatMap((p) => [...p]));
        releases.push(assembled);
      }
    });
  }
  assert.equal(await c.engine.release(1), 1);
  await waitFor(() => releases.length === 3, 4000, 'releases');
  for (const r of releases) assert.deepEqual(r, c.engine.params());
  assert.deepEqual(specs, [1, 2, 3].map(() => c.engine.checkpoint()?.spec), 'a release names its model too');
});

test('a site that floods the coordinator is rate-limited and stays connected', async (t) => {
  const { c } = await startTest(t, { flags: { 'server.perConnectionMessagesPerSecond': 1 } });
  const [socket] = [...(await joinSites(t, c, ['s1'], () => () => undefined)).values()] as [SiteSocket];
  const results = await Promise.all(Array.from({ length: 6 }, () => sendUpdate(socket, new Uint8Array([0xc1]))));
  const codes = results.map((a) => a.error?.code);
  assert.ok(codes.includes(ErrorCode.RATE_LIMITED), codes.join(','));
  assert.ok(codes.includes(ErrorCode.SCHEMA), 'messages within the rate are judged');
  assert.ok(socket.connected);
  assert.ok((c.hub.rejectionCounts()[ErrorCode.RATE_LIMITED] ?? 0) >= 1);
});
