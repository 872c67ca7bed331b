import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '@fedmeta/shared';
import type { FedmetaError, SecAggMaskedWire, SecAggSiteWire } from '@fedmeta/shared';
import { RoundEngine } from '../src/engine/round-engine.js';
import { ALL_PAIRS_MAX_SITES, AUTO_DEGREE, effectiveDegree, secureThreshold } from '../src/engine/secure-round.js';
import { createMemoryHub } from '../src/engine/memory-hub.js';
import type { MemoryHub, MemorySite } from '../src/engine/memory-hub.js';
import type { RoundOffer, SiteUpdate, UpdateAck } from '../src/engine/hub.js';
import type { EngineConfig } from '../src/engine/config.js';
import type { RoundRecord } from '../src/state/types.js';
import { MemoryStore } from './helpers/memory-store.js';
import { captureLogger, engineConfig, initialCheckpoint, quadraticSite, vec } from './helpers/engine-fixtures.js';
import { connectSecureSite, seedOf } from './helpers/secure-sites.js';
import type { DropPhase } from './helpers/secure-sites.js';

const DIM = 8;
const N = 10;
const LR = 0.25;
const names = Array.from({ length: N }, (_, i) => `s${String(i).padStart(2, '0')}`);
const targets = names.map((_, i) => vec(DIM, (j) => Math.sin(i + 1 + j) * 3));
const examples = names.map((_, i) => 40 + 17 * i);
const SECURE = { enabled: true, threshold: 0.6, degree: 0, clipNorm: 100, maxWeight: 1000, phaseSeconds: 0.4 };

function config(secure: boolean, rounds: Partial<EngineConfig['rounds']> = {}): EngineConfig {
  return engineConfig(
    { minSites: N, quorum: { kind: 'count', value: 1 }, deadlineSeconds: 2, maxConsecutiveAborts: 3, ...rounds },
    { optimizer: { kind: 'sgd', lr: LR }, ...(secure ? { secureAggregation: SECURE } : {}) },
  );
}

async function engineOn(m: MemoryHub, secure: boolean, rounds: Partial<EngineConfig['rounds']> = {}): Promise<RoundEngine> {
  const engine = new RoundEngine({ store: new MemoryStore(), hub: m.hub, config: config(secure, rounds), logger: captureLogger('silent').logger });
  await engine.init(initialCheckpoint(DIM - 1));
  return engine;
}

/** What the round must produce: one SGD step on the example-weighted mean of the contributors' gradients 2 (0 - target). */
function expectedParams(contributors: number[]): Float64Array {
  const out = new Float64Array(DIM);
  let w = 0;
  for (const i of contributors) w += examples[i] as number;
  for (const i of contributors) {
    for (let j = 0; j < DIM; j++) out[j]! += ((examples[i] as number) * 2 * (0 - (targets[i] as Float32Array)[j]!)) / w;
  }
  return out.map((g) => -LR * g);
}

function assertClose(actual: Float32Array, expected: ArrayLike<number>, tol: number, what: string): void {
  for (let j = 0; j < DIM; j++) {
    assert.ok(Math.abs((actual[j] as number) - (expected[j] as number)) <= tol, `${what}: param ${j} is ${actual[j]}, expected ${expected[j]}`);
  }
}

/** Ten secure sites; `drop` maps a site index to the phase it stops at (in the attempts `dropIn` selects). */
function secureFederation(drop: Map<number, DropPhase> = new Map(), dropIn?: (attempt: number) => boolean, onSend?: (site: string, m: SecAggSiteWire | SiteUpdate) => void) {
  const m = createMemoryHub();
  const acks = new Map<string, UpdateAck[]>();
  names.forEach((name, i) => {
    const list: UpdateAck[] = [];
    acks.set(name, list);
    const d = drop.get(i);
    connectSecureSite(m, name, seedOf(i), targets[i] as Float32Array, {
      examples: examples[i] as number,
      acks: list,
      ...(d ? { drop: d } : {}),
      ...(dropIn ? { dropIn } : {}),
      ...(onSend ? { onSend: (msg) => onSend(name, msg) } : {}),
    });
  });
  return { m, acks };
}

