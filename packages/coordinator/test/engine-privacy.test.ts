// Differential privacy in real rounds: central DP's clipping and noise in the aggregate, the accountant in the
// checkpoint (across a restart), the budget stop, and the config rules that refuse what DP cannot cover.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, RdpAccountant, seededNoise } from '@fedmeta/shared';
import type { NoiseSource } from '@fedmeta/shared';
import { RoundEngine } from '../src/engine/round-engine.js';
import { createMemoryHub } from '../src/engine/memory-hub.js';
import type { EngineConfig } from '../src/engine/config.js';
import type { RoundOffer, SiteUpdate } from '../src/engine/hub.js';
import { PrivacyLedger, noiseSecureSum } from '../src/engine/privacy.js';
import type { DpConfig, PrivacyExtension } from '../src/engine/privacy.js';
import { RoundRunner } from '../src/admin/round-runner.js';
import { formatJob, formatPrivacy } from '../src/cli/format.js';
import { privacyView } from '../src/metrics/privacy.js';
import { FileStateStore } from '../src/state/file-store.js';
import type { Checkpoint } from '../src/state/types.js';
import { coordinatorConfigSchema, COORDINATOR_DEFAULTS } from '../src/config-schema.js';
import { MemoryStore } from './helpers/memory-store.js';
import { captureLogger, engineConfig, flush, initialCheckpoint, quadraticSite, vec } from './helpers/engine-fixtures.js';

const SITES = ['berlin', 'lyon', 'madrid', 'oslo', 'porto'];
const DELTA = 1e-5;

function dp(over: Partial<DpConfig> = {}): DpConfig {
  return { mode: 'central', clipNorm: 1, noiseMultiplier: 1.1, delta: DELTA, epsilonBudget: 100, ...over };
}

/** Five sites answering with the gradient of ||p - target||² (norms far above the clip bound). */
function federation(dim: number) {
  const m = createMemoryHub();
  SITES.forEach((name, i) => m.connect(name, quadraticSite(vec(dim, (j) => 10 * Math.sin(i + j)))));
  return m;
}

/** Sampling 3 of the 5 online sites each round: the accountant's rate is 3/5. */
const sampled3 = (privacy: DpConfig): EngineConfig =>
  engineConfig({ sampleFraction: 0.6, minSites: 3, quorum: { kind: 'count', value: 3 } }, { privacy, optimizer: { kind: 'sgd', lr: 0.1 } });

const ext = (cp: Checkpoint | null): PrivacyExtension => cp?.extensions?.['privacy'] as PrivacyExtension;

function epsilonAfter(noiseMultiplier: number, rate: number, rounds: number): number {
  const acc = new RdpAccountant();
  acc.step(noiseMultiplier, rate, rounds);
  return acc.epsilon(DELTA).epsilon;
}

