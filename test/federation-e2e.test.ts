// The federation end to end, as installed: `fedmeta-coordinator serve` and three `fedmeta-agent run` processes on
// loopback, each office with its own slice of the shipped CIC-IDS2017 sample. One federation serves every check, in
// order: rounds run; an agent killed mid-round does not stop its round; the coordinator killed with SIGKILL
// mid-round resumes exactly where its last commit left it; the bytes one agent sent (recorded by a proxy) are
// protocol messages and nothing of its data; no log line of any process holds a flow value or an address.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io as ioClient, type Socket } from 'socket.io-client';
import { PROTOCOL_VERSION, builtinSchema, decodeMessage, schemaFingerprint } from '@fedmeta/shared';
import type { HelloMessage } from '@fedmeta/shared';
import { FileStateStore, addSite, digestState } from '@fedmeta/coordinator';
import { csvProbes, emptyProbes, scanBytes, scanText, type LeakProbes } from '../packages/site-agent/test/leak-probe.js';
import { Child, ChildGroup, cleanEnv, sleep, until, type LogLine } from './helpers/children.js';
import { AGENT_BIN, AdminClient, COORDINATOR_BIN, ROOT, writeJson, writeSiteFiles, type SiteFile, type Status } from './helpers/federation.js';
import { RecordingProxy } from './helpers/ws-recorder.js';

const ADMIN_TOKEN = 'e2e-admin-token-0123456789';
const DEADLINE_S = 6;
/** Values per message: the 697-parameter model then travels in chunks both ways. */
const CHUNK_VALUES = 100;
const FAMILIES = {
  'office-a': ['DoS Hulk', 'Portscan', 'SSH-Patator'],
  'office-b': ['DDoS', 'FTP-Patator', 'DoS GoldenEye'],
  'office-c': ['DoS Slowloris', 'Infiltration - Portscan', 'DoS Slowhttptest'],
};
const SITES = Object.keys(FAMILIES);
const fingerprint = schemaFingerprint(builtinSchema('cicflowmeter'));

const group = new ChildGroup();
let dir = '';
let dataDir = '';
let configFile = '';
let sites: SiteFile[] = [];
const tokens = new Map<string, string>();
let proxy: RecordingProxy;
let port = 0;
let admin: AdminClient;
/** Every coordinator process of the run, the restarted one last. */
const coordinators: Child[] = [];
const agents = new Map<string, Child>();
let idle: Socket | null = null;

function startCoordinator(extra: string[] = []): Child {
  const c = group.start(`coordinator#${coordinators.length + 1}`, [COORDINATOR_BIN, 'serve', '--config', configFile, ...extra], { env: cleanEnv(), cwd: ROOT });
  coordinators.push(c);
  return c;
}

function startAgent(site: SiteFile, url: string): Child {
  const config = writeJson(join(dir, `${site.name}.json`), {
    coordinatorUrl: url,
    site: site.name,
    allowInsecureHttp: true,
    data: { files: [site.file] },
    schema: 'cicflowmeter',
    backend: 'wasm',
    seed: 100 + SITES.indexOf(site.name),
    stateDir: join(dir, `${site.name}-state`),
    logLevel: 'debug',
    reconnect: { initialDelayMs: 100, maxDelayMs: 800 },
    ackTimeoutMs: 10_000,
  });
  const env = cleanEnv({ FEDMETA_AGENT_ENROLLMENT_TOKEN: tokens.get(site.name) as string });
  const a = group.start(site.name, [AGENT_BIN, 'run', '--config', config], { env, cwd: ROOT });
  agents.set(site.name, a);
  return a;
}

const status = (): Promise<Status> => admin.status();

