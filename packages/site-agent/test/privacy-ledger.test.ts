// The site's own privacy ledger under record-level DP: durable and exact across restarts, charged on disk before
// an update leaves the site, and enforced by the round worker (a DP round past the site's budget is declined).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, RdpAccountant, builtinSchema, generateIdentity, identityFromCredential, initParams, initRuntime, isFedmetaError, schemaFingerprint, seededNoise } from '@fedmeta/shared';
import type { AckMessage, MechanismSteps, RoundTask, SecAggOffer } from '@fedmeta/shared';
import { createAgentMetrics } from '../src/agent-metrics/agent-metrics.js';
import { SiteAgent } from '../src/client.js';
import { loadAgentConfig } from '../src/config.js';
import { SitePrivacyLedger, ledgerPath } from '../src/privacy-ledger.js';
import { RoundWorker } from '../src/rounds.js';
import type { OfferInHand } from '../src/rounds.js';
import { loadSiteData, type SiteData } from '../src/site-data.js';
import { prepareUpdate, type ComputedUpdate } from '../src/trainer.js';
import { FakeCoordinator, SMALL_SPEC, SMALL_TASK } from './fake-coordinator.js';
import { captureLogger, siteCsv, tempDir, waitFor, writeText } from './fixtures.js';

const DELTA = 1e-5;
const SITE_SEED = 42;
const DP_TASK: RoundTask = { ...SMALL_TASK, dp: { clipNorm: 1, noiseMultiplier: 1.1 } };
const CREDENTIAL = 'fmC_' + 'p'.repeat(43);
const MECHANISMS: MechanismSteps[] = [
  { noiseMultiplier: 0.8, samplingRate: 0.05, steps: 3 },
  { noiseMultiplier: 1.3, samplingRate: 0.1, steps: 2 },
];
let data: SiteData;

before(async () => {
  await initRuntime();
  const dir = tempDir({ after: () => undefined });
  data = await loadSiteData({ files: [writeText(dir, 'site.csv', siteCsv(20))], schema: builtinSchema('cicflowmeter'), seed: 1 });
});

/** ε of these mechanisms by an accountant of its own, as an auditor would compute it. */
function independentEpsilon(runs: readonly MechanismSteps[][], delta = DELTA): number {
  const acc = new RdpAccountant();
  for (const r of runs) for (const m of r) acc.step(m.noiseMultiplier, m.samplingRate, m.steps);
  return acc.epsilon(delta).epsilon;
}

function offer(round: number, task: RoundTask = DP_TASK, secagg?: SecAggOffer): OfferInHand {
  const p = initParams(SMALL_SPEC, 3);
  return { round, version: 0, task, spec: SMALL_SPEC, manifest: p.manifest, params: p.values, deadline: Date.now() + 60_000, ...(secagg ? { secagg } : {}) };
}

/** The mechanisms one DP round of DP_TASK runs on this site's data (the same for every round). */
function roundPlan(): MechanismSteps[] {
  const plan = prepareUpdate(offer(0), data, { siteSeed: SITE_SEED }).dpPlan;
  assert.ok(plan !== null && plan.length > 0);
  return plan;
}

/** A budget that one DP round fits and two do not. */
function budgetForOneRound(): number {
  const one = independentEpsilon([roundPlan()]);
  const two = independentEpsilon([roundPlan(), roundPlan()]);
  assert.ok(two > one);
  return (one + two) / 2;
}

interface WorkerHarness {
  w: RoundWorker;
  sent: ComputedUpdate[];
  computed: () => number;
  log: ReturnType<typeof captureLogger>;
}

function worker(file: string, budget: number, send?: (u: ComputedUpdate) => Promise<AckMessage>): WorkerHarness {
  const sent: ComputedUpdate[] = [];
  let computed = 0;
  const log = captureLogger();
  let ledger: Promise<SitePrivacyLedger> | undefined;
  const w = new RoundWorker({
    logger: log.logger,
    train: { siteSeed: SITE_SEED, schemaName: 'cicflowmeter', noise: seededNoise(7) },
    data: () => Promise.resolve(data),
    send: (u) => {
      sent.push(u);
      return send ? send(u) : Promise.resolve({ type: 'ack', round: u.round, accepted: true });
    },
    sendSecAgg: () => Promise.resolve({ type: 'ack', round: 0, accepted: true }),
    credential: () => CREDENTIAL,
    chunkValues: () => 100,
    ledger: () => (ledger ??= SitePrivacyLedger.open(file, { epsilonBudget: budget, delta: DELTA })),
    onComputed: () => computed++,
  });
  return { w, sent, computed: () => computed, log };
}

