// Record-level DP end to end in process: the round engine offers a task with DP-SGD settings over the in-memory
// hub, real site trainers (the agent's computeUpdate on CIC-IDS2017 flows) run DP-SGD and report what they spent,
// the reports survive the protocol's encoding, and the coordinator accounts every site and commits the round.
// Over several rounds, the agent's round worker keeps each site's own ledger on disk, and the site's ε and the
// coordinator's account of it agree after every round.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { RdpAccountant, builtinSchema, decodeMessage, encodeMessage, initParams, initRuntime, seededNoise } from '@fedmeta/shared';
import type { AckMessage, Logger, ModelSpec, RoundOfferMessage, RoundTask } from '@fedmeta/shared';
import { RoundEngine, createMemoryHub } from '@fedmeta/coordinator';
import type { Checkpoint, MemoryHub, RoundOffer, SiteUpdate } from '@fedmeta/coordinator';
import { SitePrivacyLedger, computeUpdate, ledgerPath, loadSiteData, siteHoldout } from '@fedmeta/site-agent';
import type { ComputedUpdate, SiteData } from '@fedmeta/site-agent';
import { RoundWorker } from '../packages/site-agent/src/rounds.js';
import { updateMessages } from '../packages/site-agent/src/uplink.js';
import { MemoryStore } from '../packages/coordinator/test/helpers/memory-store.js';
import { captureLogger } from '../packages/coordinator/test/helpers/engine-fixtures.js';
import { siteCsv, tempDir, writeText } from '../packages/site-agent/test/fixtures.js';

const schema = builtinSchema('cicflowmeter');
const spec: ModelSpec = { inputDim: 85, hidden: [16], activation: 'relu', task: { kind: 'binary' } };
const SITES = ['office-a', 'office-b', 'office-c'];
const SIGMA = 1.3;
const DELTA = 1e-5;
const rounds = { sampleFraction: 1, minSites: 3, quorum: { kind: 'count' as const, value: 3 }, deadlineSeconds: 20, maxConsecutiveAborts: 1, algorithm: 'fomaml' as const, innerSteps: 3, innerLr: 0.05, shots: 4, queryShots: 6, episodes: 2 };
const data = new Map<string, SiteData>();
const WIRE = { maxBytes: 1 << 20 };

before(async () => {
  await initRuntime();
  const dir = tempDir({ after: () => undefined });
  for (const [i, name] of SITES.entries()) {
    // Sites of different sizes: their sampling rates, and so their ε, differ.
    data.set(name, await loadSiteData({ files: [writeText(dir, `${name}.csv`, siteCsv(12 + 6 * i, 40 * i))], schema, seed: 10 + i }));
  }
});

function initial(): Checkpoint {
  const { manifest, values } = initParams(spec, 5);
  return {
    formatVersion: 1, version: 0, nextRound: 0, spec, manifest, params: values,
    optimizerConfig: { kind: 'sgd', lr: 1 }, optimizer: { kind: 'sgd', step: 0, buffers: {} }, aggregator: { kind: 'mean' },
    rngState: [], schemaFingerprint: 'test', history: [], released: [], createdAt: '2024-01-01T00:00:00.000Z',
  };
}

/** The largest inclusion probability of a record of this site in one episode, recomputed from its training rows. */
function expectedRate(name: string): number {
  const { train } = siteHoldout((data.get(name) as SiteData).table, 100);
  const sizes = new Map<string, number>();
  for (let i = 0; i < train.n; i++) {
    const key = train.labels[i] === 0 ? 'benign' : `f${train.family[i]}`;
    sizes.set(key, (sizes.get(key) ?? 0) + 1);
  }
  return Math.min(1, Math.max(rounds.shots, rounds.queryShots) / Math.min(...sizes.values()));
}

/** The offer's task as the wire carries it: the task's DP settings pass the protocol's schema. */
function wireTask(offer: RoundOffer): RoundTask {
  const wire: RoundOfferMessage = { type: 'round-offer', round: offer.round, version: offer.version, task: offer.task, spec: offer.spec, manifest: offer.manifest, params: offer.params, chunks: 0, deadline: Math.round(offer.deadline) };
  return (decodeMessage(encodeMessage(wire), WIRE) as RoundOfferMessage).task;
}

/** The coordinator's round engine under record-level DP, over the in-memory hub. */
function localDpEngine(m: MemoryHub, logger: Logger, epsilonBudget = 50): RoundEngine {
  return new RoundEngine({
    store: new MemoryStore(),
    hub: m.hub,
    config: { rounds, aggregator: { kind: 'mean' }, optimizer: { kind: 'sgd', lr: 1 }, seed: 3, privacy: { mode: 'local', clipNorm: 0.5, noiseMultiplier: SIGMA, delta: DELTA, epsilonBudget } },
    logger,
  });
}

