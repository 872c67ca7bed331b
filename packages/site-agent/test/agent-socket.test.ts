import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, builtinSchema, initRuntime, schemaFingerprint } from '@fedmeta/shared';
import type { UpdateChunkMessage } from '@fedmeta/shared';
import { SiteAgent } from '../src/client.js';
import { loadAgentConfig } from '../src/config.js';
import { readModelFile } from '../src/model-file.js';
import { loadSiteData, type SiteData } from '../src/site-data.js';
import { modelPath } from '../src/state.js';
import { FakeCoordinator, SMALL_TASK } from './fake-coordinator.js';
import { captureLogger, delay, siteCsv, tempDir, waitFor, writeText } from './fixtures.js';

const schema = builtinSchema('cicflowmeter');
const fingerprint = schemaFingerprint(schema);
let data: SiteData;
let csvText: string;

before(async () => {
  await initRuntime();
  csvText = siteCsv(20);
  const dir = tempDir({ after: () => undefined });
  data = await loadSiteData({ files: [writeText(dir, 'site.csv', csvText)], schema, seed: 1 });
});

function agentFor(t: { after: (fn: () => void | Promise<void>) => void }, url: string, flags: Record<string, unknown> = {}) {
  const stateDir = tempDir(t);
  const config = loadAgentConfig({
    env: {},
    flags: {
      site: 'branch-1',
      coordinatorUrl: url,
      allowInsecureHttp: true,
      enrollmentToken: 'enroll-token-123',
      stateDir,
      reconnect: { initialDelayMs: 30, maxDelayMs: 120 },
      ackTimeoutMs: 2000,
      ...flags,
    },
  });
  const log = captureLogger();
  const agent = new SiteAgent({ config, schema, schemaFingerprint: fingerprint, data, siteSeed: 42, logger: log.logger });
  t.after(() => agent.stop());
  return { agent, config, log, stateDir };
}

test('an agent enrolls, stores its credential with mode 0600 and reconnects with the credential', async (t) => {
  const coord = new FakeCoordinator({ credential: 'cred-abcdef-0123456789' });
  await coord.start();
  t.after(() => coord.close());
  const { agent, config, log } = agentFor(t, coord.url);
  await agent.start();
  const file = join(config.stateDir, 'credential');
  await waitFor(() => log.text().includes('enrolled'), 5000, 'enrollment');
  assert.equal(readFileSync(file, 'utf8').trim(), 'cred-abcdef-0123456789');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal((coord.handshakes[0] as { auth: { kind: string } }).auth.kind, 'enroll');

  // The coordinator drops the connection on purpose: the agent comes back, now with its credential.
  coord.sockets[0]!.disconnect(true);
  await waitFor(() => coord.handshakes.length >= 2 && agent.connected, 5000, 'reconnection');
  assert.deepEqual((coord.handshakes[1] as { auth: unknown }).auth, { kind: 'credential', credential: 'cred-abcdef-0123456789' });
  assert.ok(!log.text().includes('cred-abcdef'), 'the credential never appears in a log line');
});