async function run(h: WorkerHarness, o: OfferInHand): Promise<void> {
  h.w.offer(o);
  await h.w.settled();
}

const onDisk = async (file: string, budget = 10): Promise<ReturnType<SitePrivacyLedger['report']>> =>
  (await SitePrivacyLedger.open(file, { epsilonBudget: budget, delta: DELTA })).report();

test('the ledger persists: reopened, it reports the same ε to the bit, and ε matches an independent accountant', async (t) => {
  const file = ledgerPath(tempDir(t));
  const fresh = await SitePrivacyLedger.open(file, { epsilonBudget: 10, delta: DELTA });
  assert.equal(fresh.report().epsilon, 0);
  assert.throws(() => statSync(file), 'nothing is written before the first charge');
  await fresh.charge(MECHANISMS.slice(0, 1));
  await fresh.charge(MECHANISMS.slice(1));
  const expected = independentEpsilon([MECHANISMS]);
  assert.ok(expected > 0.1);
  assert.ok(Math.abs(fresh.report().epsilon - expected) <= 1e-12 * expected, `${fresh.report().epsilon} vs ${expected}`);

  const again = await SitePrivacyLedger.open(file, { epsilonBudget: 10, delta: DELTA });
  assert.equal(again.report().epsilon, fresh.report().epsilon);
  assert.equal(again.report().steps, 5);
  assert.equal(again.report().charges, 2);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const stored = JSON.parse(readFileSync(file, 'utf8')) as { epsilon: number; epsilonBudget: number };
  assert.equal(stored.epsilon, fresh.report().epsilon, 'the file shows ε to an operator');
  // δ is the configuration's: what was spent is kept as RDP, so another δ gives that δ's ε.
  const looser = await SitePrivacyLedger.open(file, { epsilonBudget: 10, delta: 1e-3 });
  assert.equal(looser.report().epsilon, independentEpsilon([MECHANISMS], 1e-3));
  assert.ok(looser.report().epsilon < expected);
});

test('a damaged or emptied ledger is refused, never read as ε = 0', async (t) => {
  const dir = tempDir(t);
  const file = ledgerPath(dir);
  const l = await SitePrivacyLedger.open(file, { epsilonBudget: 10, delta: DELTA });
  await l.charge(MECHANISMS);
  const stored = JSON.parse(readFileSync(file, 'utf8')) as Record<string, { rdp: number[] }>;
  const key = Object.keys(stored).find((k) => typeof stored[k] === 'object' && stored[k] !== null && 'rdp' in stored[k]) as string;
  stored[key]!.rdp = stored[key]!.rdp.map((r) => r / 2);
  writeFileSync(file, JSON.stringify(stored));
  await assert.rejects(SitePrivacyLedger.open(file, { epsilonBudget: 10, delta: DELTA }), (e) => isFedmetaError(e, ErrorCode.STATE_CORRUPT) && /never delete it/.test(e.message));
  delete (stored as Record<string, unknown>)[key];
  writeFileSync(file, JSON.stringify(stored));
  await assert.rejects(SitePrivacyLedger.open(file, { epsilonBudget: 10, delta: DELTA }), (e) => isFedmetaError(e, ErrorCode.STATE_CORRUPT));
  writeFileSync(file, '{"format":');
  await assert.rejects(SitePrivacyLedger.open(file, { epsilonBudget: 10, delta: DELTA }), (e) => isFedmetaError(e, ErrorCode.STATE_CORRUPT));
});