function norm(v: Float32Array | Float64Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

test('central DP: each accepted update contributes at most the clip bound, in its own direction, divided by the sampled sites', async () => {
  const DIM = 16;
  const clipNorm = 0.5;
  // Site i's update lives in coordinates 4i..4i+3 only, so each site's contribution can be read off the aggregate.
  const blocks: Record<string, Float32Array> = {};
  const m = createMemoryHub();
  ['a', 'b', 'c', 'd'].forEach((name, i) => {
    const u = new Float32Array(DIM);
    for (let j = 0; j < 4; j++) u[4 * i + j] = i === 3 ? 0.01 * (j + 1) : 40 * (j + 1) * (i + 1); // d is inside the bound
    blocks[name] = u;
    m.connect(name, (offer: RoundOffer): SiteUpdate => ({
      round: offer.round, version: offer.version, counts: { episodes: 1, examples: 10 * (i + 1) }, metrics: { supportLoss: 1, queryLoss: 1 }, update: u.slice(),
    }));
  });
  const silence: NoiseSource = { normal: () => 0 };
  const config = engineConfig({ minSites: 4, quorum: { kind: 'count', value: 4 } }, { privacy: dp({ clipNorm }), optimizer: { kind: 'sgd', lr: 1 } });
  const engine = new RoundEngine({ store: new MemoryStore(), hub: m.hub, config, logger: captureLogger('silent').logger, noise: silence });
  await engine.init(initialCheckpoint(DIM - 1));
  const before = engine.params();
  await engine.runRound();
  const step = engine.params().map((p, i) => (before[i] as number) - p); // sgd lr 1: params - aggregate
  ['a', 'b', 'c', 'd'].forEach((name, i) => {
    const contribution = step.slice(4 * i, 4 * i + 4).map((x) => x * 4); // the sum is divided by the 4 sampled sites
    const raw = (blocks[name] as Float32Array).slice(4 * i, 4 * i + 4);
    assert.ok(norm(contribution) <= clipNorm * (1 + 1e-6), `${name}: contribution norm ${norm(contribution)} exceeds ${clipNorm}`);
    const expected = norm(raw) > clipNorm ? raw.map((x) => (x * clipNorm) / norm(raw)) : raw;
    contribution.forEach((x, j) => assert.ok(Math.abs(x - (expected[j] as number)) < 1e-6, `${name}[${j}]: ${x} vs ${expected[j]}`));
  });
});

test('central DP: the noise on the aggregate has standard deviation noiseMultiplier x clipNorm / sampled sites', async () => {
  const DIM = 20_000;
  const noiseMultiplier = 0.8;
  const clipNorm = 2;
  // Four sites sampled, three answer with zero updates: the divisor is the 4 sampled, not the 3 that answered.
  const m = createMemoryHub();
  ['a', 'b', 'c', 'd'].forEach((name) =>
    m.connect(name, (offer: RoundOffer) =>
      name === 'd' ? null : { round: offer.round, version: offer.version, counts: { episodes: 1, examples: 5 }, metrics: { supportLoss: 1, queryLoss: 1 }, update: new Float32Array(DIM) },
    ),
  );
  const config = engineConfig(
    { minSites: 4, quorum: { kind: 'count', value: 3 }, deadlineSeconds: 0.3 },
    { privacy: dp({ noiseMultiplier, clipNorm }), optimizer: { kind: 'sgd', lr: 1 } },
  );
  // The engine's default source: the operating system's generator.
  const engine = new RoundEngine({ store: new MemoryStore(), hub: m.hub, config, logger: captureLogger('silent').logger });
  await engine.init(initialCheckpoint(DIM - 1));
  const r = await engine.runRound();
  assert.equal(r.accepted, 3);
  const noise = engine.params();
  let sum = 0;
  for (const x of noise) sum += x;
  const mean = sum / DIM;
  let sq = 0;
  for (const x of noise) sq += (x - mean) ** 2;
  const std = Math.sqrt(sq / (DIM - 1));
  const expected = (noiseMultiplier * clipNorm) / 4;
  // The sample standard deviation of n normals has relative standard error 1/sqrt(2n) = 0.5%: 2.5% is 5 of them.
  assert.ok(Math.abs(std / expected - 1) < 0.025, `std ${std} vs ${expected}`);
  assert.ok(Math.abs(mean) < (5 * expected) / Math.sqrt(DIM), `mean ${mean}`);
});

test('central DP on a secure sum: the same noise, N(0, (σC)²) per coordinate of the sum, divided by the sites', () => {
  const dim = 20_000;
  const sum = new Float64Array(dim).fill(3);
  const out = noiseSecureSum(sum, 4, { clipNorm: 2, noiseMultiplier: 0.8 }, seededNoise(7));
  const residual = Array.from(out, (x) => x - 3 / 4);
  const mean = residual.reduce((a, b) => a + b, 0) / dim;
  const std = Math.sqrt(residual.reduce((a, b) => a + (b - mean) ** 2, 0) / (dim - 1));
  assert.ok(Math.abs(std / ((0.8 * 2) / 4) - 1) < 0.025, `std ${std}`);
  assert.ok(Math.abs(mean) < (5 * 0.4) / Math.sqrt(dim), `mean ${mean}`);
});

test('central DP: ε after every round is the accountant\'s for one sampled Gaussian mechanism per round, in the record, the checkpoint and the log', async () => {
  const sigma = 1.1;
  const log = captureLogger('info');
  const engine = new RoundEngine({ store: new MemoryStore(), hub: federation(8).hub, config: sampled3(dp({ noiseMultiplier: sigma })), logger: log.logger, noise: seededNoise(1) });
  await engine.init(initialCheckpoint(7));
  const records = await engine.runRounds(5);
  records.forEach((r, i) => {
    const expected = epsilonAfter(sigma, 0.6, i + 1);
    assert.equal(r.sampled.length, 3);
    assert.ok(Math.abs((r.privacy?.epsilon as number) - expected) <= 1e-12 * expected, `round ${i}: ${r.privacy?.epsilon} vs ${expected}`);
    assert.deepEqual({ delta: r.privacy?.delta, budget: r.privacy?.budget }, { delta: DELTA, budget: 100 });
  });
  const e = ext(engine.checkpoint());
  assert.equal(e.epsilon, records[4]?.privacy?.epsilon);
  assert.equal(e.delta, DELTA);
  assert.equal(e.budget, 100);
  assert.deepEqual(e.accountant?.history, [{ noiseMultiplier: sigma, samplingRate: 0.6, steps: 5 }]);
  // What the metrics and the dashboard read.
  assert.deepEqual(privacyView(engine.checkpoint()), { enabled: true, epsilonSpent: e.epsilon, delta: DELTA, epsilonBudget: 100 });
  const committed = log.lines().filter((l) => l['msg'] === 'round committed');
  assert.deepEqual(committed.map((l) => (l['privacy'] as { epsilon: number }).epsilon), records.map((r) => r.privacy?.epsilon));
});

test('the accountant survives a restart: the same ε, and the rounds after it spend as if never stopped', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'fedmeta-dp-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const logger = captureLogger('silent').logger;
  const config = sampled3(dp());
  const open = async (dir: string) => {
    const store = new FileStateStore(join(root, dir));
    await store.open();
    return store;
  };

  const s1 = await open('a');
  const first = new RoundEngine({ store: s1, hub: federation(8).hub, config, logger });
  await first.init(initialCheckpoint(7));
  await first.runRounds(3);
  const before = ext(first.checkpoint());
  first.close();
  await s1.close();

  const s2 = await open('a');
  const second = new RoundEngine({ store: s2, hub: federation(8).hub, config, logger });
  await second.init(initialCheckpoint(7));
  const restored = ext(second.checkpoint());
  assert.equal(restored.epsilon, before.epsilon);
  assert.deepEqual(restored.accountant, before.accountant, 'the accountant state is stored exactly');
  const after = await second.runRounds(2);
  assert.equal(after[1]?.privacy?.epsilon, epsilonAfter(1.1, 0.6, 5));
  await s2.close();

  const s3 = await open('b');
  const straight = new RoundEngine({ store: s3, hub: federation(8).hub, config, logger });
  await straight.init(initialCheckpoint(7));
  const all = await straight.runRounds(5);
  assert.equal(all[4]?.privacy?.epsilon, after[1]?.privacy?.epsilon, 'same ε as a run that never stopped');
  await s3.close();
});

