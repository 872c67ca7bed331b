import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { ErrorCode } from '@fedmeta/shared';
import type { EngineEvents } from '../src/engine/events.js';
import type { EngineStatus } from '../src/engine/types.js';
import { createCoordinatorMetrics } from '../src/metrics/coordinator-metrics.js';
import type { Checkpoint, RoundRecord } from '../src/state/types.js';
import { addSite } from '../src/state/registry.js';
import { initialCheckpoint } from './helpers/engine-fixtures.js';
import { ADMIN_TOKEN, connect, hello, onOffers, quadraticUpdate, sendUpdate, startTest, waitFor } from './transport-fixtures.js';

/** `name{labels} value` lines of the exposition text, keyed by name and labels as written. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

function sample(m: Map<string, number>, key: string): number {
  const v = m.get(key);
  assert.ok(v !== undefined, `the metrics have ${key}`);
  return v;
}

test('GET /metrics needs the admin token and counts a real round: commits, accepted and rejected updates by code, bytes', async (t) => {
  const { c } = await startTest(t);
  const timed: boolean[] = [];
  c.engine.on('round-committed', (e) => timed.push((e as { timings?: unknown }).timings !== undefined));
  for (const name of ['s1', 's2', 's3']) {
    const { token } = await addSite(c.store, name);
    const { socket } = await connect(c.url, hello(name, { kind: 'enroll', token }), t);
    onOffers(socket, (offer, params) => {
      void (async () => {
        // s1 first sends a vector of the wrong length, which the transport refuses with its code.
        if (name === 's1') assert.equal((await sendUpdate(socket, { ...quadraticUpdate(offer, params, 1), update: new Float32Array(2) })).accepted, false);
        assert.equal((await sendUpdate(socket, quadraticUpdate(offer, params, 1))).accepted, true);
      })();
    });
  }
  await waitFor(() => c.hub.online().length === 3, 4000, 'sites online');

  for (const authorization of [undefined, 'Bearer wrong-token-of-enough-length']) {
    const denied = await fetch(`${c.url}/metrics`, authorization ? { headers: { authorization } } : {});
    assert.equal(denied.status, 401);
    assert.equal(((await denied.json()) as { error: { code: string } }).error.code, ErrorCode.UNAUTHENTICATED);
  }

  const record = await c.engine.runRound();
  assert.equal(record.status, 'committed');
  const res = await fetch(`${c.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const m = samples(text);
  assert.equal(sample(m, 'fedmeta_rounds_committed_total'), 1);
  assert.equal(sample(m, 'fedmeta_rounds_aborted_total'), 0);
  assert.equal(sample(m, 'fedmeta_updates_accepted_total'), 3);
  assert.equal(sample(m, `fedmeta_updates_rejected_total{code="${ErrorCode.WRONG_LENGTH}"}`), 1);
  assert.equal(sample(m, `fedmeta_updates_rejected_total{code="${ErrorCode.STALE_ROUND}"}`), 0, 'known codes start at zero');
  assert.equal(sample(m, 'fedmeta_update_examples_total'), 150);
  assert.equal(sample(m, 'fedmeta_sites_connected'), 3);
  assert.equal(sample(m, 'fedmeta_model_version'), 1);
  assert.equal(sample(m, 'fedmeta_released_version'), -1);
  assert.equal(sample(m, 'fedmeta_round_in_flight'), 0);
  assert.equal(sample(m, 'fedmeta_privacy_epsilon_spent'), 0);
  assert.equal(sample(m, 'fedmeta_round_duration_seconds_count{status="committed"}'), 1);
  // Aggregation and commit times come with the engine's commit event (see the unit test below).
  assert.equal(sample(m, 'fedmeta_aggregation_seconds_count'), timed.filter(Boolean).length);
  // Three updates of 8 float32 values each, msgpack-framed, at least; plus the handshakes.
  assert.ok(sample(m, 'fedmeta_received_bytes_total') > 3 * 8 * 4, 'bytes received are counted');
  assert.ok(sample(m, 'fedmeta_sent_bytes_total') > 3 * 8 * 4, 'bytes sent are counted');
  assert.ok(m.has('process_cpu_user_seconds_total'), 'process metrics are there');
  assert.ok(!text.includes('s1') && !text.includes('s2'), 'no site name in any label');

  // Releases move the gauge at once.
  await c.engine.release(1);
  assert.equal(sample(samples(await c.metrics.render()), 'fedmeta_released_version'), 1);
});

test('without an admin token /metrics is off', async (t) => {
  const { c } = await startTest(t, { flags: { adminToken: undefined } });
  const res = await fetch(`${c.url}/metrics`, { headers: { authorization: 'Bearer anything-at-all-here' } });
  assert.equal(res.status, 403);
});

function record(status: RoundRecord['status'], seconds: number, extra: Partial<RoundRecord> = {}): RoundRecord {
  const start = Date.parse('2024-05-01T10:00:00.000Z');
  return {
    round: 0,
    fromVersion: 0,
    status,
    startedAt: new Date(start).toISOString(),
    endedAt: new Date(start + seconds * 1000).toISOString(),
    sampled: ['a', 'b'],
    accepted: status === 'committed' ? 2 : 0,
    rejected: {},
    sites: [],
    ...extra,
  };
}

test('aborted rounds, round durations, aggregation time, loss and the privacy budget from the checkpoint', async () => {
  const engine = new EventEmitter<EngineEvents>();
  let cp: Checkpoint = initialCheckpoint();
  const status: EngineStatus = { ready: true, version: 4, nextRound: 5, roundInFlight: null, sitesOnline: [], lastRound: null, released: null, releases: [] };
  const metrics = createCoordinatorMetrics({
    engine: Object.assign(engine, { status: () => status, checkpoint: () => cp }),
    online: () => ['a'],
    processMetrics: false,
  });
  engine.emit('round-aborted', { record: record('aborted', 12, { reason: 'no quorum' }), attempt: 0 });
  engine.emit('round-aborted', { record: record('aborted', 700), attempt: 1 });
  const committed = { record: record('committed', 3, { meanQueryLoss: 0.25, meanValF1: 0.8 }), version: 5, timings: { aggregateMs: 4, commitMs: 20 } };
  engine.emit('round-committed', committed as EngineEvents['round-committed'][0]);
  let m = samples(await metrics.render());
  assert.equal(sample(m, 'fedmeta_rounds_aborted_total'), 2);
  assert.equal(sample(m, 'fedmeta_rounds_committed_total'), 1);
  assert.equal(sample(m, 'fedmeta_round_duration_seconds_count{status="aborted"}'), 2);
  assert.equal(sample(m, 'fedmeta_round_duration_seconds_sum{status="aborted"}'), 712);
  assert.equal(sample(m, 'fedmeta_round_duration_seconds_bucket{le="600",status="aborted"}'), 1);
  assert.equal(sample(m, 'fedmeta_round_duration_seconds_sum{status="committed"}'), 3);
  assert.equal(sample(m, 'fedmeta_aggregation_seconds_sum'), 0.004);
  assert.equal(sample(m, 'fedmeta_aggregation_seconds_bucket{le="0.005"}'), 1);
  assert.equal(sample(m, 'fedmeta_commit_seconds_sum'), 0.02);
  assert.equal(sample(m, 'fedmeta_round_mean_query_loss'), 0.25);
  assert.equal(sample(m, 'fedmeta_round_mean_val_f1'), 0.8);
  assert.equal(sample(m, 'fedmeta_model_version'), 4);
  assert.equal(sample(m, 'fedmeta_sites_connected'), 1);
  assert.equal(sample(m, 'fedmeta_privacy_epsilon_spent'), 0);
  assert.ok(!m.has('process_cpu_user_seconds_total'));

  // Once differential privacy keeps its accountant in the checkpoint, the gauges read it.
  cp = { ...cp, extensions: { privacy: { epsilon: 1.75, delta: 1e-5, budget: 8, accountant: { orders: [2, 4] } } } };
  m = samples(await metrics.render());
  assert.equal(sample(m, 'fedmeta_privacy_epsilon_spent'), 1.75);
  assert.equal(sample(m, 'fedmeta_privacy_epsilon_budget'), 8);

  // After close() events no longer count.
  metrics.close();
  engine.emit('round-aborted', { record: record('aborted', 1), attempt: 2 });
  assert.equal(sample(samples(await metrics.render()), 'fedmeta_rounds_aborted_total'), 2);
  assert.equal(engine.listenerCount('round-aborted'), 0);
});