test('a charge past the budget, or one that cannot be written, is refused and changes nothing', async (t) => {
  const dir = tempDir(t);
  const file = ledgerPath(dir);
  const budget = (independentEpsilon([MECHANISMS]) + independentEpsilon([MECHANISMS, MECHANISMS])) / 2;
  const l = await SitePrivacyLedger.open(file, { epsilonBudget: budget, delta: DELTA });
  await l.charge(MECHANISMS);
  const before = readFileSync(file, 'utf8');
  await assert.rejects(l.charge(MECHANISMS), (e) => isFedmetaError(e, ErrorCode.PRIVACY_BUDGET) && /past its budget/.test(e.message));
  assert.equal(readFileSync(file, 'utf8'), before);
  assert.equal(l.report().charges, 1);

  // The state directory turns into a file after the ledger was opened: the write fails, and the charge with it.
  const b = await SitePrivacyLedger.open(join(dir, 'gone', 'privacy-ledger.json'), { epsilonBudget: 10, delta: DELTA });
  writeText(dir, 'gone', 'not a directory');
  await assert.rejects(b.charge(MECHANISMS));
  assert.equal(b.report().epsilon, 0);
});

test('charge, then send: the charge is on disk when the update is sent, stays when the send fails, and a resend costs nothing more', async (t) => {
  const file = ledgerPath(tempDir(t));
  const atSend: number[] = [];
  let fail = true;
  const h = worker(file, 10, async (u) => {
    atSend.push((await onDisk(file)).epsilon);
    if (fail) throw new Error('link down');
    return { type: 'ack', round: u.round, accepted: true };
  });
  await run(h, offer(0));
  assert.equal(h.sent.length, 1);
  const u = h.sent[0]!;
  assert.deepEqual(u.accounting, roundPlan(), 'the round ran exactly the mechanisms planned before it');
  const expected = independentEpsilon([roundPlan()]);
  assert.ok(expected > 0);
  assert.equal(atSend[0], (await onDisk(file)).epsilon, 'the charge was on disk before the send');
  assert.ok(Math.abs(atSend[0]! - expected) <= 1e-12 * expected, `${atSend[0]} vs ${expected}`);
  assert.equal((await onDisk(file)).charges, 1, 'the failed send left its charge');

  // Reconnected, the coordinator re-offers the round: the kept update is sent again, not charged again.
  fail = false;
  h.w.welcomed(0);
  await run(h, offer(0));
  assert.equal(h.sent.length, 2);
  assert.equal(h.sent[1], u);
  assert.equal(h.computed(), 1);
  assert.equal((await onDisk(file)).charges, 1);
  assert.equal((await onDisk(file)).epsilon, atSend[0]);
});

test('an agent with a tiny budget answers the first DP round, then declines without computing; a restart does not reset it', async (t) => {
  const file = ledgerPath(tempDir(t));
  const budget = budgetForOneRound();
  const h = worker(file, budget);
  await run(h, offer(0));
  assert.equal(h.sent.length, 1);
  assert.ok(h.sent[0]!.privacy, 'the update carries its DP report');
  await run(h, offer(1));
  assert.equal(h.sent.length, 1, 'the second round is declined: nothing sent');
  assert.equal(h.computed(), 1, 'and nothing computed');
  const warning = h.log.lines.map((l) => JSON.parse(l) as { level: number; msg: string; epsilon?: number; epsilonBudget?: number }).find((l) => /declined/.test(l.msg));
  assert.ok(warning, 'the decline is logged');
  assert.equal(warning.level, 40);
  assert.equal(warning.epsilonBudget, budget);
  assert.equal(warning.epsilon, (await onDisk(file)).epsilon);
  assert.match(warning.msg, new RegExp(`spent ε = ${warning.epsilon!.toFixed(3)} of its budget of ${budget}`));

  const restarted = worker(file, budget);
  await run(restarted, offer(2));
  assert.equal(restarted.sent.length, 0, 'the restarted agent remembers what it spent');
  assert.equal(restarted.computed(), 0);
  // Its operator raises the budget: the site answers again, and ε keeps counting from where it was.
  const raised = worker(file, budget * 10);
  await run(raised, offer(3));
  assert.equal(raised.sent.length, 1);
  const expected = independentEpsilon([roundPlan(), roundPlan()]);
  assert.ok(Math.abs((await onDisk(file)).epsilon - expected) <= 1e-12 * expected);
});

