// Hostile peers and load against a coordinator (in this process, for speed and to watch its engine) while two
// honest agents (real processes) keep running rounds with it. First a fuzzer: an authenticated agent sending
// mutated update messages and an unauthenticated peer sending mutated handshakes and broken frames. Then the same
// federation under a coordinator with the default per-connection limits: a flood of tiny messages from one site,
// messages over the size limits, and a connection flood.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { builtinSchema, schemaFingerprint } from '@fedmeta/shared';
import { COORDINATOR_DEFAULTS, loadCoordinatorConfig, startCoordinator, wireLimits } from '@fedmeta/coordinator';
import type { RoundRecord, RunningCoordinator, SiteUpdate } from '@fedmeta/coordinator';
import { AdminClient } from '../helpers/federation.js';
import { cleanEnv, sleep, until } from '../helpers/children.js';
import { ADMIN_TOKEN, Federation } from './helpers/federation.js';
import type { FuzzPeerOptions } from './helpers/fuzz-peer.js';
import { faultProfile } from './helpers/profile.js';
import { RawWs, frame } from './helpers/raw-ws.js';
import { ROOT } from '../helpers/federation.js';
import { quantile, recordRow } from './helpers/report.js';
import { SiteClient, add, newTally, total, type Tally } from './helpers/site-client.js';
import type { FuzzMessage } from './helpers/fuzz.js';
import type { UnauthTally } from './helpers/unauth.js';

const profile = faultProfile();
const HONEST = ['office-a', 'office-b'];
const FUZZ = 'fuzz-1';
const FLOOD = 'flood-1';
const DEADLINE_S = 3;
const SEED = 20_261_129;
/** 100 values per chunk: the 697-parameter updates travel in chunks, so the chunk paths are attacked too. */
const MAX_MESSAGE_BYTES = 65_536 + 4 * 100;
const fingerprint = schemaFingerprint(builtinSchema('cicflowmeter'));

let fed: Federation;
let running: RunningCoordinator;
let dim = 0;
const errors: Record<string, unknown>[] = [];
const committed: RoundRecord[] = [];

/** Honest-site refusals and accepted updates the aggregator was given, checked one by one. */
const audit = { accepted: 0, inspected: 0, malformed: 0, honestRejected: 0, acceptedFrom: {} as Record<string, number> };

function wellFormed(u: SiteUpdate, round: number): boolean {
  if (Object.getPrototypeOf(u) !== Object.prototype || Object.hasOwn(u, '__proto__')) return false;
  if (!(u.update instanceof Float32Array) || u.update.length !== dim || u.round !== round) return false;
  for (const x of u.update) if (!Number.isFinite(x)) return false;
  const { episodes, examples } = u.counts;
  const { supportLoss, queryLoss, valF1 } = u.metrics;
  return (
    Number.isSafeInteger(episodes) && episodes >= 1 && Number.isSafeInteger(examples) && examples >= 1 &&
    Number.isFinite(supportLoss) && supportLoss >= 0 && Number.isFinite(queryLoss) && queryLoss >= 0 &&
    (valF1 === undefined || (valF1 >= 0 && valF1 <= 1))
  );
}

/** A coordinator in this process on the federation's data directory; the port stays the same across restarts. */
async function startInProcess(flags: Record<string, unknown>): Promise<void> {
  const config = loadCoordinatorConfig({ file: fed.configFile, env: {}, flags: { 'server.port': fed.port, ...flags } });
  // Errors only: the warning per refused message would be most of the work of a fuzzed coordinator.
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) errors.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  running = await startCoordinator(config, { logger: pino({ level: 'error' }, sink) });
  fed.port = running.port;
  fed.admin = new AdminClient(running.url, ADMIN_TOKEN);
  dim = running.engine.params().length;
  let lastAccepted: { site: string; round: number } | null = null;
  running.engine.on('update-accepted', (e) => {
    audit.accepted++;
    add(audit.acceptedFrom, e.site);
    lastAccepted = { site: e.site, round: e.round };
  });
  running.engine.on('update-rejected', (e) => {
    if (HONEST.includes(e.site)) audit.honestRejected++;
  });
  running.engine.on('round-committed', (e) => committed.push(e.record));
  // Registered after the engine's own handler: it sees each update right after the engine judged it.
  running.hub.onUpdate((site, u) => {
    const a = lastAccepted;
    lastAccepted = null;
    if (a === null || a.site !== site) return;
    audit.inspected++;
    if (!wellFormed(u, a.round)) audit.malformed++;
  });
  running.runner.startContinuous();
}

