// Securely aggregated rounds under process faults, with real processes on loopback: `fedmeta-coordinator serve`
// with privacy.secureAggregation on, and five `fedmeta-agent run` processes. One federation serves every check, in
// order. Round 0: one agent is killed (SIGKILL) after sending its shares and before its masked vector (a dropout
// whose pairwise masks the coordinator strips with the key it rebuilds from the others' shares), another after its
// masked vector and before confirming (a contributor whose self-mask is rebuilt the same way); the round commits
// with the survivors, and its step is the plaintext mean step of the four sites in the sum (a reference run in the
// clear, same seeds, gives each site's update). Both agents come back as new processes, without their keys, while
// round 0 is still in its phases, and take part in round 1. Then the coordinator is killed with SIGKILL during round
// 2's unmasking, restarted on its data directory, and goes on: round 2 is re-issued under fresh keys and commits.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtinSchema, createLogger, initRuntime, makeQuantizer, schemaFingerprint } from '@fedmeta/shared';
import { FileStateStore, addSite, digestState, loadCoordinatorConfig, startCoordinator } from '@fedmeta/coordinator';
import type { Checkpoint, RoundRecord } from '@fedmeta/coordinator';
import { SiteAgent, loadAgentConfig, loadSiteData } from '@fedmeta/site-agent';
import type { ComputedUpdate } from '@fedmeta/site-agent';
import { readCheckpointFile } from '../packages/coordinator/src/state/checkpoint-files.js';
import { Child, ChildGroup, cleanEnv, until } from './helpers/children.js';
import { AGENT_BIN, AdminClient, COORDINATOR_BIN, ROOT, writeJson, writeSiteFiles, type SiteFile, type Status } from './helpers/federation.js';

const ADMIN_TOKEN = 'secagg-faults-admin-token-0123';
const FAMILIES = {
  'office-a': ['DoS Hulk', 'Portscan'],
  'office-b': ['DDoS', 'FTP-Patator'],
  'office-c': ['DoS Slowloris', 'Infiltration - Portscan'],
  'office-d': ['SSH-Patator', 'DoS GoldenEye'],
  'office-e': ['DoS Slowhttptest', 'Botnet'],
};
const SITES = Object.keys(FAMILIES);
/** Killed when the coordinator forwards it the others' shares: it shared its keys but never masks its update. */
const DROPOUT = 'office-c';
/** Killed when the coordinator lists the survivors: its masked update is in the sum, its self-mask still on it. */
const LATE = 'office-e';
const CLIP = 10;
const MAX_WEIGHT = 1000;
/**
 * The phases the killed sites miss wait this long for them: the dropout's next process boots (2-4 s, longer on a
 * loaded machine) while round 0 waits out its mask and confirm phases, so that it reconnects during the round.
 */
const PHASE_S = 8;
/** The third time the unmasking starts in the first coordinator process: round 2's (rounds 0 and 1 commit first). */
const CRASH_AT = 'secure-unmask:3';
const fingerprint = schemaFingerprint(builtinSchema('cicflowmeter'));

/** The coordinator configuration, shared by the federation under test and the plaintext reference run. */
function coordinatorSettings(dataDir: string, secure: boolean): Record<string, unknown> {
  return {
    dataDir,
    schema: 'cicflowmeter',
    seed: 11,
    model: { hidden: [8], activation: 'tanh', task: 'binary' },
    rounds: { algorithm: 'fomaml', innerSteps: 2, innerLr: 0.05, shots: 4, queryShots: 6, episodes: 2, sampleFraction: 1, minSites: 5, quorum: 3, deadlineSeconds: 20, continuous: false },
    aggregator: 'mean',
    // lr 1: the committed step is the aggregate itself.
    optimizer: { kind: 'sgd', lr: 1 },
    privacy: {
      secureAggregation: { enabled: secure, threshold: 0.6, degree: 0, clipNorm: CLIP, maxWeight: MAX_WEIGHT, phaseSeconds: PHASE_S },
      dp: { mode: 'off', clipNorm: 1, noiseMultiplier: 1, delta: 1e-5, epsilonBudget: 10 },
    },
    logLevel: 'info',
  };
}