// Quantization: scale 2^11 for 10 sites, clip 100 and weight 1000, so the sum is off by at most 10 / 2^12 per
// coordinate, over a total weight of about a thousand: 1e-5 is far above that and far below any real difference.
const TOL = 1e-5;

test('secure aggregation with no dropout: the committed step equals the plaintext one within the quantization error', async () => {
  const plain = createMemoryHub();
  names.forEach((name, i) => plain.connect(name, quadraticSite(targets[i] as Float32Array, { examples: examples[i] as number })));
  const reference = await engineOn(plain, false);
  await reference.runRound();

  // The phase the status shows whenever a site sends a secure-aggregation message (after its update).
  const phases = new Set<string | undefined>();
  let engine: RoundEngine | null = null;
  const { m } = secureFederation(new Map(), undefined, (_site, msg) => {
    if ('type' in msg) phases.add(engine?.status().roundInFlight?.phase);
  });
  engine = await engineOn(m, true);
  const record = await engine.runRound();
  assert.deepEqual([...phases], ['secure-aggregation'], 'status shows the secure phases while they run');
  assert.equal(record.status, 'committed');
  assert.equal(record.accepted, N);
  assert.deepEqual(record.rejected, {});
  assert.deepEqual(record.secureAggregation?.dropped, { share: 0, mask: 0, confirm: 0, unmask: 0 });
  assert.equal(record.secureAggregation?.contributors, N);
  assert.equal(record.secureAggregation?.threshold, 6, '60% of 10 sites');
  assert.ok(record.secureAggregation?.plaintextPerSite.includes('queryLoss'), 'the record says which per-site values were in plaintext');
  assert.equal(record.sites.length, N, 'per-site metrics are still reported');
  assertClose(engine.params(), reference.params(), TOL, 'secure against plaintext');
  assertClose(engine.params(), expectedParams(names.map((_, i) => i)), TOL, 'secure against the exact step');
});

for (const [label, dropped] of [['one dropout', [3]], ['30% dropouts', [1, 4, 8]]] as const) {
  test(`secure aggregation with ${label} after sharing keys: the sum of the others is unmasked and committed`, async () => {
    const { m } = secureFederation(new Map(dropped.map((i) => [i, 'delivery' as DropPhase])));
    const engine = await engineOn(m, true);
    const record = await engine.runRound();
    assert.equal(record.status, 'committed');
    assert.equal(record.accepted, N - dropped.length);
    assert.equal(record.secureAggregation?.dropped.mask, dropped.length);
    assert.equal(record.rejected[ErrorCode.SECAGG_DROPPED], dropped.length, 'dropouts are counted by code');
    assert.deepEqual(record.sites.map((s) => s.siteId), names.filter((_, i) => !(dropped as readonly number[]).includes(i)), 'only contributors are in the record');
    const contributors = names.map((_, i) => i).filter((i) => !(dropped as readonly number[]).includes(i));
    assertClose(engine.params(), expectedParams(contributors), TOL, 'the masks of the dropped sites were removed');
  });
}

test('below the threshold the attempt aborts with a coded reason, and the re-issued attempt commits with new keys', async () => {
  // Five of ten stop after sharing their keys in attempt 0 only: five masked inputs are below t = 6.
  const drop = new Map([0, 2, 4, 6, 8].map((i) => [i, 'delivery' as DropPhase]));
  const { m } = secureFederation(drop, (attempt) => attempt === 0);
  const engine = await engineOn(m, true);
  const aborted: RoundRecord[] = [];
  engine.on('round-aborted', ({ record }) => aborted.push(record));
  const record = await engine.runRound();

  assert.equal(aborted.length, 1);
  const a = aborted[0] as RoundRecord;
  assert.equal(a.status, 'aborted');
  assert.match(a.reason ?? '', new RegExp(`^${ErrorCode.SECAGG_ABORTED}: only 5 sites answered the masked input phase`));
  assert.equal(a.accepted, 0, 'nothing of the aborted attempt is summed');
  assert.equal(a.rejected[ErrorCode.SECAGG_DROPPED], 5);
  assert.equal(a.secureAggregation?.dropped.mask, 5);

  assert.equal(record.status, 'committed', 'the re-issued attempt ran the phases again with fresh keys');
  assert.equal(record.accepted, N);
  assertClose(engine.params(), expectedParams(names.map((_, i) => i)), TOL, 'the re-issued round');
  assert.deepEqual(engine.checkpoint()?.history.map((h) => h.status), ['aborted', 'committed']);
});

