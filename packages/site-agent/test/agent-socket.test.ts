import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, builtinSchema, decodeMessage, initParams, initRuntime, schemaFingerprint } from '@fedmeta/shared';
import type { UpdateChunkMessage } from '@fedmeta/shared';
import { SiteAgent } from '../src/client.js';
import { loadAgentConfig } from '../src/config.js';
import { readModelFile } from '../src/model-file.js';
import { loadSiteData, type SiteData } from '../src/site-data.js';
import { modelPath } from '../src/state.js';
import { FakeCoordinator, SMALL_SPEC, SMALL_TASK } from './fake-coordinator.js';
import { captureLogger, delay, siteCsv, tempDir, waitFor, writeText } from './fixtures.js';
import { addValue, csvProbes, emptyProbes, scanBytes, scanText } from './leak-probe.js';

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

test('only the declared fields leave the site: every byte the agent sends decodes to hello and update messages alone', async (t) => {
  // Chunked, so that the header and the update-chunk messages are both searched.
  const coord = new FakeCoordinator({ chunkValues: 500 });
  await coord.start();
  t.after(() => coord.close());
  const { agent, log } = agentFor(t, coord.url);
  await agent.start();
  await waitFor(() => agent.connected, 5000, 'connection');
  coord.offer(7);
  await waitFor(() => coord.received.filter((r) => r.event === 'update-chunk').length === coord.updates()[0]?.chunks, 20_000, 'the update');

  const hello = coord.handshakes[0] as Record<string, unknown>;
  assert.deepEqual(Object.keys(hello).sort(), ['agentVersion', 'auth', 'protocolVersion', 'schemaFingerprint', 'site', 'type']);
  const u = coord.updates()[0]!;
  assert.ok(u.chunks > 1, 'the update went in chunks');
  assert.equal(u.round, 7);

  // Every frame the agent sent, decoded: text frames are socket.io packets (the CONNECT carrying the hello, and
  // update events whose payload is a binary placeholder), and every binary frame is one protocol message of a
  // site's types with exactly its declared fields.
  let binary = 0;
  for (const f of coord.rawFrames) {
    if (typeof f === 'string') {
      if (f.startsWith('0')) assert.deepEqual(JSON.parse(f.slice(1)), hello);
      else assert.match(f, /^\d+-\d*\["update(-chunk)?",\{"_placeholder":true,"num":\d+\}\]$/);
      continue;
    }
    const m = decodeMessage(f, { maxBytes: 1 << 20, accept: ['update', 'update-chunk'] });
    binary++;
    if (m.type === 'update') {
      assert.deepEqual(Object.keys(m).sort(), ['chunks', 'counts', 'metrics', 'privacy', 'round', 'secagg', 'type', 'update', 'version']);
      assert.deepEqual(Object.keys(m.counts).sort(), ['episodes', 'examples']);
      for (const k of Object.keys(m.metrics)) assert.ok(['supportLoss', 'queryLoss', 'queryAccuracy', 'valF1'].includes(k), k);
      assert.equal(m.secagg, null);
      assert.equal(m.privacy, null);
    } else {
      assert.deepEqual(Object.keys(m).sort(), ['count', 'index', 'round', 'type', 'values']);
    }
  }
  assert.equal(binary, 1 + u.chunks);

  // Search every byte sent for the float32 and float64 encodings of the site's feature values (standardised and as
  // read), and its text for flow identifiers, IP addresses, labels and long raw values. None may be there.
  const sent = Buffer.concat(coord.rawFrames.map((f) => (typeof f === 'string' ? Buffer.from(f) : f)));
  const chunk = coord.received.find((r) => r.event === 'update-chunk')!.msg as UpdateChunkMessage;
  const control = emptyProbes();
  for (const v of chunk.values.subarray(0, 50)) addValue(control, v);
  assert.ok(scanBytes(sent, control).float32 > 0, 'the search finds what was sent: the update itself');
  const probes = csvProbes(csvText, data.table.x);
  assert.ok(probes.float32.size > 500 && probes.float64.size > 1000 && probes.tokens.size > 100, 'a meaningful search');
  assert.deepEqual(scanBytes(sent, probes), { float32: 0, float64: 0, tokens: 0 }, 'a site value in the bytes the agent sent');
  assert.equal(scanText(log.text(), probes), 0, 'a site identifier or value in the agent\'s logs');
  for (const line of log.lines) JSON.parse(line);
  assert.ok(log.lines.some((l) => l.includes('"round":7') && l.includes('update accepted')), 'a per-round log line records the ack');
});

test('a model larger than one message travels in chunks both ways, the update at the size the welcome announced', async (t) => {
  const n = initParams(SMALL_SPEC, 3).values.length;
  // The coordinator's chunk size, not the layout of its offer, decides how the update is cut.
  const chunkValues = Math.ceil(n / 4);
  const coord = new FakeCoordinator({ chunkValues });
  await coord.start();
  t.after(() => coord.close());
  const { agent } = agentFor(t, coord.url);
  await agent.start();
  await waitFor(() => agent.connected, 5000, 'connection');
  coord.offer(3, { chunks: 3 });
  await waitFor(() => coord.received.filter((r) => r.event === 'update-chunk').length === 4, 20_000, 'the update chunks');
  const header = coord.updates()[0]!;
  assert.equal(header.update, null);
  assert.equal(header.chunks, 4);
  const chunks = coord.received.filter((r) => r.event === 'update-chunk').map((r) => r.msg as UpdateChunkMessage);
  assert.deepEqual(chunks.map((c) => c.index), [0, 1, 2, 3]);
  assert.ok(chunks.every((c) => c.values.length <= chunkValues));
  assert.equal(chunks.reduce((a, c) => a + c.values.length, 0), n);
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

test('a coordinator that restarts after acknowledging an update, and re-offers its round, gets the update again', async (t) => {
  const first = new FakeCoordinator();
  const port = await first.start();
  const { agent, log } = agentFor(t, first.url, { credential: 'cred-xyz-0123456789', enrollmentToken: undefined });
  await agent.start();
  await waitFor(() => agent.connected, 5000, 'connection');
  first.offer(6);
  await waitFor(() => log.text().includes('update accepted'), 20_000, 'the acknowledged update');
  const sentBefore = first.updates()[0]!.update!;
  // The same coordinator re-offering the round on the same connection gets nothing twice.
  first.offer(6);
  await delay(300);
  assert.equal(first.updates().length, 1);
  await first.close();

  // The restarted coordinator lost the round's updates with its memory: the agent answers the re-offer again.
  const second = new FakeCoordinator({ port });
  await second.start();
  t.after(() => second.close());
  await waitFor(() => agent.connected && second.sockets.length === 1, 10_000, 'reconnection');
  second.offer(6);
  await waitFor(() => second.updates().length === 1, 20_000, 'the update for the re-offered round');
  assert.deepEqual(second.updates()[0]!.update, sentBefore, 'the same round on the same version gives the same update');
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
  assert.deepEqual(m.spec, SMALL_SPEC, 'the model the coordinator named, its activation included');
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