/** The agent settings both runs share: the same data and site seed give the same update from the same offer. */
function agentSettings(site: SiteFile, url: string): Record<string, unknown> {
  return {
    coordinatorUrl: url,
    site: site.name,
    allowInsecureHttp: true,
    data: { files: [site.file] },
    schema: 'cicflowmeter',
    backend: 'wasm',
    seed: 100 + SITES.indexOf(site.name),
    stateDir: join(dir, 'agents', site.name),
    logLevel: 'info',
    reconnect: { initialDelayMs: 100, maxDelayMs: 800 },
    ackTimeoutMs: 10_000,
  };
}

/** A round record as the admin status shows it, with the parts this file reads. */
type Round = NonNullable<Status['lastRound']> & Pick<RoundRecord, 'sites' | 'secureAggregation'>;
type FullStatus = Omit<Status, 'lastRound'> & { lastRound: Round | null };

const group = new ChildGroup();
let dir = '';
let dataDir = '';
let configFile = '';
let sites: SiteFile[] = [];
const tokens = new Map<string, string>();
let admin: AdminClient;
let port = 0;
const coordinators: Child[] = [];
/** Every agent process of each site, the running one last. */
const agents = new Map<string, Child[]>();
const relays: Relay[] = [];
/** What each site computed on round 0 in the plaintext reference run, and the parameters before and after it. */
let reference: { updates: Map<string, ComputedUpdate>; before: Float32Array; after: Float32Array };
/** The parameters of version 1, as read right after round 0 committed. */
let committedV1: Float32Array;

const status = async (): Promise<FullStatus> => (await admin.status()) as unknown as FullStatus;
const agent = (site: string): Child => agents.get(site)?.at(-1) as Child;

function spawnCoordinator(env: Record<string, string> = {}, extra: string[] = []): Child {
  const c = group.start(`coordinator#${coordinators.length + 1}`, [COORDINATOR_BIN, 'serve', '--config', configFile, ...extra], { env: cleanEnv(env), cwd: ROOT });
  coordinators.push(c);
  return c;
}

function startAgent(site: SiteFile, url: string): Child {
  const n = agents.get(site.name)?.length ?? 0;
  const config = writeJson(join(dir, `${site.name}-${n + 1}.json`), agentSettings(site, url));
  const env = cleanEnv({ FEDMETA_AGENT_ENROLLMENT_TOKEN: tokens.get(site.name) as string });
  const a = group.start(n === 0 ? site.name : `${site.name}#${n + 1}`, [AGENT_BIN, 'run', '--config', config], { env, cwd: ROOT });
  agents.set(site.name, [...(agents.get(site.name) ?? []), a]);
  return a;
}