test('the budget stop: rounds stop before ε would pass the budget, with a coded error, and none starts after a restart', async () => {
  const sigma = 1.1;
  // A budget between ε after 3 and after 4 rounds: exactly 3 rounds fit.
  const budget = (epsilonAfter(sigma, 0.6, 3) + epsilonAfter(sigma, 0.6, 4)) / 2;
  const store = new MemoryStore();
  const config = sampled3(dp({ noiseMultiplier: sigma, epsilonBudget: budget }));
  const logger = captureLogger('silent').logger;
  const engine = new RoundEngine({ store, hub: federation(8).hub, config, logger });
  await engine.init(initialCheckpoint(7));
  const done: number[] = [];
  await assert.rejects(
    engine.runRounds(10, { onProgress: (r) => done.push(r.round) }),
    (e: Error & { code?: string }) => e.code === ErrorCode.PRIVACY_BUDGET && /privacy budget is spent/.test(e.message) && /no more rounds will run/.test(e.message),
  );
  assert.deepEqual(done, [0, 1, 2]);
  assert.equal(engine.status().version, 3);
  assert.ok(ext(engine.checkpoint()).epsilon <= budget);
  assert.equal(store.journalEntries().length, 0, 'the refused round was never journaled as started');

  // A restarted coordinator refuses the round too, before waiting for or asking any site.
  const offers: number[] = [];
  const m = federation(8);
  m.connect('watcher', (o) => void offers.push(o.round));
  const revived = new RoundEngine({ store, hub: m.hub, config, logger });
  await revived.init();
  await assert.rejects(revived.runRound(), (e: Error & { code?: string }) => e.code === ErrorCode.PRIVACY_BUDGET);
  assert.equal(revived.status().version, 3);
  assert.deepEqual(offers, []);

  // Continuous mode and `rounds run` report it in plain words; `status` shows the budget spent.
  const runner = new RoundRunner({ engine: revived, logger, online: () => 5, minOnline: 3 });
  runner.startContinuous();
  while (runner.running) await new Promise((r) => setTimeout(r, 5));
  assert.equal(runner.status().lastError?.code, ErrorCode.PRIVACY_BUDGET);
  assert.match(formatJob(runner.status()), /stopped: .*privacy budget is spent/);
  assert.match(formatPrivacy(privacyView(revived.checkpoint())), /^differential privacy: ε \d\.\d{3} of [\d.]+ spent at δ 0\.00001 \(\d+% of the budget\)$/);
});