test('an update computed but dropped for a newer round is not charged; a round without DP is neither checked nor charged, and says so once', async (t) => {
  const file = ledgerPath(tempDir(t));
  const h = worker(file, 10);
  h.w.offer(offer(0));
  h.w.offer(offer(1));
  await h.w.settled();
  assert.deepEqual(h.sent.map((u) => u.round), [1]);
  assert.equal(h.computed(), 1, 'round 0 was dropped when round 1 arrived');
  assert.equal((await onDisk(file)).charges, 1);
  assert.equal((await onDisk(file)).epsilon, independentEpsilon([roundPlan()]));

  const plainFile = ledgerPath(tempDir(t));
  const p = worker(plainFile, 1e-9);
  await run(p, offer(5, SMALL_TASK));
  p.w.welcomed(5);
  await run(p, offer(5, SMALL_TASK));
  assert.equal(p.sent.length, 2, 'answered even with a budget no DP round fits');
  assert.equal(p.sent[0]!.accounting, undefined);
  assert.throws(() => statSync(plainFile), 'no ledger written');
  assert.equal(p.log.lines.filter((l) => /not differentially private/.test(l)).length, 1);
});

test('a DP round that is securely aggregated is charged once, however many attempts reuse its update', async (t) => {
  const file = ledgerPath(tempDir(t));
  const h = worker(file, 10);
  const secure = (attempt: number): SecAggOffer => ({
    attempt,
    roundId: new Uint8Array(32).fill(attempt + 1),
    roster: [generateIdentity().publicKey, identityFromCredential(CREDENTIAL).publicKey, generateIdentity().publicKey],
    site: 2,
    threshold: 2,
    degree: 0,
    clipNorm: 10,
    maxWeight: 1000,
  });
  await run(h, offer(4, DP_TASK, secure(0)));
  await run(h, offer(4, DP_TASK, secure(1)));
  assert.equal(h.sent.length, 2);
  assert.equal(h.computed(), 1);
  assert.equal((await onDisk(file)).charges, 1);
});

test('the agent opens its ledger in the state directory, declines past its budget over a real socket, and its metrics show ε and the budget', async (t) => {
  const coord = new FakeCoordinator();
  await coord.start();
  t.after(() => coord.close());
  const stateDir = tempDir(t);
  const budget = budgetForOneRound();
  const config = loadAgentConfig({
    env: {},
    flags: {
      site: 'branch-dp',
      coordinatorUrl: coord.url,
      allowInsecureHttp: true,
      enrollmentToken: 'enroll-token-dp',
      stateDir,
      reconnect: { initialDelayMs: 30, maxDelayMs: 120 },
      privacy: { epsilonBudget: budget },
    },
  });
  assert.equal(config.privacy.delta, DELTA, 'δ defaults to 1e-5');
  const schema = builtinSchema('cicflowmeter');
  const log = captureLogger();
  const agent = new SiteAgent({ config, schema, schemaFingerprint: schemaFingerprint(schema), data, siteSeed: SITE_SEED, logger: log.logger });
  t.after(() => agent.stop());
  const metrics = createAgentMetrics({ processMetrics: false });
  metrics.watchPrivacy(() => agent.privacy());
  await agent.start();
  await waitFor(() => agent.connected, 5000, 'connection');
  coord.offer(0, { task: DP_TASK });
  await waitFor(() => coord.updates().length === 1, 20_000, 'the first update');
  assert.ok(coord.updates()[0]!.privacy, 'sent with its DP report');
  coord.offer(1, { task: DP_TASK });
  await waitFor(() => /declined this differentially private round/.test(log.text()), 20_000, 'the decline');
  assert.equal(coord.updates().length, 1);
  const spent = (await onDisk(ledgerPath(stateDir), budget)).epsilon;
  assert.ok(Math.abs(spent - independentEpsilon([roundPlan()])) <= 1e-12 * spent);
  const text = await metrics.render();
  assert.match(text, new RegExp(`^fedmeta_agent_privacy_epsilon ${spent}$`, 'm'));
  assert.match(text, new RegExp(`^fedmeta_agent_privacy_epsilon_budget ${budget}$`, 'm'));
});