test('a share replayed from another attempt, and keys signed for another attempt, are refused with codes', async () => {
  // Attempt 0 aborts (five sites stop after sharing); s09 answers it honestly and is recorded doing so.
  const m = createMemoryHub();
  const acks: UpdateAck[] = [];
  const sent: (SecAggSiteWire | SiteUpdate)[] = [];
  let s09: MemorySite | undefined;
  const replay = (offer: RoundOffer): void => {
    if (offer.secagg?.attempt !== 1) return;
    const update = sent.find((x): x is SiteUpdate => !('type' in x)) as SiteUpdate;
    const shares = sent.find((x): x is SecAggSiteWire => 'type' in x && x.type === 'secagg-shares') as SecAggSiteWire;
    s09?.sendSecAgg(shares);
    // The keys of attempt 0 under attempt 1's number and round id: their signature is bound to attempt 0's.
    s09?.sendUpdate({ ...update, secagg: { ...(update.secagg as NonNullable<SiteUpdate['secagg']>), attempt: 1, roundId: offer.secagg.roundId } });
  };
  const sites = names.map((name, i) => {
    const last = i === N - 1;
    return connectSecureSite(m, name, seedOf(i), targets[i] as Float32Array, {
      examples: examples[i] as number,
      ...(i % 2 === 0 ? { drop: 'delivery' as DropPhase, dropIn: (a: number) => a === 0 } : {}),
      // In attempt 1, s09 does not answer by itself: it replays its attempt-0 messages instead.
      ...(last ? { drop: 'offer' as DropPhase, dropIn: (a: number) => a === 1, acks, onOffer: replay, onSend: (msg: SecAggSiteWire | SiteUpdate) => sent.push(msg) } : {}),
    });
  });
  s09 = sites[N - 1];
  const engine = await engineOn(m, true);
  const record = await engine.runRound();

  const refused = acks.filter((a) => !a.accepted).map((a) => a.error?.code);
  assert.deepEqual(refused, [ErrorCode.STALE_ROUND, ErrorCode.SECAGG_AUTH]);
  assert.equal(record.status, 'committed');
  assert.equal(record.accepted, N - 1, 's09 is not in the sum');
  assert.equal(record.rejected[ErrorCode.STALE_ROUND], 1);
  assert.equal(record.rejected[ErrorCode.SECAGG_AUTH], 1);
  assertClose(engine.params(), expectedParams(names.map((_, i) => i).slice(0, N - 1)), TOL, 'the sum of the nine honest sites');
});