test('only the declared fields leave the site: every byte the agent sends decodes to hello and update alone', async (t) => {
  const coord = new FakeCoordinator();
  await coord.start();
  t.after(() => coord.close());
  const { agent, log } = agentFor(t, coord.url);
  await agent.start();
  await waitFor(() => agent.connected, 5000, 'connection');
  coord.offer(7);
  await waitFor(() => coord.updates().length === 1, 20_000, 'the update');

  const hello = coord.handshakes[0] as Record<string, unknown>;
  assert.deepEqual(Object.keys(hello).sort(), ['agentVersion', 'auth', 'protocolVersion', 'schemaFingerprint', 'site', 'type']);
  const u = coord.updates()[0]!;
  assert.deepEqual(Object.keys(u).sort(), ['chunks', 'counts', 'metrics', 'privacy', 'round', 'secagg', 'type', 'update', 'version']);
  assert.deepEqual(Object.keys(u.counts).sort(), ['episodes', 'examples']);
  for (const k of Object.keys(u.metrics)) assert.ok(['supportLoss', 'queryLoss', 'queryAccuracy', 'valF1'].includes(k), k);
  assert.equal(u.round, 7);
  assert.equal(u.update?.length, coord.params.values.length);

  // Search every byte sent for the float32 encoding of every distinctive local feature value (standardised and
  // as read), and the text for identifiers and labels of the flows.
  // Text frames are socket.io packets: the CONNECT carrying the hello, and update events whose payload is binary.
  for (const f of coord.rawFrames) {
    if (typeof f !== 'string') continue;
    if (f.startsWith('0')) assert.deepEqual(JSON.parse(f.slice(1)), hello);
    else assert.match(f, /^\d+-\d*\["update(-chunk)?",\{"_placeholder":true,"num":\d+\}\]$/);
  }
  const sent = Buffer.concat(coord.rawFrames.map((f) => (typeof f === 'string' ? Buffer.from(f) : f)));
  const control = Buffer.alloc(4);
  control.writeFloatLE(u.update![0]!);
  assert.notEqual(sent.indexOf(control), -1, 'the recorded bytes hold the update itself');
  const values = new Set<number>();
  for (const v of data.table.x) if (!Number.isInteger(Math.fround(v))) values.add(Math.fround(v));
  let searched = 0;
  const probe = Buffer.alloc(4);
  for (const v of values) {
    probe.writeFloatLE(v);
    assert.equal(sent.indexOf(probe), -1, 'a local feature value was found in the bytes the agent sent');
    searched++;
  }
  assert.ok(searched > 500, `searched ${searched} distinct feature values`);
  const rows = csvText.trim().split('\n').slice(1).map((l) => l.split(','));
  const texts = new Set<string>();
  for (const r of rows) {
    texts.add(r[1]!); // Flow ID
    texts.add(r[2]!); // Src IP
    texts.add(r[r.length - 2]!); // Label
    for (const f of r.slice(8, -3)) if (f.length >= 6) texts.add(f); // long raw statistics
  }
  const sentText = sent.toString('latin1');
  const logText = log.text();
  for (const s of texts) {
    assert.ok(!sentText.includes(s), 'an identifier, label or raw value was found in the bytes the agent sent');
    assert.ok(!logText.includes(s), 'an identifier, label or raw value was found in the agent\'s logs');
  }
  for (const line of log.lines) JSON.parse(line);
  assert.ok(log.lines.some((l) => l.includes('"round":7') && l.includes('update accepted')), 'a per-round log line records the ack');
});

test('a model larger than one message travels in chunks both ways', async (t) => {
  const coord = new FakeCoordinator();
  await coord.start();
  t.after(() => coord.close());
  const { agent } = agentFor(t, coord.url);
  await agent.start();
  await waitFor(() => agent.connected, 5000, 'connection');
  coord.offer(3, { chunks: 3 });
  await waitFor(() => coord.received.filter((r) => r.event === 'update-chunk').length === 3, 20_000, 'the update chunks');
  const header = coord.updates()[0]!;
  assert.equal(header.update, null);
  assert.equal(header.chunks, 3);
  const chunks = coord.received.filter((r) => r.event === 'update-chunk').map((r) => r.msg as UpdateChunkMessage);
  assert.deepEqual(chunks.map((c) => c.index), [0, 1, 2]);
  assert.equal(chunks.reduce((a, c) => a + c.values.length, 0), coord.params.values.length);
  for (const c of chunks) assert.ok(c.values.every(Number.isFinite));
});