/** What a test leaves running (probes, clients), ended by the after hook even when the test failed. */
const cleanups = new Set<() => Promise<void> | void>();

/** Probes /healthz every 250 ms; the longest answer time shows whether the coordinator stalled. */
function healthProbe(): { stop: () => Promise<{ probes: number; failures: number; maxMs: number; p95Ms: number }> } {
  const times: number[] = [];
  let failures = 0;
  let stopped = false;
  const stopNow = (): void => {
    stopped = true;
  };
  cleanups.add(stopNow);
  const loop = (async () => {
    while (!stopped) {
      const t0 = performance.now();
      try {
        const res = await fetch(`${running.url}/healthz`, { signal: AbortSignal.timeout(5000) });
        if (!res.ok) failures++;
        await res.arrayBuffer();
      } catch {
        failures++;
      }
      times.push(performance.now() - t0);
      await sleep(250);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      cleanups.delete(stopNow);
      await loop;
      return { probes: times.length, failures, maxMs: Math.max(...times), p95Ms: quantile(times, 0.95) };
    },
  };
}

/** Rounds committed from `from` on in which every honest site's update was taken. */
function honestRounds(from: number): RoundRecord[] {
  return committed.slice(from).filter((r) => HONEST.every((s) => r.sites.some((x) => x.siteId === s)));
}

function rssMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss / 2 ** 20;
}

