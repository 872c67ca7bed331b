// Churn and partitions against a coordinator process and a federation of agent processes: 30% of the agents
// killed in the middle of a round, agents killed and restarted at random, and network cuts simulated by pausing
// agents (SIGSTOP, then SIGCONT) so that their connections stay open but nothing answers. Rounds must commit at
// quorum or abort at their deadline and be re-issued; no round may hang. The coordinator's own log is the record:
// every attempt it started, how it ended and when.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, type Child, type LogLine } from '../helpers/children.js';
import { Federation } from './helpers/federation.js';
import { prng } from './helpers/fuzz.js';
import { faultProfile } from './helpers/profile.js';
import { pct, quantile, recordRow, seconds } from './helpers/report.js';

const profile = faultProfile();
const N = profile.churnSites;
const SITES = Array.from({ length: N }, (_, i) => `office-${i + 1}`);
const DEADLINE_S = 3;
/** A round commits with 60% of the sites it sampled; 30% gone still leaves a quorum, half gone does not. */
const QUORUM = 0.6;
const DROP = Math.ceil(0.3 * N);
/** How late past its deadline an attempt may end before it counts as hung (aggregation, commit, a busy machine). */
const SLACK_MS = 3000;

let fed: Federation;
let coordinator: Child;
const rnd = prng(7_2026);
const injected = { dropped: 0, killed: 0, restarted: 0, stopped: 0, partitions: 0 };

function shuffle<T>(xs: readonly T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}

const agent = (site: string): Child => fed.agents.get(site) as Child;
const alive = (): string[] => SITES.filter((s) => agent(s).running);

async function kill(site: string): Promise<void> {
  const a = agent(site);
  a.signal('SIGKILL');
  await a.exited;
  injected.killed++;
}

function restart(site: string): void {
  fed.startAgent(site);
  injected.restarted++;
}

before(async () => {
  fed = await Federation.create({
    name: 'churn',
    sites: SITES,
    agentLogLevel: process.env['FEDMETA_FAULTS_AGENT_LOG'] ?? 'warn',
    rounds: { minSites: Math.ceil(N / 2), quorum: `${QUORUM * 100}%`, deadlineSeconds: DEADLINE_S, continuous: true },
  });
  coordinator = fed.startCoordinator();
  await fed.ready(coordinator);
  for (const s of SITES) fed.startAgent(s);
  await fed.online(SITES, 120_000);
});

after(async () => {
  await fed?.close();
});

interface Attempt {
  round: number;
  attempt: number;
  start: number;
  end: number | null;
  outcome: 'committed' | 'aborted' | null;
}

/** Every round attempt the coordinator started, from its log. */
function attempts(lines: readonly LogLine[]): Attempt[] {
  const out = new Map<string, Attempt>();
  for (const l of lines) {
    const msg = l['msg'];
    const key = `${String(l['round'])}/${String(l['attempt'])}`;
    const at = Date.parse(String(l['time']));
    if (msg === 'round started') out.set(key, { round: l['round'] as number, attempt: l['attempt'] as number, start: at, end: null, outcome: null });
    const a = out.get(key);
    if (!a) continue;
    if (msg === 'round committed') Object.assign(a, { end: at, outcome: 'committed' });
    else if (typeof msg === 'string' && msg.startsWith('round aborted')) Object.assign(a, { end: at, outcome: 'aborted' });
  }
  return [...out.values()];
}