test('after the coordinator dies mid-round and restarts, the agent reconnects and delivers the same update to the re-offered round', async (t) => {
  const first = new FakeCoordinator({ ack: false });
  const port = await first.start();
  const { agent, log } = agentFor(t, first.url, { credential: 'cred-xyz-0123456789', enrollmentToken: undefined });
  await agent.start();
  await waitFor(() => agent.connected, 5000, 'connection');
  first.offer(5);
  await waitFor(() => first.updates().length === 1, 20_000, 'the first update');
  const sentBefore = first.updates()[0]!.update!;
  await first.close();

  // The restarted coordinator refuses sites until it has restored its state, then re-offers the round in flight.
  const second = new FakeCoordinator({
    port,
    refuse: (_h, attempt) => (attempt === 0 ? { code: ErrorCode.NOT_READY, message: 'restoring state' } : null),
  });
  await second.start();
  t.after(() => second.close());
  await waitFor(() => agent.connected && second.sockets.length === 1, 10_000, 'reconnection');
  second.offer(5);
  await waitFor(() => second.updates().length === 1, 10_000, 'the resent update');
  assert.deepEqual(second.updates()[0]!.update, sentBefore, 'the kept update is sent again, not recomputed differently');
  assert.ok(log.text().includes('FEDMETA_ERR_NOT_READY'), 'the temporary refusal is logged with its code');
  await waitFor(() => log.text().includes('update accepted'), 5000, 'the ack');
});

test('a revoked site is told so in plain words and the agent stops retrying', async (t) => {
  const coord = new FakeCoordinator({ refuse: () => ({ code: ErrorCode.REVOKED, message: 'site branch-1 was revoked' }) });
  await coord.start();
  t.after(() => coord.close());
  const { agent, log } = agentFor(t, coord.url);
  await agent.start();
  const end = await agent.done;
  assert.deepEqual(end, { reason: 'refused', code: ErrorCode.REVOKED, message: 'site branch-1 was revoked' });
  const line = log.lines.map((l) => JSON.parse(l) as { msg: string }).find((l) => l.msg.includes('refused'));
  assert.match(line!.msg, /^the coordinator refused this site: FEDMETA_ERR_REVOKED: site branch-1 was revoked\. /);
  await delay(300);
  assert.equal(coord.handshakes.length, 1, 'no further connection attempts after a permanent refusal');
});

test('a released version is cached with the site\'s statistics for detect', async (t) => {
  const coord = new FakeCoordinator();
  await coord.start();
  t.after(() => coord.close());
  const { agent, stateDir } = agentFor(t, coord.url);
  await agent.start();
  await waitFor(() => agent.connected, 5000, 'connection');
  coord.offer(1, { task: { ...SMALL_TASK, innerSteps: 3, innerLr: 0.02 } });
  await waitFor(() => coord.updates().length === 1, 20_000, 'the update');
  coord.release(4);
  const file = modelPath(stateDir);
  await waitFor(() => { try { statSync(file); return true; } catch { return false; } }, 5000, 'the cached model');
  const m = await readModelFile(file);
  assert.equal(m.version, 4);
  assert.deepEqual(m.params, coord.params.values);
  assert.equal(m.schemaFingerprint, fingerprint);
  assert.deepEqual(m.stats?.mean, data.stats.mean);
  assert.deepEqual(m.inner, { steps: 3, lr: 0.02 });
  assert.equal(statSync(modelPath(stateDir, 4)).mode & 0o777, 0o600);
});

test('over HTTPS the agent verifies the coordinator against tls.ca, and says so plainly when it does not verify', async (t) => {
  const certFile = fileURLToPath(new URL('./tls/test-only-cert.pem', import.meta.url));
  const keyFile = fileURLToPath(new URL('./tls/test-only-key.pem', import.meta.url));
  const coord = new FakeCoordinator({ tls: { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') } });
  await coord.start();
  t.after(() => coord.close());
  const trusted = agentFor(t, coord.url, { allowInsecureHttp: false, tls: { ca: certFile } });
  await trusted.agent.start();
  await waitFor(() => trusted.log.text().includes('welcomed by the coordinator'), 5000, 'the welcome over TLS');

  const untrusted = agentFor(t, coord.url, { allowInsecureHttp: false });
  await untrusted.agent.start();
  await waitFor(() => untrusted.log.text().includes('certificate does not verify'), 5000, 'the certificate warning');
  assert.equal(untrusted.agent.connected, false);
  assert.equal(coord.handshakes.length, 1, 'no hello (and no credential) is sent to an unverified coordinator');
});