async function waitReady(c: Child): Promise<{ port: number; ready: Record<string, unknown> }> {
  const listening = await c.waitForLog((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('coordinator listening'), 30_000, 'its address');
  const ready = await c.waitForLog((l) => l['msg'] === 'coordinator ready', 30_000, 'the restored state');
  return { port: listening['port'] as number, ready };
}

const allOnline = async (): Promise<true | undefined> => ((await status()).sitesOnline.length === SITES.length ? true : undefined);

/** Waits until the version reaches `version` with no round running. */
const committed = (version: number, timeoutMs: number): Promise<FullStatus> =>
  until(async () => {
    const s = await status();
    return s.version >= version && !s.rounds.running ? s : undefined;
  }, timeoutMs, `version ${version}`);

async function checkpoint(version: number): Promise<Checkpoint> {
  const read = await readCheckpointFile(dataDir, version);
  assert.ok(read.ok, `the checkpoint of version ${version} reads back`);
  return read.checkpoint;
}

/** Σ examples·update / Σ examples over `names`: the plaintext mean of their updates, in float64. */
function meanOf(names: readonly string[]): { mean: Float64Array; weight: number } {
  const dim = reference.before.length;
  const mean = new Float64Array(dim);
  let weight = 0;
  for (const name of names) {
    const u = reference.updates.get(name) as ComputedUpdate;
    const w = Math.min(u.counts.examples, MAX_WEIGHT);
    weight += w;
    for (let i = 0; i < dim; i++) mean[i] = (mean[i] as number) + w * (u.update[i] as number);
  }
  for (let i = 0; i < dim; i++) mean[i] = (mean[i] as number) / weight;
  return { mean, weight };
}

/** Largest |after − (before − mean)| over the coordinates: how far `after` is from the plaintext SGD step. */
function offStep(before: Float32Array, after: Float32Array, mean: Float64Array): number {
  let off = 0;
  for (let i = 0; i < after.length; i++) off = Math.max(off, Math.abs((after[i] as number) - ((before[i] as number) - (mean[i] as number))));
  return off;
}

/**
 * The plaintext reference: the same coordinator settings (secure aggregation off) and the same five sites, in this
 * process, one round; every site's update is captured as it is computed.
 */
async function plaintextRound(): Promise<typeof reference> {
  await initRuntime({ backend: 'wasm' });
  const silent = createLogger('secagg-faults-reference', { level: 'silent' });
  const schema = builtinSchema('cicflowmeter');
  const settings = coordinatorSettings(join(dir, 'reference-state'), false);
  const config = loadCoordinatorConfig({ env: {}, flags: { ...settings, server: { host: '127.0.0.1', port: 0, allowInsecureHttp: true }, logLevel: 'silent' } });
  const c = await startCoordinator(config, { logger: silent });
  const updates = new Map<string, ComputedUpdate>();
  const started: SiteAgent[] = [];
  try {
    for (const site of sites) {
      const { token } = await addSite(c.store, site.name);
      const flags = { ...agentSettings(site, `http://127.0.0.1:${c.port}`), stateDir: join(dir, 'reference-agents', site.name), enrollmentToken: token };
      const agentConfig = loadAgentConfig({ env: {}, flags });
      const siteSeed = agentConfig.seed as number;
      const data = await loadSiteData({ files: agentConfig.data.files, schema, maxPerFamily: agentConfig.data.maxPerFamily, seed: siteSeed, logger: silent });
      const a = new SiteAgent({ config: agentConfig, schema, schemaFingerprint: fingerprint, data, siteSeed, logger: silent, onComputed: (u) => updates.set(site.name, u) });
      started.push(a);
      await a.start();
    }
    await until(() => (c.hub.online().length === SITES.length ? true : undefined), 20_000, 'the reference agents online');
    const before = c.engine.params();
    const record = await c.engine.runRound();
    assert.equal(record.status, 'committed');
    assert.equal(record.accepted, SITES.length);
    return { updates, before, after: c.engine.params() };
  } finally {
    await Promise.all(started.map((a) => a.stop()));
    await c.close();
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedmeta-secagg-faults-'));
  dataDir = join(dir, 'coordinator-state');
  sites = writeSiteFiles(dir, FAMILIES, 20);
  const store = new FileStateStore(dataDir);
  await store.open();
  for (const name of SITES) tokens.set(name, (await addSite(store, name)).token);
  await store.close();
  configFile = writeJson(join(dir, 'coordinator.json'), {
    ...coordinatorSettings(dataDir, true),
    server: { host: '127.0.0.1', port: 0, allowInsecureHttp: true },
    adminToken: ADMIN_TOKEN,
  });
});

after(async () => {
  await group.killAll();
  for (const r of relays) await r.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('round 0: one agent killed after its shares, one after its masked update; the round commits with the plaintext mean step of the sites in the sum', { timeout: 90_000 }, async () => {
  reference = await plaintextRound();
  for (const u of reference.updates.values()) {
    // Below the bounds, clipping and the weight cap change nothing: the secure mean is the plaintext one.
    assert.ok(l2(u.update) < CLIP, `an update of norm ${l2(u.update)} would be clipped`);
    assert.ok(u.counts.examples <= MAX_WEIGHT);
  }

  const c = spawnCoordinator({ FEDMETA_TEST_CRASH_AT: CRASH_AT });
  ({ port } = await waitReady(c));
  const url = `http://127.0.0.1:${port}`;
  admin = new AdminClient(url, ADMIN_TOKEN);
  const relay = async (r: Relay): Promise<string> => {
    relays.push(r);
    return `http://127.0.0.1:${await r.start()}`;
  };
  const killed = new Map<string, { first: Relay; next: Relay }>();
  const first = (site: string): Child => (agents.get(site) as Child[])[0] as Child;
  killed.set(DROPOUT, { first: new Relay(port, { event: 'secagg-delivery', kill: () => first(DROPOUT).signal('SIGKILL') }), next: new Relay(port) });
  killed.set(LATE, { first: new Relay(port, { event: 'secagg-survivors', kill: () => first(LATE).signal('SIGKILL') }), next: new Relay(port) });
  for (const site of sites) {
    const k = killed.get(site.name);
    startAgent(site, k ? await relay(k.first) : url);
  }
  await until(allOnline, 60_000, 'five agents online');
  for (const name of killed.keys()) await first(name).waitForLog((l) => String(l['msg']).startsWith('enrolled'), 10_000, 'its credential stored');

  await admin.post('rounds', { count: 1 });
  // Each killed site's next process, on the same state directory (its credential, none of its round keys), starts
  // once the first is dead: the state directory's lock refuses a second agent while the first holds it.
  await Promise.all(
    [...killed].map(async ([name, k]) => {
      await until(() => (k.first.fired ? true : undefined), 30_000, `${name} reached its kill point`);
      assert.equal((await first(name).exited).signal, 'SIGKILL');
      k.next.open();
      startAgent(sites.find((site) => site.name === name) as SiteFile, await relay(k.next));
    }),
  );

  const s = await committed(1, 30_000);
  const r = s.lastRound as Round;
  const inSum = SITES.filter((site) => site !== DROPOUT);
  assert.deepEqual([r.round, r.status, r.sampled], [0, 'committed', SITES]);
  assert.equal(r.accepted, 4, 'the four sites whose masked update reached the coordinator');
  assert.deepEqual(r.sites.map((m) => m.siteId).sort(), inSum);
  assert.deepEqual(r.secureAggregation, {
    roster: 5,
    threshold: 3,
    degree: 0,
    clipNorm: CLIP,
    maxWeight: MAX_WEIGHT,
    contributors: 4,
    dropped: { share: 0, mask: 1, confirm: 1, unmask: 0 },
    plaintextPerSite: r.secureAggregation?.plaintextPerSite,
  });
  assert.deepEqual(r.rejected, { FEDMETA_ERR_SECAGG_DROPPED: 2 });

  // The step: the coordinator's parameters before and after, read from its checkpoints.
  const [v0, v1] = [await checkpoint(0), await checkpoint(1)];
  assert.deepEqual(v0.params, reference.before, 'both runs start from the same parameters');
  assert.ok(offStep(reference.before, reference.after, meanOf(SITES).mean) < 1e-6, 'the reference commit is the SGD step of the example-weighted mean');
  const { mean, weight } = meanOf(inSum);
  const tolerance = makeQuantizer(SITES.length, CLIP, MAX_WEIGHT).sumError / weight + 1e-6;
  const off = offStep(v0.params, v1.params, mean);
  assert.ok(off < tolerance, `the committed step is ${off} from the plaintext mean step of the four sites in the sum (quantization bound ${tolerance})`);
  // The comparison tells the sets apart: with the dropout's update, or without the late site's, the step differs.
  assert.ok(offStep(v0.params, v1.params, meanOf(SITES).mean) > 20 * tolerance, 'the dropout\'s update is not in the sum');
  assert.ok(offStep(v0.params, v1.params, meanOf(inSum.filter((site) => site !== LATE)).mean) > 20 * tolerance, 'the late site\'s update is in the sum');
  committedV1 = v1.params;
});

test('the killed agents, restarted without their keys, leave round 0 alone and take part in round 1', { timeout: 60_000 }, async () => {
  // The dropout came back while round 0 was still in its secure phases: it held no keys, and the round committed.
  const dropoutAgain = agent(DROPOUT);
  const welcomed = await dropoutAgain.waitForLog((l) => l['msg'] === 'welcomed by the coordinator', 30_000, 'its welcome');
  assert.equal(welcomed['round'], 0, 'the restarted dropout reconnected during round 0');

  await until(allOnline, 30_000, 'the restarted agents online');
  await admin.post('rounds', { count: 1 });
  const s = await committed(2, 40_000);
  const r = s.lastRound as Round;
  assert.deepEqual([r.round, r.status, r.accepted], [1, 'committed', 5]);
  assert.equal(r.secureAggregation?.contributors, 5, 'both restarted agents are in the sum');
  assert.deepEqual(r.secureAggregation?.dropped, { share: 0, mask: 0, confirm: 0, unmask: 0 });
  assert.deepEqual(r.rejected, {});
  for (const name of [DROPOUT, LATE]) {
    await agent(name).waitForLog((l) => l['msg'] === 'update accepted by the coordinator' && l['round'] === 1, 10_000, 'its round 1 update accepted');
  }
});

test('kill -9 of the coordinator while it unmasks round 2, then a restart: no committed round is lost, the round is re-issued and rounds go on securely', { timeout: 90_000 }, async () => {
  const stateBefore = (await status()).state;
  assert.equal(stateBefore?.version, 2);
  const first = coordinators[0] as Child;
  await admin.post('rounds', { count: 2 });
  await until(() => (first.running ? undefined : true), 40_000, 'the coordinator killed by its crash hook');
  assert.equal((await first.exited).signal, 'SIGKILL');
  await until(() => (first.err.some((l) => l.includes('SIGKILL at secure-unmask #3')) ? true : undefined), 5_000, 'the hook\'s word that it killed the coordinator in round 2\'s unmasking');

  const store = new FileStateStore(dataDir);
  const report = await store.open();
  try {
    assert.equal(report.tookOverLockFrom, first.pid);
    const latest = store.latest() as Checkpoint;
    assert.deepEqual([latest.version, latest.nextRound], [2, 2], 'the last commit is the state on disk');
    assert.deepEqual(
      latest.history.map((h) => [h.round, h.status, h.secureAggregation?.contributors]),
      [[0, 'committed', 4], [1, 'committed', 5]],
    );
    const journal = (await store.readJournal()) as { type?: string; round?: number; attempt?: number }[];
    assert.ok(journal.some((e) => e.type === 'round-started' && e.round === 2 && e.attempt === 0), 'the crash fell inside round 2, attempt 0');
    assert.deepEqual(digestState(latest.version, latest.params, latest.optimizer), stateBefore);
  } finally {
    await store.close();
  }

  const second = spawnCoordinator({}, ['--server.port', String(port)]);
  const { ready } = await waitReady(second);
  assert.deepEqual([ready['restored'], ready['version']], [true, 2]);
  const restored = await status();
  assert.equal(restored.nextRound, 2, 'it resumes from the last committed round');
  assert.deepEqual(restored.state, stateBefore);

  await until(allOnline, 30_000, 'the agents reconnected');
  await admin.post('rounds', { count: 2 });
  const s = await committed(4, 60_000);
  const r = s.lastRound as Round;
  assert.deepEqual([r.round, r.fromVersion, r.status, r.secureAggregation?.contributors], [3, 3, 'committed', 5]);
  const started = second.logLines().filter((l) => l['msg'] === 'round started').map((l) => [l['round'], l['attempt']]);
  // The interrupted attempt is re-issued under its own number (sampled as it was), with a fresh round id and keys.
  assert.deepEqual(started, [[2, 0], [3, 0]], 'round 2 is re-issued');
  const reused = SITES.filter((name) => agent(name).logLines().some((l) => l['round'] === 2 && String(l['msg']).startsWith('a new attempt of a securely aggregated round')));
  assert.deepEqual(reused, SITES, 'every site joined the re-issued attempt with new keys and the update it had computed for round 2');
  const v1 = await checkpoint(1);
  assert.deepEqual(v1.params, committedV1, 'version 1 is as it was committed');
  const v3 = await checkpoint(3);
  assert.deepEqual([v3.history.at(-1)?.round, v3.history.at(-1)?.secureAggregation?.contributors], [2, 5]);
});

function l2(v: Float32Array): number {
  let sq = 0;
  for (const x of v) sq += x * x;
  return Math.sqrt(sq);
}

/**
 * A TCP relay on loopback between one agent process and the coordinator. With `killOn` it kills the agent (SIGKILL)
 * when the coordinator sends it that socket.io event, and drops the message: the agent dies having answered every
 * phase before, and never sees this one (socket.io names the event in a text frame, in the clear: no compression on
 * this link); it fires once. Without, it cuts every connection until `open()`, then relays.
 */
class Relay {
  fired = false;
  private admitting: boolean;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly port: number,
    private readonly killOn?: { event: string; kill: () => void },
  ) {
    this.admitting = killOn !== undefined;
    this.server = createServer((client) => this.relay(client));
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  open(): void {
    this.admitting = true;
  }

  private relay(client: Socket): void {
    if (!this.admitting) {
      client.destroy();
      return;
    }
    const upstream = connect(this.port, '127.0.0.1');
    for (const s of [client, upstream]) this.sockets.add(s);
    const needle = this.killOn ? `"${this.killOn.event}"` : null;
    let tail = '';
    upstream.on('data', (d: Buffer) => {
      if (needle !== null && !this.fired) {
        const text = tail + d.toString('latin1');
        if (text.includes(needle)) {
          this.fired = true;
          this.killOn?.kill();
          end();
          return;
        }
        tail = text.slice(-needle.length);
      }
      client.write(d);
    });
    client.on('data', (d: Buffer) => upstream.write(d));
    const end = (): void => {
      for (const s of [client, upstream]) {
        s.destroy();
        this.sockets.delete(s);
      }
    };
    for (const s of [client, upstream]) {
      s.on('close', end);
      s.on('error', end);
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
