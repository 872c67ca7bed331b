// Hostile peers and load against a coordinator (in this process, for speed and to watch its engine) while two
// honest agents (real processes) keep running rounds with it. First a fuzzer: an authenticated agent sending
// mutated update messages and an unauthenticated peer sending mutated handshakes and broken frames. Then the same
// federation under a coordinator with the default per-connection limits: a flood of tiny messages from one site,
// messages over the size limits, and a connection flood.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { builtinSchema, schemaFingerprint } from '@fedmeta/shared';
import { COORDINATOR_DEFAULTS, loadCoordinatorConfig, startCoordinator, wireLimits } from '@fedmeta/coordinator';
import type { RoundRecord, RunningCoordinator, SiteUpdate } from '@fedmeta/coordinator';
import { AdminClient } from '../helpers/federation.js';
import { sleep, until } from '../helpers/children.js';
import { ADMIN_TOKEN, Federation } from './helpers/federation.js';
import { UpdateFuzzer, type FuzzMessage } from './helpers/fuzz.js';
import { faultProfile } from './helpers/profile.js';
import { RawWs } from './helpers/raw-ws.js';
import { quantile, recordRow, seconds } from './helpers/report.js';
import { SiteClient, add, newTally, total, type Tally } from './helpers/site-client.js';
import { fuzzUnauthenticated } from './helpers/unauth.js';

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

/** Probes /healthz every 250 ms; the longest answer time shows whether the coordinator stalled. */
function healthProbe(): { stop: () => Promise<{ probes: number; failures: number; maxMs: number; p95Ms: number }> } {
  const times: number[] = [];
  let failures = 0;
  let stopped = false;
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
  console.error(new Date().toISOString(), 'B started');
  await fed.online(HONEST, 90_000);
  console.error(new Date().toISOString(), 'B online');
});

after(async () => {
  await running?.close();
  await fed?.close();
});

test(`fuzzing: ${profile.fuzzMessages} mutated messages from an authenticated agent and an unauthenticated peer; honest rounds go on`, { timeout: 600_000 }, async () => {
  console.error(new Date().toISOString(), 'T start');
  await until(() => (committed.length >= 1 ? true : undefined), 60_000, 'a first honest round');
  console.error(new Date().toISOString(), 'T first round');
  const rssBefore = rssMb();
  const rejectedBefore = running.hub.rejectionCounts();
  const refusedBefore = running.hub.connectionRefusals();
  const roundsBefore = committed.length;
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  const health = healthProbe();
  const t0 = Date.now();

  const authCount = Math.round(profile.fuzzMessages * 0.8);
  const client = await SiteClient.connect(running.url, FUZZ, fed.tokens.get(FUZZ) as string, fingerprint, dim);
  console.error(new Date().toISOString(), 'T connected');
  const fuzzer = new UpdateFuzzer(SEED);
  const dbg = setInterval(() => console.error(new Date().toISOString(), 'T auth', JSON.stringify(auth), committed.length), 2000);
  const auth = newTally();
  let left = authCount;
  await client.send((): FuzzMessage | null => (left-- > 0 ? fuzzer.next(client.ctx) : null), auth);
  client.close();
  clearInterval(dbg);
  console.error(new Date().toISOString(), 'T auth done');
  const authMs = Date.now() - t0;

  const t1 = Date.now();
  const limits = wireLimits(dim, { maxMessageBytes: MAX_MESSAGE_BYTES });
  const unauth = await fuzzUnauthenticated(running.port, profile.fuzzMessages - authCount, SEED, { site: HONEST[0] as string, schemaFingerprint: fingerprint }, limits.maxHttpBufferSize);
  const unauthMs = Date.now() - t1;
  console.error(new Date().toISOString(), 'T unauth done', JSON.stringify(unauth));

  // The honest sites must still get rounds through after the storm, not only during it.
  await until(() => (honestRounds(roundsBefore).length >= 3 ? true : undefined), 10 * DEADLINE_S * 1000, 'honest rounds after the fuzzing');
  const h = await health.stop();
  eld.disable();
  const rssAfter = rssMb();
  const rejected = diff(running.hub.rejectionCounts(), rejectedBefore);
  const refused = diff(running.hub.connectionRefusals(), refusedBefore);

  const sent = auth.sent + unauth.sent;
  assert.ok(sent >= profile.fuzzMessages, `${sent} messages sent`);
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
    injected: `${auth.sent} mutated update/chunk/event messages (${Object.keys(auth.byKind).length} kinds: ${Object.keys(auth.byKind).join(', ')})`,
    held: `0 malformed updates reached the aggregator (${audit.inspected} accepted, all inspected); every refusal counted by code; no crash, no stall`,
    figures: `${Math.round(auth.sent / (authMs / 1000))} msg/s; refused: ${fmt(auth.refused)}; accepted ${auth.accepted}; no ack ${auth.noAck}; cut ${auth.cut}`,
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

function diff(now: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(now)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

void seconds;