test('local DP: sites run DP-SGD as the task asks, report their accounting through the protocol, and the round commits with the worst site\'s ε', async () => {
  const errors: unknown[] = [];
  // A site that throws stays silent; close the engine so the test fails with its error, not after the deadline.
  let engine: RoundEngine | null = null;
  const m = createMemoryHub({ onSiteError: (_site, e) => { errors.push(e); engine?.close(); } });
  const sent: SiteUpdate[] = [];
  const offered: RoundTask[] = [];
  SITES.forEach((name, i) => {
    m.connect(name, async (offer: RoundOffer): Promise<SiteUpdate> => {
      const task = wireTask(offer);
      offered.push(task);
      const u = await computeUpdate({ ...offer, task }, data.get(name) as SiteData, { siteSeed: 100, noise: seededNoise(i) });
      // And the update with its privacy report, as the agent sends it.
      const header = decodeMessage(encodeMessage(updateMessages(u).header), WIRE);
      assert.equal(header.type, 'update');
      const update: SiteUpdate = { round: u.round, version: u.version, counts: u.counts, metrics: { supportLoss: u.metrics.supportLoss, queryLoss: u.metrics.queryLoss }, update: u.update };
      if (header.type === 'update' && header.privacy) update.privacy = header.privacy;
      sent.push(update);
      return update;
    });
  });
  engine = localDpEngine(m, captureLogger('silent').logger);
  await engine.init(initial());
  const record = await engine.runRound().catch((e: unknown) => {
    throw errors[0] ?? e;
  });
  assert.equal(record.status, 'committed');
  assert.equal(record.accepted, 3);
  assert.deepEqual(offered[0]?.dp, { clipNorm: 0.5, noiseMultiplier: SIGMA });

  for (const u of sent) {
    assert.equal(u.privacy?.noiseMultiplier, SIGMA);
    assert.equal(u.privacy?.clipNorm, 0.5);
    // fomaml: per episode, the inner steps on the support sample and one step on the query sample.
    assert.equal(u.privacy?.steps, 2 * rounds.episodes);
  }
  const rates = SITES.map(expectedRate);
  assert.deepEqual(sent.map((u) => u.privacy?.sampleRate).sort(), [...rates].sort());
  assert.ok(new Set(rates).size > 1, 'the sites sample their records at different rates');

  const eps = rates.map((q) => {
    const acc = new RdpAccountant();
    acc.record([{ noiseMultiplier: SIGMA / Math.sqrt(rounds.innerSteps), samplingRate: q, steps: rounds.episodes }, { noiseMultiplier: SIGMA, samplingRate: q, steps: rounds.episodes }]);
    return acc.epsilon(DELTA).epsilon;
  });
  const worst = Math.max(...eps);
  assert.ok(Math.abs((record.privacy?.epsilon as number) - worst) < 1e-12 * worst, `${record.privacy?.epsilon} vs ${worst}`);
  const ext = engine.checkpoint()?.extensions?.['privacy'] as { worstSite: string; epsilon: number };
  assert.equal(ext.worstSite, SITES[eps.indexOf(worst)]);
  assert.equal(ext.epsilon, record.privacy?.epsilon);
});

test('local DP: the site clips every example\'s gradient, so a reptile update moves at most innerSteps x innerLr x clipNorm (plus noise)', async () => {
  const { manifest, values } = initParams(spec, 5);
  const task: RoundTask = { algorithm: 'reptile', innerSteps: 3, innerLr: 0.05, shots: 4, queryShots: 6, episodes: 2, seed: 9 };
  const offer = { round: 0, version: 0, spec, manifest, params: values };
  const site = data.get('office-a') as SiteData;
  const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  const clipNorm = 1e-3;
  const plain = await computeUpdate({ ...offer, task }, site, { siteSeed: 100 });
  const dp = await computeUpdate({ ...offer, task: { ...task, dp: { clipNorm, noiseMultiplier: 1e-9 } } }, site, { siteSeed: 100, noise: seededNoise(1) });
  const bound = task.innerSteps * task.innerLr * clipNorm;
  assert.ok(norm(plain.update) > 10 * bound, 'without DP the update is far larger than the bound');
  assert.ok(norm(dp.update) <= bound * (1 + 1e-4), `DP-SGD update norm ${norm(dp.update)} exceeds ${bound}`);
  assert.equal(plain.privacy, undefined);
  assert.equal(dp.privacy?.steps, task.episodes);
});

/** Relative difference of two ε. */
const relDiff = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b));