test('a round sampled from fewer online sites costs more: the sampling rate is sampled / online', async () => {
  const m = federation(8);
  m.disconnect('porto');
  const engine = new RoundEngine({ store: new MemoryStore(), hub: m.hub, config: sampled3(dp()), logger: captureLogger('silent').logger });
  await engine.init(initialCheckpoint(7));
  const r = await engine.runRound();
  assert.equal(r.sampled.length, 3);
  assert.equal(r.privacy?.epsilon, epsilonAfter(1.1, 3 / 4, 1));
});

test('a ledger of another mode is refused at restart rather than forgotten', async () => {
  const store = new MemoryStore();
  const logger = captureLogger('silent').logger;
  const central = new RoundEngine({ store, hub: federation(8).hub, config: sampled3(dp()), logger });
  await central.init(initialCheckpoint(7));
  await central.runRound();
  const local = new RoundEngine({ store, hub: federation(8).hub, config: sampled3(dp({ mode: 'local' })), logger });
  await assert.rejects(local.init(), (e: Error & { code?: string }) => e.code === ErrorCode.CONFIG && /mode central/.test(e.message));
});

test('config: central DP is refused with aggregators whose sensitivity its noise does not cover, local DP with maml', () => {
  const parse = (over: Record<string, unknown>) => coordinatorConfigSchema.safeParse({ ...structuredClone(COORDINATOR_DEFAULTS), ...over });
  const privacy = (mode: string) => ({ ...structuredClone(COORDINATOR_DEFAULTS.privacy), dp: { ...COORDINATOR_DEFAULTS.privacy.dp, mode } });
  for (const aggregator of [{ kind: 'median' }, { kind: 'trimmed-mean', trim: 1 }, { kind: 'centered-clipping', tau: 1 }]) {
    const r = parse({ privacy: privacy('central'), aggregator, rounds: { ...COORDINATOR_DEFAULTS.rounds, minSites: 5 } });
    assert.equal(r.success, false, aggregator.kind);
    const issue = r.error?.issues.find((i) => i.path.join('.') === 'aggregator');
    assert.match(issue?.message ?? '', /central differential privacy .* use the mean or norm-clip aggregator/);
  }
  for (const aggregator of [{ kind: 'mean' }, { kind: 'norm-clip', maxNorm: 2 }]) {
    assert.equal(parse({ privacy: privacy('central'), aggregator }).success, true, aggregator.kind);
  }
  const maml = parse({ privacy: privacy('local'), rounds: { ...COORDINATOR_DEFAULTS.rounds, algorithm: 'maml' } });
  assert.equal(maml.success, false);
  assert.match(maml.error?.issues[0]?.message ?? '', /reptile or fomaml/);
  // The engine applies the same rule to a configuration given to it directly.
  assert.throws(
    () => new RoundEngine({ store: new MemoryStore(), hub: createMemoryHub().hub, config: { ...sampled3(dp()), aggregator: { kind: 'median' } }, logger: captureLogger('silent').logger }),
    (e: Error & { code?: string }) => e.code === ErrorCode.CONFIG && /median/.test(e.message),
  );
});