const fmt = (r: Record<string, number>): string =>
  Object.entries(r)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k.replace(/^FEDMETA_ERR_/, '')} ${v}`)
    .join(', ');

before(async () => {
  fed = await Federation.create({
    name: 'hostile',
    sites: [...HONEST, FUZZ, FLOOD],
    rounds: { minSites: 2, quorum: 2, deadlineSeconds: DEADLINE_S },
    server: { maxMessageBytes: MAX_MESSAGE_BYTES },
    logLevel: 'error',
  });
  // The fuzzer may send as fast as it can: the rate limiter has a test of its own below.
  await startInProcess({ 'server.perConnectionMessagesPerSecond': 1_000_000 });
  for (const s of HONEST) fed.startAgent(s);
  await fed.online(HONEST, 90_000);
});

after(async () => {
  try {
    for (const c of cleanups) await c();
    await running?.close();
  } finally {
    await fed?.close();
  }
});

test(`fuzzing: ${profile.fuzzMessages} mutated messages from an authenticated agent and an unauthenticated peer; honest rounds go on`, { timeout: Math.max(600_000, 3 * profile.fuzzMessages) }, async () => {
  await until(() => (committed.length >= 1 ? true : undefined), 60_000, 'a first honest round');
  const rssBefore = rssMb();
  const rejectedBefore = running.hub.rejectionCounts();
  const refusedBefore = running.hub.connectionRefusals();
  const roundsBefore = committed.length;
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  const health = healthProbe();
  const t0 = Date.now();

  // Two hostile processes at once, so that the coordinator, not the fuzzer, is what is busy.
  const limits = wireLimits(dim, { maxMessageBytes: MAX_MESSAGE_BYTES });
  const authCount = Math.round(profile.fuzzMessages * 0.8);
  const common = { port: running.port, schemaFingerprint: fingerprint, dim, maxFrameBytes: limits.maxHttpBufferSize };
  const [authRun, unauthRun] = await Promise.all([
    runPeer({ ...common, mode: 'auth', count: authCount, seed: SEED, site: FUZZ, token: fed.tokens.get(FUZZ) as string }),
    runPeer({ ...common, mode: 'unauth', count: profile.fuzzMessages - authCount, seed: SEED + 1, site: HONEST[0] as string }),
  ]);
  const auth = authRun.tally as Tally;
  const unauth = unauthRun.tally as UnauthTally;
  const authMs = authRun.ms;
  const unauthMs = unauthRun.ms;
  const fuzzMs = Date.now() - t0;

  // The honest sites must still get rounds through after the storm, not only during it.
  await until(() => (honestRounds(roundsBefore).length >= 3 ? true : undefined), 10 * DEADLINE_S * 1000, 'honest rounds after the fuzzing');
  const h = await health.stop();
  eld.disable();
  const rssAfter = rssMb();
  const rejected = diff(running.hub.rejectionCounts(), rejectedBefore);
  const refused = diff(running.hub.connectionRefusals(), refusedBefore);

  const sent = auth.sent + unauth.sent;
  assert.ok(sent >= profile.fuzzMessages, `${sent} messages sent`);
  assert.equal(authRun.extTypes, 256, 'every msgpack extension type (-128..127) was sent');
  assert.ok(running.engine.ready, 'the coordinator is up');
  assert.equal(h.failures, 0, 'every health probe was answered');
  assert.ok(h.maxMs < 3000, `the coordinator never stalled (slowest health answer ${h.maxMs.toFixed(0)} ms)`);
  const unexpected = errors.filter((e) => /threw|unexpectedly|failed to start/.test(String(e['msg'])));
  assert.deepEqual(unexpected, [], 'no handler threw and nothing failed unexpectedly');
  // Every update the aggregator took was well-formed, and each was inspected.
  assert.equal(audit.malformed, 0, 'no malformed update reached the aggregator');
  assert.equal(audit.inspected, audit.accepted, 'every accepted update was inspected');
  const honest = honestRounds(roundsBefore);
  assert.ok(honest.length >= 3, `honest sites kept completing rounds (${honest.length})`);
  // Every refusal acknowledged to the fuzzer was counted under its code by the hub.
  for (const [code, n] of Object.entries(auth.refused)) assert.ok((rejected[code] ?? 0) >= n, `${code}: ${rejected[code] ?? 0} counted, ${n} told`);
  assert.ok(total(rejected) <= total(auth.refused) + auth.noAck + audit.honestRejected, 'nothing counted that was not refused');
  for (const [code, n] of Object.entries(unauth.refused)) {
    if (code.startsWith('FEDMETA_ERR_')) assert.ok((refused[code] ?? 0) >= n, `${code}: ${refused[code] ?? 0} counted, ${n} told`);
  }
  assert.ok(total(unauth.refused) > 0.5 * unauth.sent, 'most handshakes were answered with a coded refusal');
  assert.equal(unauth.refused['FEDMETA_ERR_NOT_READY'] ?? 0, 0);
  assert.ok(rssAfter - rssBefore < 200, `memory stays bounded (RSS ${rssBefore.toFixed(0)} -> ${rssAfter.toFixed(0)} MiB)`);

  const kinds = Object.keys(auth.byKind).length + Object.keys(unauth.byKind).length;
  recordRow({
    scenario: 'fuzz: authenticated agent',
    injected: `${auth.sent} mutated update/chunk/event messages (${Object.keys(auth.byKind).length} kinds: ${Object.keys(auth.byKind).join(', ')}; all ${authRun.extTypes} msgpack extension types)`,
    held: `0 malformed updates reached the aggregator (${audit.inspected} accepted, all inspected); every refusal counted by code; no crash, no stall`,
    figures: `${Math.round(auth.sent / (authMs / 1000))} msg/s (both peers together: ${Math.round(sent / (fuzzMs / 1000))} msg/s); refused: ${fmt(auth.refused)}; accepted ${auth.accepted}; no ack ${auth.noAck}; cut ${auth.cut}`,
  });
  recordRow({
    scenario: 'fuzz: unauthenticated peer',
    injected: `${unauth.sent} mutated handshakes and broken frames over ${unauth.connections} connections (${Object.keys(unauth.byKind).length} kinds)`,
    held: `every handshake refused with a code (counted by the hub); ${unauth.closedByServer} fatal messages closed the connection, ${unauth.leftOpen} awaited`,
    figures: `${Math.round(unauth.sent / (unauthMs / 1000))} msg/s; refused: ${fmt(unauth.refused)}`,
  });
  recordRow({
    scenario: 'fuzz: coordinator health',
    injected: `${sent} messages, ${kinds} kinds, seed ${SEED}`,
    held: `${honest.length} honest rounds committed; ${h.probes} health probes all answered; RSS bounded`,
    figures: `RSS ${rssBefore.toFixed(0)} -> ${rssAfter.toFixed(0)} MiB; health p95 ${h.p95Ms.toFixed(0)} ms, max ${h.maxMs.toFixed(0)} ms; event loop p99 ${(eld.percentile(99) / 1e6).toFixed(0)} ms`,
  });
});

/** The coordinator with the default per-connection rate; a small connection cap so that the flood reaches it. */
const MAX_CONNECTIONS = 20;
let limited = false;

let floodCredential: string | null = null;

/** The flood site's connection: enrolled once, then by its credential; closed by the after hook at the latest. */
async function floodClient(): Promise<SiteClient> {
  const c = await SiteClient.connect(running.url, FLOOD, fed.tokens.get(FLOOD) as string, fingerprint, dim, 30_000, floodCredential);
  floodCredential = c.siteCredential;
  const close = (): void => c.close();
  cleanups.add(close);
  return c;
}

/** A description of the coordinator's view, for failure messages. */
function view(): string {
  const st = running.engine.status();
  return `online ${JSON.stringify(running.hub.online())}, round in flight ${JSON.stringify(st.roundInFlight)}, runner ${JSON.stringify(running.runner.status().lastError)}`;
}

async function honestRoundWithin(from: number, ms: number): Promise<void> {
  try {
    await until(() => (honestRounds(from).length >= 1 ? true : undefined), ms, 'an honest round during the flood');
  } catch (e) {
    throw new Error(`${(e as Error).message}; ${view()}`);
  }
}

async function withDefaultLimits(): Promise<void> {
  if (limited) return;
  limited = true;
  await running.close();
  await startInProcess({ 'server.maxConnections': MAX_CONNECTIONS });
  await fed.online(HONEST, 60_000);
}

test('load: a flood of tiny messages from one site meets the default rate limit; honest rounds go on', { timeout: 120_000 }, async () => {
  await withDefaultLimits();
  const rate = COORDINATOR_DEFAULTS.server.perConnectionMessagesPerSecond;
  const burst = Math.max(2 * rate, Math.ceil(dim / wireLimits(dim, { maxMessageBytes: MAX_MESSAGE_BYTES }).chunkValues) + 2);
  const client = await floodClient();
  const roundsBefore = committed.length;
  const rejectedBefore = running.hub.rejectionCounts();
  const health = healthProbe();
  const tally = newTally();
  const t0 = Date.now();
  const end = t0 + profile.floodSeconds * 1000;
  const tiny: FuzzMessage = { kind: 'tiny message', event: 'update', args: [Uint8Array.of(0xc0)], ack: true };
  await client.send(() => (Date.now() < end ? tiny : null), tally, { window: 256 });
  const elapsed = (Date.now() - t0) / 1000;
  await honestRoundWithin(roundsBefore, 4 * DEADLINE_S * 1000);
  const h = await health.stop();
  const limitedCount = tally.refused['FEDMETA_ERR_RATE_LIMITED'] ?? 0;
  const passed = tally.sent - limitedCount - tally.noAck;
  const allowed = burst + rate * elapsed;
  assert.ok(tally.sent > 10 * allowed, `a flood (${tally.sent} messages in ${elapsed.toFixed(1)} s)`);
  assert.ok(passed <= allowed * 1.1 + 5, `the limiter let ${passed} through; at most ${allowed.toFixed(0)} (burst ${burst} + ${rate}/s) may pass`);
  assert.ok(passed >= rate * elapsed * 0.5, `and it does let the allowed rate through (${passed})`);
  assert.equal(tally.accepted, 0);
  const counted = diff(running.hub.rejectionCounts(), rejectedBefore);
  assert.ok((counted['FEDMETA_ERR_RATE_LIMITED'] ?? 0) >= limitedCount, 'every throttled message counted');
  assert.equal(h.failures, 0);
  assert.ok(running.engine.ready);
  client.close();
  recordRow({
    scenario: 'load: tiny-message flood',
    injected: `${tally.sent} one-byte messages from one site in ${elapsed.toFixed(1)} s (default limit ${rate}/s, burst ${burst})`,
    held: `${passed} passed the limiter (allowed ${allowed.toFixed(0)}), ${limitedCount} refused RATE_LIMITED and counted; ${honestRounds(roundsBefore).length} honest rounds committed`,
    figures: `${Math.round(tally.sent / elapsed)} msg/s offered; health max ${h.maxMs.toFixed(0)} ms`,
  });
});

test('load: size limits: a little over is refused with a code and the connection stays; far over cuts only that connection', { timeout: 60_000 }, async () => {
  await withDefaultLimits();
  const limits = wireLimits(dim, { maxMessageBytes: MAX_MESSAGE_BYTES });
  const client = await floodClient();
  const tally = newTally();
  const over: FuzzMessage = { kind: 'over maxMessageBytes', event: 'update', args: [new Uint8Array(limits.maxMessageBytes + 1)], ack: true };
  let once = 1;
  await client.send(() => (once-- > 0 ? over : null), tally);
  assert.deepEqual(tally.refused, { FEDMETA_ERR_OVERSIZE: 1 });
  assert.ok(client.socket.connected, 'the connection stays');
  const cutsBefore = client.disconnects;
  const welcomed = client.untilWelcomed(30_000);
  client.socket.emit('update', new Uint8Array(limits.maxHttpBufferSize + 1024));
  await until(() => (client.disconnects > cutsBefore ? true : undefined), 10_000, 'the oversized frame to cut the connection');
  await welcomed;
  assert.ok(client.socket.connected, 'the site reconnects and is served again');
  assert.deepEqual(running.hub.online().filter((s) => HONEST.includes(s)), HONEST, 'no other site was affected');
  client.close();
  recordRow({
    scenario: 'load: size limits',
    injected: `one message of maxMessageBytes+1 (${limits.maxMessageBytes + 1} B); one frame over maxHttpBufferSize (${limits.maxHttpBufferSize} B)`,
    held: 'first refused OVERSIZE with the connection kept; second cut that connection only; the site reconnected and was welcomed',
    figures: `limits derived from the model (${dim} parameters) unless configured`,
  });
});

test(`load: a flood of ${profile.floodConnections} connections, idle, half-open and withholding attachments; the coordinator stays up and serves honest sites`, { timeout: Math.max(180_000, 100 * profile.floodConnections) }, async () => {
  await withDefaultLimits();
  const roundsBefore = committed.length;
  const rssBefore = rssMb();
  const health = healthProbe();
  const big = Buffer.alloc(running.hub.limits.maxHttpBufferSize - 1024, 7);
  const hoard = frame(Buffer.from(`4510-["update",${Array.from({ length: 10 }, (_, k) => `{"_placeholder":true,"num":${k}}`).join(',')}]`), { opcode: 1 });
  const sockets: RawWs[] = [];
  const hoarders: RawWs[] = [];
  const destroyAll = (): void => {
    for (const s of sockets) s.destroy();
  };
  cleanups.add(destroyAll);
  let maxClients = 0;
  const counts = { tcp: 0, upgraded: 0, refused: 0, hoarders: 0, hoardersClosed: 0 };
  for (let i = 0; i < profile.floodConnections; i += 50) {
    const batch = Array.from({ length: Math.min(50, profile.floodConnections - i) }, async (_, k) => {
      // A quarter silent TCP, half idle engine.io connections (enough to reach the cap), a quarter withholding.
      const kind = [0, 1, 1, 2][(i + k) % 4] as number;
      if (kind === 0) {
        // A TCP connection that never says anything.
        const s = await RawWs.tcp(running.port).catch(() => null);
        if (s) {
          counts.tcp++;
          sockets.push(s);
        }
        return;
      }
      const ws = await RawWs.open(running.port);
      if (!ws) {
        counts.refused++;
        return;
      }
      counts.upgraded++;
      sockets.push(ws);
      if (kind === 2) {
        counts.hoarders++;
        hoarders.push(ws);
        ws.send(hoard);
        for (let n = 0; n < 9 && ws.isOpen; n++) ws.send(frame(big, { opcode: 2 }));
      }
    });
    await Promise.all(batch);
    maxClients = Math.max(maxClients, running.hub.io.engine.clientsCount);
  }
  await sleep(500);
  counts.hoardersClosed = hoarders.filter((s) => !s.isOpen).length;
  const rssDuring = rssMb();
  await honestRoundWithin(roundsBefore, 4 * DEADLINE_S * 1000);
  const h = await health.stop();
  // The cap held: engine.io refused upgrades beyond maxConnections + 256 half-open handshakes (a batch of 50
  // handshakes in flight together may overshoot it by as many).
  assert.ok(maxClients <= MAX_CONNECTIONS + 256 + 50, `at most ${maxClients} engine.io clients at once`);
  assert.ok(counts.refused > 0, 'upgrades beyond the cap were refused');
  assert.ok(counts.hoardersClosed >= counts.hoarders, 'every connection that announced more attachments than the protocol uses was closed');
  assert.ok(rssDuring - rssBefore < 150, `memory stayed bounded under the flood (RSS ${rssBefore.toFixed(0)} -> ${rssDuring.toFixed(0)} MiB)`);
  assert.equal(h.failures, 0, 'the admin API answered throughout');
  destroyAll();
  cleanups.delete(destroyAll);
  // Once the flood is gone a new site connection is served.
  const client = await floodClient();
  client.close();
  recordRow({
    scenario: 'load: connection flood',
    injected: `${profile.floodConnections} connections: ${counts.tcp} silent TCP, ${counts.upgraded} engine.io upgrades (${counts.hoarders} withholding attachments), cap maxConnections ${MAX_CONNECTIONS}`,
    held: `${counts.refused} upgrades refused at the cap; ${counts.hoardersClosed} withholding connections closed; ${honestRounds(roundsBefore).length} honest rounds committed; a new site served after`,
    figures: `at most ${maxClients} engine.io clients at once; RSS ${rssBefore.toFixed(0)} -> ${rssDuring.toFixed(0)} MiB; health max ${h.maxMs.toFixed(0)} ms`,
  });
});

test('load: per-connection limits are configuration, with safe defaults', () => {
  const d = COORDINATOR_DEFAULTS.server;
  assert.ok(d.perConnectionMessagesPerSecond > 0 && d.perConnectionMessagesPerSecond <= 100, 'a per-connection message rate by default');
  assert.ok(d.maxConnections > 0 && d.maxConnections <= 10_000, 'a connection cap by default');
  const derived = wireLimits(dim);
  assert.ok(derived.maxMessageBytes <= 64 * 1024 + 4 * (1 << 18) && derived.maxMessageBytes >= 4 * Math.min(dim, 1 << 18), 'message size derived from the model');
  assert.ok(derived.maxHttpBufferSize < 2 * derived.maxMessageBytes + 64 * 1024, 'the frame limit stays near the message limit');
  const set = loadCoordinatorConfig({
    file: fed.configFile,
    env: {},
    flags: { 'server.perConnectionMessagesPerSecond': 5, 'server.maxConnections': 10, 'server.maxMessageBytes': 70_000 },
  });
  assert.deepEqual([set.server.perConnectionMessagesPerSecond, set.server.maxConnections, set.server.maxMessageBytes], [5, 10, 70_000]);
  recordRow({
    scenario: 'load: limit defaults',
    injected: 'configuration read with and without server.* limits',
    held: `defaults: ${d.perConnectionMessagesPerSecond} msg/s per connection, ${d.maxConnections} connections, message size from the model; all three configurable`,
    figures: `for ${dim} parameters: maxMessageBytes ${derived.maxMessageBytes} B, frame limit ${derived.maxHttpBufferSize} B`,
  });
});

const FUZZ_PEER = fileURLToPath(new URL('./helpers/fuzz-peer.ts', import.meta.url));

/** Runs one hostile peer process to its end and returns the tally it printed. */
async function runPeer(o: FuzzPeerOptions): Promise<{ tally: unknown; ms: number; extTypes?: number }> {
  const p = fed.group.start(`fuzz-peer (${o.mode})`, ['--conditions=fedmeta-source', '--import', 'tsx', FUZZ_PEER, JSON.stringify(o)], { env: cleanEnv(), cwd: ROOT });
  const exit = await p.exited;
  const out = p.logs.find((l) => 'tally' in l);
  assert.ok(exit.code === 0 && out, `the ${o.mode} fuzz peer failed (${JSON.stringify(exit)}):\n${p.tail()}`);
  return out as { tally: unknown; ms: number; extTypes?: number };
}

function diff(now: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(now)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}