/** Runs `count` rounds through the admin API and waits until the version has moved by that many. */
async function runRounds(count: number, from: number, timeoutMs: number): Promise<Status> {
  await admin.post('rounds', { count });
  return until(async () => {
    const s = await status();
    return s.version >= from + count && !s.rounds.running ? s : undefined;
  }, timeoutMs, `${count} round(s) from version ${from}`);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedmeta-e2e-'));
  dataDir = join(dir, 'coordinator-state');
  sites = writeSiteFiles(dir, FAMILIES, 40);

  // Sites are registered on the data directory before the coordinator starts, as `sites add` does offline.
  const store = new FileStateStore(dataDir);
  await store.open();
  for (const name of [...SITES, 'idle']) tokens.set(name, (await addSite(store, name)).token);
  await store.close();

  configFile = writeJson(join(dir, 'coordinator.json'), {
    server: { host: '127.0.0.1', port: 0, allowInsecureHttp: true, maxMessageBytes: 65_536 + 4 * CHUNK_VALUES },
    dataDir,
    adminToken: ADMIN_TOKEN,
    schema: 'cicflowmeter',
    seed: 11,
    model: { hidden: [8], activation: 'tanh', task: 'binary' },
    rounds: {
      algorithm: 'fomaml',
      innerSteps: 2,
      innerLr: 0.05,
      shots: 4,
      queryShots: 6,
      episodes: 2,
      sampleFraction: 1,
      minSites: 2,
      quorum: '60%',
      deadlineSeconds: DEADLINE_S,
      continuous: false,
    },
    aggregator: 'mean',
    optimizer: { kind: 'adam', lr: 0.01 },
    logLevel: 'debug',
  });
});