test('local DP: the task carries the DP-SGD settings, and each site\'s reports are accounted; the worst site\'s ε is the federation\'s', async () => {
  const sigma = 1.2;
  const rates: Record<string, number> = { a: 0.05, b: 0.2, c: 0.1 };
  const tasks: unknown[] = [];
  const m = createMemoryHub();
  for (const name of Object.keys(rates)) {
    m.connect(name, (offer: RoundOffer): SiteUpdate => {
      tasks.push(offer.task.dp);
      return {
        round: offer.round, version: offer.version, counts: { episodes: offer.task.episodes, examples: 20 }, metrics: { supportLoss: 1, queryLoss: 1 },
        update: new Float32Array(8).fill(0.1),
        privacy: { noiseMultiplier: sigma, clipNorm: 1, sampleRate: rates[name] as number, steps: 2 * offer.task.episodes },
      };
    });
  }
  const config = engineConfig(
    { minSites: 3, quorum: { kind: 'count', value: 3 }, algorithm: 'fomaml', innerSteps: 4, episodes: 3 },
    { privacy: dp({ mode: 'local', noiseMultiplier: sigma }) },
  );
  const engine = new RoundEngine({ store: new MemoryStore(), hub: m.hub, config, logger: captureLogger('silent').logger });
  await engine.init(initialCheckpoint(7));
  const records = await engine.runRounds(2);
  assert.deepEqual(tasks[0], { clipNorm: 1, noiseMultiplier: sigma });
  // Site b samples its records at the highest rate: its ε, computed independently, is the federation's.
  const b = new RdpAccountant();
  for (let r = 0; r < 2; r++) b.record([{ noiseMultiplier: sigma / 2, samplingRate: 0.2, steps: 3 }, { noiseMultiplier: sigma, samplingRate: 0.2, steps: 3 }]);
  const expected = b.epsilon(DELTA).epsilon;
  assert.ok(Math.abs((records[1]?.privacy?.epsilon as number) - expected) < 1e-12 * expected);
  const e = ext(engine.checkpoint());
  assert.equal(e.mode, 'local');
  assert.equal(e.worstSite, 'b');
  assert.deepEqual(Object.keys(e.sites ?? {}), ['a', 'b', 'c']);
});

test('local DP: an update seen in an aborted attempt is spent too, though its site is not in the attempt that commits', async () => {
  const sigma = 1.2;
  const accepted = new Map<string, number[]>(); // site -> the round of every update of it the coordinator accepted
  const m = createMemoryHub();
  for (const name of ['a', 'b', 'c', 'd', 'e']) {
    m.connect(
      name,
      (offer: RoundOffer): SiteUpdate | null =>
        name === 'd'
          ? null // d never answers: every attempt that samples it aborts, after the others' updates were seen
          : {
              round: offer.round, version: offer.version, counts: { episodes: offer.task.episodes, examples: 20 }, metrics: { supportLoss: 1, queryLoss: 1 },
              update: new Float32Array(8).fill(0.1), privacy: { noiseMultiplier: sigma, sampleRate: 0.1 },
            },
      { onAck: (ack) => ack.accepted && accepted.set(name, [...(accepted.get(name) ?? []), ack.round]) },
    );
  }
  const config = engineConfig(
    { sampleFraction: 0.6, minSites: 3, quorum: { kind: 'count', value: 3 }, deadlineSeconds: 0.15, maxConsecutiveAborts: 10, algorithm: 'reptile', innerSteps: 4, episodes: 2 },
    { privacy: dp({ mode: 'local', noiseMultiplier: sigma }), seed: 11 },
  );
  const engine = new RoundEngine({ store: new MemoryStore(), hub: m.hub, config, logger: captureLogger('silent').logger });
  await engine.init(initialCheckpoint(7));
  const records = await engine.runRounds(3);
  await flush(); // the last acks are still on their way
  const committedSites = records.map((r) => new Set(r.sites.map((s) => s.siteId)));
  const unseenByCommit = [...accepted].some(([site, rounds]) => rounds.some((r) => !committedSites[r]?.has(site)));
  assert.ok(unseenByCommit, 'some site was accepted in an aborted attempt only (this seed exercises the case)');
  const e = ext(engine.checkpoint());
  assert.deepEqual(Object.keys(e.sites ?? {}).sort(), [...accepted.keys()].sort());
  for (const [site, rounds] of accepted) {
    const expected = new RdpAccountant();
    expected.step(sigma / 2, 0.1, 2 * rounds.length); // reptile: one mechanism with σ/√4 per episode, 2 episodes per update
    const got = RdpAccountant.restore(e.sites?.[site]?.accountant).epsilon(DELTA).epsilon;
    assert.ok(Math.abs(got - expected.epsilon(DELTA).epsilon) < 1e-12, `${site}: ${got} after ${rounds.length} update(s)`);
  }
});