test(`churn: ${DROP} of ${N} agents (30%) killed mid-round, random kills and restarts, SIGSTOP partitions; every round commits at quorum or aborts at its deadline and is re-issued`, { timeout: Math.max(600_000, (60 + 30 * (profile.dropRounds + profile.partitions) + 2 * profile.churnSeconds) * 1000) }, async () => {
  const from = coordinator.logs.length;
  const t0 = Date.now();

  // 30% of the agents dropped while a round collects: the rest are a quorum, so the round commits at its deadline.
  let lostUpdates = 0;
  for (let k = 0; k < profile.dropRounds; k++) {
    // Killed as soon as the offers are out: training takes longer than that, so they die before answering.
    const started = await coordinator.waitForLog((l) => l['msg'] === 'round started', 4 * DEADLINE_S * 1000, 'a round starting', coordinator.logs.length);
    const round = started['round'] as number;
    const victims = shuffle(alive()).slice(0, DROP);
    await Promise.all(victims.map(kill));
    injected.dropped += victims.length;
    const done = await coordinator.waitForLog((l) => l['round'] === round && (l['msg'] === 'round committed' || String(l['msg']).startsWith('round aborted')), (DEADLINE_S + 10) * 1000, `the end of round ${round}`, from);
    assert.equal(done['msg'], 'round committed', `round ${round} committed without the ${victims.length} dropped agents`);
    lostUpdates += N - (done['accepted'] as number);
    for (const s of victims) restart(s);
    await fed.online(SITES, 120_000);
  }

  // Agents killed and restarted at random, never more than 30% down at once.
  const churnEnd = Date.now() + profile.churnSeconds * 1000;
  const restarts: Promise<void>[] = [];
  while (Date.now() < churnEnd) {
    await sleep(300 + rnd() * 1500);
    const up = alive();
    if (SITES.length - up.length >= DROP) continue;
    const site = shuffle(up)[0] as string;
    await kill(site);
    restarts.push(sleep(500 + rnd() * 2500).then(() => restart(site)));
  }
  await Promise.all(restarts);
  await fed.online(SITES, 120_000);

  // Network cuts: half the federation (no quorum: attempts abort at their deadline and are re-issued, and the
  // round commits once the cut heals) or a minority (the round commits at its deadline), each paused for over
  // two deadlines, so that at least one attempt lies wholly inside the cut.
  for (let k = 0; k < profile.partitions; k++) {
    const size = k % 2 === 0 ? Math.ceil(N / 2) : DROP;
    const cut = shuffle(SITES).slice(0, size);
    for (const s of cut) agent(s).signal('SIGSTOP');
    injected.stopped += cut.length;
    injected.partitions++;
    await sleep((2 * DEADLINE_S + 1 + rnd() * 2) * 1000);
    for (const s of cut) agent(s).signal('SIGCONT');
  }

  // Afterwards the whole federation commits a round again.
  const settledFrom = coordinator.logs.length;
  await coordinator.waitForLog((l) => l['msg'] === 'round committed' && l['accepted'] === N, 10 * DEADLINE_S * 1000, 'a round with every site after the churn', settledFrom).catch((e: Error) => {
    const agents = SITES.map((s) => `--- ${s} (${agent(s).running ? 'running' : 'exited'}):\n${agent(s).tail(8)}`).join('\n');
    throw new Error(`${e.message}\n${agents}`);
  });
  const wall = Date.now() - t0;

  const all = attempts(coordinator.logs.slice(from));
  const ended = all.filter((a) => a.end !== null);
  const open = all.filter((a) => a.end === null);
  assert.ok(open.length <= 1, 'at most the current attempt is still open');
  for (const a of open) assert.ok(Date.now() - a.start < DEADLINE_S * 1000 + SLACK_MS, `round ${a.round} attempt ${a.attempt} hangs`);
  for (const a of ended) {
    assert.ok((a.end as number) - a.start <= DEADLINE_S * 1000 + SLACK_MS, `round ${a.round} attempt ${a.attempt} took ${(a.end as number) - a.start} ms, past its deadline`);
  }
  // An aborted attempt is re-issued: the same round starts again with the next attempt number.
  const aborted = ended.filter((a) => a.outcome === 'aborted');
  for (const a of aborted) assert.ok(all.some((b) => b.round === a.round && b.attempt === a.attempt + 1), `round ${a.round} attempt ${a.attempt} was re-issued`);
  const committed = ended.filter((a) => a.outcome === 'committed');
  const rounds = [...new Set(all.map((a) => a.round))];
  // Every round before the newest was committed: rounds advance only by commits.
  for (const r of rounds.slice(0, -1)) assert.ok(committed.some((a) => a.round === r), `round ${r} committed`);
  assert.ok(aborted.length >= 1, 'the half-federation cuts made attempts abort');
  assert.ok(committed.length >= profile.dropRounds + 2);

  // Latency of a round: from its first attempt's start to its commit, re-issues included.
  const latency = committed.map((c) => c.end as number).map((end, i) => {
    const r = (committed[i] as Attempt).round;
    const first = Math.min(...all.filter((a) => a.round === r).map((a) => a.start));
    return end - first;
  });
  const rate = committed.length / ended.length;
  const rejections = coordinator.withMsg('update rejected').length;
  recordRow({
    scenario: 'churn: drops, kills, partitions',
    injected: `${N} agents; ${profile.dropRounds} rounds with ${DROP} (30%) killed mid-round (${lostUpdates} updates lost); ${injected.killed - injected.dropped} random kills in ${profile.churnSeconds} s; ${injected.partitions} SIGSTOP cuts (${injected.stopped} agents)`,
    held: `every attempt ended within deadline + ${seconds(SLACK_MS)}; ${aborted.length} aborted attempts all re-issued; every round committed; none hung`,
    figures: `completion ${pct(rate)} (${committed.length}/${ended.length} attempts); round latency median ${seconds(quantile(latency, 0.5))}, p95 ${seconds(quantile(latency, 0.95))}; ${injected.restarted} restarts; ${rejections} late updates refused; ${seconds(wall)}`,
  });
});