after(async () => {
  idle?.disconnect();
  await group.killAll();
  await proxy?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a coordinator and three agents, as separate processes, run rounds over loopback', { timeout: 60_000 }, async () => {
  const c = startCoordinator();
  const listening = await c.waitForLog((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('coordinator listening'), 30_000, 'its address');
  port = listening['port'] as number;
  assert.ok(Number.isInteger(port) && port > 0, 'the coordinator logs the port it bound');
  await c.waitForLog((l) => l['msg'] === 'coordinator ready', 30_000, 'the restored state');
  const url = `http://127.0.0.1:${port}`;
  admin = new AdminClient(url, ADMIN_TOKEN);

  // office-a reaches the coordinator through a proxy that records every byte it sends.
  proxy = new RecordingProxy({ host: '127.0.0.1', port });
  const proxyPort = await proxy.start();
  for (const site of sites) startAgent(site, site.name === 'office-a' ? `http://127.0.0.1:${proxyPort}` : url);
  await until(async () => ((await status()).sitesOnline.length === 3 ? true : undefined), 45_000, 'three agents online');

  const s = await runRounds(1, 0, 30_000);
  assert.equal(s.version, 1);
  assert.equal(s.lastRound?.status, 'committed');
  assert.deepEqual(s.lastRound?.sampled, SITES);
  assert.equal(s.lastRound?.accepted, 3);
  assert.deepEqual(s.lastRound?.rejected, {}, 'every update, sent in chunks, was accepted');
});

test('an agent killed mid-round (SIGKILL): the round completes with the others, a quorum remaining', { timeout: 60_000 }, async () => {
  const c = agents.get('office-c') as Child;
  // Stopped first, so that it cannot answer before it is killed: it is sampled, receives the offer, and dies.
  c.signal('SIGSTOP');
  await admin.post('rounds', { count: 1 });
  await until(async () => {
    const f = (await status()).roundInFlight;
    return f?.round === 1 && f.phase === 'collecting' ? true : undefined;
  }, 20_000, 'round 1 collecting');
  c.signal('SIGKILL');
  const exit = await c.exited;
  assert.equal(exit.signal, 'SIGKILL');

  const s = await until(async () => {
    const st = await status();
    return st.version >= 2 ? st : undefined;
  }, 2 * DEADLINE_S * 1000 + 10_000, 'round 1 committed');
  const r = s.lastRound;
  assert.equal(r?.round, 1);
  assert.equal(r?.status, 'committed');
  assert.deepEqual(r?.sampled, SITES, 'the killed agent was asked');
  assert.equal(r?.accepted, 2, '60% of three sampled sites is two updates');
  const took = Date.parse(r?.endedAt ?? '') - Date.parse(r?.startedAt ?? '');
  assert.ok(took >= DEADLINE_S * 1000 - 100, `the round waited for its deadline (${took} ms) and then committed without the dead site`);
  assert.ok(!s.sitesOnline.includes('office-c'));
});

test('kill -9 of the coordinator mid-round, then a restart on its data directory: the same state, and rounds go on', { timeout: 90_000 }, async () => {
  // A site that never answers holds round 2 open until the deadline: the kill is certain to fall inside it.
  idle = await connectIdle(`http://127.0.0.1:${port}`);
  await until(async () => ((await status()).sitesOnline.includes('idle') ? true : undefined), 10_000, 'the idle site online');
  await admin.post('rounds', { count: 3 });
  const inFlight = await until(async () => {
    const st = await status();
    return st.roundInFlight?.round === 2 && st.roundInFlight.accepted === 2 ? st : undefined;
  }, 30_000, 'both agents answered round 2');
  assert.equal(inFlight.version, 2);
  const before = inFlight.state;
  assert.ok(before && before.version === 2, 'the status shows the digest of the state in memory');

  const first = coordinators[0] as Child;
  first.signal('SIGKILL');
  assert.equal((await first.exited).signal, 'SIGKILL');
  idle.disconnect();

  // What the crash left on disk, read through the store as a restarted coordinator reads it.
  const store = new FileStateStore(dataDir);
  const report = await store.open();
  try {
    assert.equal(report.tookOverLockFrom, first.pid, 'the dead coordinator\'s lock is taken over');
    const latest = store.latest();
    assert.equal(latest?.version, 2, 'no committed round is lost');
    assert.equal(latest?.nextRound, 2);
    assert.deepEqual(latest?.history.map((h) => [h.round, h.status, h.accepted]), [[0, 'committed', 3], [1, 'committed', 2]]);
    const journal = (await store.readJournal()) as { type?: string; round?: number }[];
    assert.ok(journal.some((e) => e.type === 'round-started' && e.round === 2), 'the crash fell inside round 2');
    const v2 = await store.loadVersion(2);
    assert.deepEqual(digestState(v2.version, v2.params, v2.optimizer), before, 'the checkpoint on disk holds, bit for bit, the state the coordinator held');
    assert.equal(v2.optimizer.step, 2);
  } finally {
    await store.close();
  }

  const second = startCoordinator(['--server.port', String(port)]);
  const ready = await second.waitForLog((l) => l['msg'] === 'coordinator ready', 30_000, 'the restored state');
  assert.equal(ready['restored'], true);
  assert.equal(ready['version'], 2);
  const restored = await status();
  assert.equal(restored.nextRound, 2, 'it resumes from the last committed round');
  assert.deepEqual(restored.state, before, 'the parameters and optimizer state in memory are those it committed, bit for bit');

  // The agents come back by themselves, and the interrupted round is run again and committed.
  await until(async () => {
    const online = (await status()).sitesOnline;
    return online.includes('office-a') && online.includes('office-b') ? true : undefined;
  }, 20_000, 'the agents reconnected');
  const s = await runRounds(2, 2, 2 * DEADLINE_S * 1000 + 20_000);
  assert.equal(s.version, 4, 'the version advances past the one before the crash');
  assert.deepEqual(s.lastRound && [s.lastRound.round, s.lastRound.fromVersion, s.lastRound.status, s.lastRound.accepted], [3, 3, 'committed', 2]);
});

test('only declared fields leave a site: every byte office-a sent, recorded on the wire, is a protocol message', { timeout: 30_000 }, () => {
  // Connection attempts while the coordinator was down were cut before they carried anything.
  const carried = proxy.connections.filter((c) => c.request !== '');
  assert.ok(carried.length >= 2, 'office-a connected before and after the coordinator restart');
  for (const c of carried) {
    assert.match(c.request, /^GET \/socket\.io\/\?EIO=4&transport=websocket /, 'websocket transport only');
    assert.equal(c.transformed, 0, 'no compressed frames: the record is the plain message');
  }
  for (const c of proxy.connections) if (c.request === '') assert.equal(c.frames.length, 0);
  const frames = proxy.dataFrames();
  const types = new Map<string, number>();
  let hellos = 0;
  for (const f of frames) {
    if (f.opcode === 1) {
      const text = f.payload.toString('utf8');
      if (text === '3') continue; // engine.io pong
      if (text.startsWith('40')) {
        const hello = JSON.parse(text.slice(2)) as HelloMessage;
        assert.deepEqual(Object.keys(hello).sort(), ['agentVersion', 'auth', 'protocolVersion', 'schemaFingerprint', 'site', 'type']);
        assert.equal(hello.protocolVersion, PROTOCOL_VERSION);
        assert.equal(hello.schemaFingerprint, fingerprint);
        hellos++;
        continue;
      }
      assert.match(text, /^451-\d*\["update(-chunk)?",\{"_placeholder":true,"num":0\}\]$/, 'a socket.io event carrying one binary message');
      continue;
    }
    const m = decodeMessage(f.payload, { maxBytes: 1 << 20, accept: ['update', 'update-chunk'] });
    types.set(m.type, (types.get(m.type) ?? 0) + 1);
    if (m.type === 'update') {
      assert.deepEqual(Object.keys(m).sort(), ['chunks', 'counts', 'metrics', 'privacy', 'round', 'secagg', 'type', 'update', 'version']);
      assert.equal(m.update, null, 'the update went in chunks');
      assert.equal(m.chunks, Math.ceil(697 / CHUNK_VALUES), 'at the chunk size the coordinator announced');
      for (const k of Object.keys(m.metrics)) assert.ok(['supportLoss', 'queryLoss', 'queryAccuracy', 'valF1'].includes(k), k);
    } else if (m.type === 'update-chunk') {
      assert.deepEqual(Object.keys(m).sort(), ['count', 'index', 'round', 'type', 'values']);
      assert.ok(m.values.length <= CHUNK_VALUES);
    }
  }
  assert.ok(hellos >= 2);
  assert.ok((types.get('update') ?? 0) >= 4, `updates of rounds 0 to 3: ${JSON.stringify([...types])}`);
  assert.equal(types.get('update-chunk'), (types.get('update') ?? 0) * Math.ceil(697 / CHUNK_VALUES));

  const site = sites.find((s) => s.name === 'office-a') as SiteFile;
  const probes = csvProbes(site.csv);
  assert.ok(probes.float32.size > 500 && probes.tokens.size > 100, 'a meaningful search');
  assert.deepEqual(scanBytes(proxy.plainBytes(), probes), { float32: 0, float64: 0, tokens: 0 }, 'a value, identifier or label of the site in what it sent');
});

test('logs are pino JSON with site and round fields, and no flow value or address of any site', { timeout: 30_000 }, () => {
  const all: LeakProbes = emptyProbes();
  for (const s of sites) {
    const p = csvProbes(s.csv);
    for (const k of ['float32', 'float64', 'tokens'] as const) for (const v of p[k]) (all[k] as Set<unknown>).add(v);
  }
  // The search finds what it looks for in a log line: a flow's addresses among them.
  const ips = [...all.tokens].filter((t) => /^\d+\.\d+\.\d+\.\d+$/.test(t));
  assert.ok(ips.length >= 10, 'the sites\' IP addresses are searched for');
  assert.equal(scanText(JSON.stringify({ level: 30, msg: 'flow', src: ips[0] }), all), 1);
  const children = [...coordinators, ...agents.values()];
  for (const c of children) {
    for (const line of c.out) {
      let v: unknown;
      assert.doesNotThrow(() => (v = JSON.parse(line)), `${c.name}: a stdout line that is not JSON`);
      assert.ok(typeof v === 'object' && v !== null && 'level' in v && 'time' in v && 'msg' in v, `${c.name}: not a pino line`);
    }
    assert.equal(scanText([...c.out, ...c.err].join('\n'), all), 0, `${c.name}: a flow value, identifier or address of a site in its logs`);
  }
  const withBoth = (c: Child, site?: string): LogLine[] =>
    c.logLines().filter((l) => typeof l['site'] === 'string' && typeof l['round'] === 'number' && (site === undefined || l['site'] === site));
  for (const c of coordinators) assert.ok(withBoth(c).length > 0, `${c.name} logs per site and round`);
  for (const [name, a] of agents) assert.ok(withBoth(a, name).length > 0, `${name} logs with its site and round`);
});

/** A site that connects and never answers: it keeps a round open until its deadline. */
function connectIdle(url: string): Promise<Socket> {
  const hello: HelloMessage = {
    type: 'hello',
    protocolVersion: PROTOCOL_VERSION,
    site: 'idle',
    schemaFingerprint: fingerprint,
    agentVersion: 'e2e/1',
    auth: { kind: 'enroll', token: tokens.get('idle') as string },
  };
  const socket = ioClient(url, { auth: hello as unknown as Record<string, unknown>, transports: ['websocket'], reconnection: false, forceNew: true });
  return new Promise((resolve, reject) => {
    socket.once('welcome', () => resolve(socket));
    socket.once('connect_error', (e) => reject(e));
    void sleep(10_000).then(() => reject(new Error('the idle site was not welcomed')));
  });
}