/** A local-DP update of 2 episodes from a site sampling its records at rate 0.1, with its own ledger's ε. */
function reportedUpdate(offer: Pick<RoundOffer, 'round' | 'version'>, sigma: number, epsilon: number, delta: number): SiteUpdate {
  return {
    round: offer.round, version: offer.version, counts: { episodes: 2, examples: 20 }, metrics: { supportLoss: 1, queryLoss: 1 },
    update: new Float32Array(8).fill(0.1), privacy: { noiseMultiplier: sigma, clipNorm: 1, sampleRate: 0.1, steps: 2, epsilon, delta },
  };
}

test('local DP: a site whose own ε disagrees with the coordinator\'s account of it is warned about with both figures, and the coordinator keeps its own', async () => {
  const sigma = 1.2;
  // reptile with 4 inner steps: per episode, one mechanism with σ/√4; 2 episodes per update.
  const oneUpdate = [{ noiseMultiplier: sigma / 2, samplingRate: 0.1, steps: 2 }];
  // Each site's own ledger: a's agrees up to rounding; b has counted one update this federation never saw;
  // c accounts at another δ, so its ε is not comparable.
  const own = { a: new RdpAccountant(), b: new RdpAccountant(), c: new RdpAccountant() };
  own.b.record(oneUpdate);
  const deltas = { a: DELTA, b: DELTA, c: 1e-3 };
  const m = createMemoryHub();
  for (const name of ['a', 'b', 'c'] as const) {
    m.connect(name, (offer: RoundOffer): SiteUpdate => {
      own[name].record(oneUpdate);
      const epsilon = own[name].epsilon(deltas[name]).epsilon * (name === 'a' ? 1 + 1e-9 : 1);
      return reportedUpdate(offer, sigma, epsilon, deltas[name]);
    });
  }
  const config = engineConfig(
    { minSites: 3, quorum: { kind: 'count', value: 3 }, algorithm: 'reptile', innerSteps: 4, episodes: 2 },
    { privacy: dp({ mode: 'local', noiseMultiplier: sigma }) },
  );
  const log = captureLogger('warn');
  const engine = new RoundEngine({ store: new MemoryStore(), hub: m.hub, config, logger: log.logger });
  await engine.init(initialCheckpoint(7));
  const records = await engine.runRounds(2);
  const warned = log.lines().filter((l) => l['siteEpsilon'] !== undefined);
  assert.deepEqual(warned.map((l) => l['site']), ['b', 'b'], 'one warning per committed round, for b only');
  const e = ext(engine.checkpoint());
  const account = RdpAccountant.restore(e.sites?.['b']?.accountant).epsilon(DELTA).epsilon;
  const last = warned[1] as Record<string, unknown>;
  assert.equal(last['level'], 40);
  assert.equal(last['coordinatorEpsilon'], account);
  assert.equal(last['siteEpsilon'], own.b.epsilon(DELTA).epsilon);
  assert.equal(last['delta'], DELTA);
  assert.ok((last['siteEpsilon'] as number) > account * 1.01);
  assert.match(last['msg'] as string, /site b reports ε = .* this coordinator accounts ε = .* keeps its own figure/);
  // The federation's ε is the coordinator's own account (all three sites ran the same mechanisms), not b's claim.
  assert.equal(records[1]?.privacy?.epsilon, account);
});

test('local DP: a site\'s own ε is not compared in a round where it sent several updates (the coordinator counts each, the site the first)', () => {
  const sigma = 1.2;
  const ledger = PrivacyLedger.fromExtensions({ ...dp({ mode: 'local', noiseMultiplier: sigma }), mode: 'local' }, undefined);
  const log = captureLogger('warn');
  const at = { round: 0, version: 0 };
  const next = ledger.afterLocalRound(
    { algorithm: 'reptile', innerSteps: 4 },
    [['twice', reportedUpdate(at, sigma, 99, DELTA)], ['twice', reportedUpdate(at, sigma, 99, DELTA)], ['once', reportedUpdate(at, sigma, 99, DELTA)]],
    log.logger,
  );
  assert.deepEqual(log.lines().map((l) => l['site']), ['once']);
  const twice = new RdpAccountant();
  twice.step(sigma / 2, 0.1, 4);
  assert.equal(next.report().epsilon, twice.epsilon(DELTA).epsilon, 'both updates of the site are spent');
});