test('after a restart, a masked vector of the interrupted issue of the same round and attempt is refused with STALE_ROUND', async () => {
  const store = new MemoryStore();
  const open = async (m: MemoryHub): Promise<RoundEngine> => {
    const engine = new RoundEngine({ store, hub: m.hub, config: config(true), logger: captureLogger('silent').logger });
    await engine.init(initialCheckpoint(DIM - 1));
    return engine;
  };

  // First life: the coordinator stops in the mask phase of round 0 attempt 0, as s09's masked vector leaves.
  const before = createMemoryHub();
  let old: SecAggMaskedWire | null = null;
  let first: RoundEngine | null = null;
  names.forEach((name, i) =>
    connectSecureSite(before, name, seedOf(i), targets[i] as Float32Array, {
      examples: examples[i] as number,
      onSend: (msg) => {
        if (i !== N - 1 || !('type' in msg) || msg.type !== 'secagg-masked') return;
        old = msg;
        first?.close();
      },
    }),
  );
  first = await open(before);
  await assert.rejects(first.runRound(), (e: FedmetaError) => e.code === ErrorCode.NOT_READY);
  const stale = old as SecAggMaskedWire | null;
  assert.ok(stale !== null, 's09 sent its masked vector before the coordinator stopped');

  // Second life: the same round and attempt, re-issued with a new round id. Just before its own masked vector,
  // s09's connection delivers the old one (same round, attempt, site and length).
  const after = createMemoryHub();
  const acks: UpdateAck[] = [];
  let s09: MemorySite | undefined;
  let reissued: Uint8Array | undefined;
  names.forEach((name, i) => {
    const last = i === N - 1;
    const site = connectSecureSite(after, name, seedOf(i), targets[i] as Float32Array, {
      examples: examples[i] as number,
      ...(last
        ? {
            acks,
            onOffer: (offer: RoundOffer) => (reissued = offer.secagg?.roundId),
            onSend: (msg: SecAggSiteWire | SiteUpdate) => {
              if ('type' in msg && msg.type === 'secagg-masked') s09?.sendSecAgg(stale);
            },
          }
        : {}),
    });
    if (last) s09 = site;
  });
  const second = await open(after);
  const started: { round: number; attempt: number }[] = [];
  second.on('round-started', ({ round, attempt }) => started.push({ round, attempt }));
  const record = await second.runRound();

  // s09's verdicts on its keys, its shares, the old masked vector and its own (later ones may land after the commit).
  assert.deepEqual(acks.slice(0, 4).map((a) => a.error?.code ?? 'accepted'), ['accepted', 'accepted', ErrorCode.STALE_ROUND, 'accepted']);
  assert.equal(acks.filter((a) => !a.accepted).length, 1, 'nothing else of s09 was refused');
  assert.deepEqual(started, [{ round: stale.round, attempt: stale.attempt }], 'the interrupted attempt was re-issued under its own numbers');
  assert.ok(reissued !== undefined && Buffer.compare(reissued, stale.roundId) !== 0, 'under a new round id');
  assert.equal(record.status, 'committed');
  assert.equal(record.rejected[ErrorCode.STALE_ROUND], 1, 'the refusal is counted in the record');
  assert.equal(record.accepted, N, "s09's own masked vector still counts");
  assertClose(second.params(), expectedParams(names.map((_, i) => i)), TOL, 'the sum of the ten masked vectors of this issue');
});

test('secure aggregation is refused with aggregators that need individual updates, and with a bad threshold', () => {
  const m = createMemoryHub();
  const make = (c: EngineConfig) => () => new RoundEngine({ store: new MemoryStore(), hub: m.hub, config: c, logger: captureLogger('silent').logger });
  assert.throws(make({ ...config(true), aggregator: { kind: 'median' } }), (e: Error) => /needs individual updates/.test(e.message));
  assert.throws(make({ ...config(true), secureAggregation: { ...SECURE, threshold: 0.5 } }), (e: Error) => /threshold/.test(e.message));
});

test('degree 0 chooses all pairs for small rosters and SecAgg+ neighbourhoods beyond; the threshold follows the holders', () => {
  assert.equal(effectiveDegree(0, ALL_PAIRS_MAX_SITES), 0);
  assert.equal(effectiveDegree(0, ALL_PAIRS_MAX_SITES + 1), AUTO_DEGREE);
  assert.equal(effectiveDegree(10, 5), 10, 'a configured degree is kept (all pairs when it covers the roster)');
  assert.equal(secureThreshold(0.6, 10, effectiveDegree(0, 10)), 6, '60% of 10 holders');
  assert.equal(secureThreshold(0.6, 1000, effectiveDegree(0, 1000)), 20, `60% of ${AUTO_DEGREE + 1} holders, rounded up`);
  assert.equal(secureThreshold(0.51, 4, 0), 3, 'always more than half of the holders');
});