/**
 * A site as the agent runs it: its round worker checks the task's DP-SGD against the site's own budget, trains,
 * charges the site's ledger (a file in its state directory) and only then sends; the update travels through
 * the protocol's encoding to the in-memory hub, and the coordinator's verdict comes back as the worker's ack.
 */
function agentSite(m: MemoryHub, name: string, stateDir: string, budget: number) {
  const log = captureLogger('info');
  const sent: ComputedUpdate[] = [];
  let reply: ((u: SiteUpdate | null) => void) | null = null;
  let ack: ((a: AckMessage) => void) | null = null;
  let ledger: Promise<SitePrivacyLedger> | undefined;
  const worker = new RoundWorker({
    logger: log.logger,
    train: { siteSeed: 100, schemaName: 'cicflowmeter', noise: seededNoise(20 + SITES.indexOf(name)) },
    data: () => Promise.resolve(data.get(name) as SiteData),
    send: (u) =>
      new Promise<AckMessage>((resolve) => {
        sent.push(u);
        const header = decodeMessage(encodeMessage(updateMessages(u).header), WIRE);
        assert.ok(header.type === 'update' && header.update !== null && header.privacy !== null);
        ack = resolve;
        reply?.({ round: header.round, version: header.version, counts: header.counts, metrics: header.metrics, update: header.update, privacy: header.privacy });
      }),
    sendSecAgg: () => Promise.reject(new Error('this federation does not aggregate securely')),
    credential: () => undefined,
    chunkValues: () => 1 << 18,
    ledger: () => (ledger ??= SitePrivacyLedger.open(ledgerPath(stateDir), { epsilonBudget: budget, delta: DELTA })),
  });
  m.connect(
    name,
    (offer: RoundOffer) =>
      new Promise<SiteUpdate | null>((resolve) => {
        reply = resolve;
        worker.offer({ ...offer, task: wireTask(offer) });
        // A site that declines or fails the round stays silent (its log says why).
        void worker.settled().then(() => resolve(null));
      }),
    { onAck: (a) => ack?.({ type: 'ack', round: a.round, accepted: a.accepted, ...(a.error ? { error: a.error } : {}) }) },
  );
  return {
    log,
    sent,
    /** ε from the site's ledger as it stands on disk. */
    epsilon: async () => (await SitePrivacyLedger.open(ledgerPath(stateDir), { epsilonBudget: budget, delta: DELTA })).report().epsilon,
  };
}

test('local DP over several rounds: after every committed round, each site\'s own ledger and the coordinator\'s account of it give the same ε, and the federation\'s ε is the largest', async (t) => {
  const ROUNDS = 3;
  const budget = 1000;
  const m = createMemoryHub();
  const sites = SITES.map((name) => agentSite(m, name, tempDir(t), budget));
  const coordinatorLog = captureLogger('info');
  const engine = localDpEngine(m, coordinatorLog.logger, budget);
  await engine.init(initial());
  const previous = new Map<string, number>();
  for (let r = 0; r < ROUNDS; r++) {
    const record = await engine.runRound();
    assert.equal(record.status, 'committed', `round ${r}: ${record.reason ?? ''}`);
    assert.equal(record.accepted, SITES.length);
    const ext = engine.checkpoint()?.extensions?.['privacy'] as { epsilon: number; sites: Record<string, { accountant: unknown }> };
    const accounted: number[] = [];
    for (const [i, name] of SITES.entries()) {
      const site = sites[i]!;
      const coordinator = RdpAccountant.restore(ext.sites[name]?.accountant).epsilon(DELTA).epsilon;
      const own = await site.epsilon();
      assert.ok(relDiff(own, coordinator) <= 1e-9, `round ${r}, ${name}: the site's ledger says ε = ${own}, the coordinator ${coordinator}`);
      // What the site reported with this round's update is its ledger after the charge.
      const report = site.sent[r]?.privacy;
      assert.equal(site.sent.length, r + 1);
      assert.equal(report?.epsilon, own);
      assert.equal(report?.delta, DELTA);
      assert.ok(own > (previous.get(name) ?? 0), `${name} spends privacy in every round`);
      previous.set(name, own);
      accounted.push(coordinator);
    }
    assert.ok(new Set(accounted).size > 1, 'the sites have spent different ε');
    assert.equal(record.privacy?.epsilon, Math.max(...accounted));
    assert.equal(ext.epsilon, Math.max(...accounted));
  }
  assert.deepEqual(coordinatorLog.lines().filter((l) => l['siteEpsilon'] !== undefined), [], 'the coordinator saw no disagreement');
  for (const site of sites) assert.deepEqual(site.log.lines().filter((l) => (l['level'] as number) >= 40), [], 'no site declined or failed a round');
});
