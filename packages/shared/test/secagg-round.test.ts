import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isFedmetaError } from '../src/errors.js';
import { buildGraph, makeQuantizer, openSession, SecAggServer, simulateSecAggRound } from '../src/secagg/index.js';
import type { SecAggDropPhase } from '../src/secagg/index.js';
import { assertSumMatches, federation, roundConfig, updates } from './secagg-fixtures.js';

const aborted = (e: unknown): boolean => isFedmetaError(e, ErrorCode.SECAGG_ABORTED);

test('0 dropouts: 10 sites x 50,000 values unmask to the plaintext sum of the clipped, quantized updates', () => {
  const fed = federation(10);
  const config = roundConfig(fed, 50_000, 7);
  const inputs = updates(10, 50_000, 1);
  const { result } = simulateSecAggRound(config, { seeds: fed.seeds, inputs });
  assert.deepEqual(result.contributors, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(result.dropped, []);
  assertSumMatches(config, result, inputs);
  assert.equal(result.weightSum, 10);
});

test('1 dropout after sharing keys: its pairwise masks are removed from its key shares', () => {
  const fed = federation(10);
  const config = roundConfig(fed, 4096, 7);
  const inputs = updates(10, 4096, 2);
  const { result } = simulateSecAggRound(config, { seeds: fed.seeds, inputs, drop: new Map([[4, 'mask']]) });
  assert.deepEqual(result.dropped, [4]);
  assert.equal(result.contributors.length, 9);
  assertSumMatches(config, result, inputs);
});

test('30% dropouts (3 of 10 after sharing keys) plus silent sites earlier and at unmasking, threshold 7', () => {
  const fed = federation(10);
  const config = roundConfig(fed, 4096, 7);
  const inputs = updates(10, 4096, 3);
  const drop = new Map<number, SecAggDropPhase>([[2, 'mask'], [6, 'mask'], [9, 'mask']]);
  const { result } = simulateSecAggRound(config, { seeds: fed.seeds, inputs, drop });
  assert.deepEqual(result.dropped, [2, 6, 9]);
  assert.deepEqual(result.contributors, [1, 3, 4, 5, 7, 8, 10]);
  assertSumMatches(config, result, inputs);

  // 12 sites, threshold 7: one never advertises, one never shares, two drop after sharing, and a survivor that
  // masked goes silent before unmasking (its input still counts: its self-mask is rebuilt from the others).
  const fed12 = federation(12);
  const c12 = roundConfig(fed12, 2048, 7);
  const in12 = updates(12, 2048, 4);
  const drop12 = new Map<number, SecAggDropPhase>([[1, 'advertise'], [3, 'share'], [5, 'mask'], [7, 'mask'], [11, 'unmask']]);
  const r12 = simulateSecAggRound(c12, { seeds: fed12.seeds, inputs: in12, drop: drop12 }).result;
  assert.deepEqual(r12.dropped, [5, 7]);
  assert.deepEqual(r12.contributors, [2, 4, 6, 8, 9, 10, 11, 12]);
  assertSumMatches(c12, r12, in12);
});

test('weights: the server learns Σ w·clip(x) and Σ w, and the weighted mean follows', () => {
  const fed = federation(6);
  const config = roundConfig(fed, 1000, 4, { maxWeight: 500, clipNorm: 2 });
  const inputs = updates(6, 1000, 5).map((u, i) => ({ ...u, weight: [10, 500, 0, 37, 250, 1][i] as number }));
  const { result } = simulateSecAggRound(config, { seeds: fed.seeds, inputs, drop: new Map([[2, 'mask']]) });
  assertSumMatches(config, result, inputs);
  assert.equal(result.weightSum, 10 + 0 + 37 + 250 + 1);
  const mean = result.mean as Float32Array;
  assert.ok(Math.abs((mean[0] as number) - (result.sum[0] as number) / result.weightSum) < 1e-6);
});

test('fixed point: n sites at the clip bound with the largest weight sum to ±n·C·W without wrapping mod 2^32', () => {
  const n = 10;
  const q = makeQuantizer(n, 1, 3);
  // Each site's coordinate is at most C·W·scale + 1/2 after rounding: n of them stay below 2^31.
  assert.ok(n * (3 * q.scale + 0.5) < 2 ** 31, 'scale leaves room for n rounded values');
  assert.ok(n * 3 * (2 * q.scale) > 2 ** 31 - 1 - n, 'and is the largest power of two that does');
  const fed = federation(n);
  for (const sign of [1, -1]) {
    const config = roundConfig(fed, 4, 6, { maxWeight: 3 });
    // Norm 5 on one coordinate: clipped to 1, weighted by 3, the extreme value of every site.
    const inputs = Array.from({ length: n }, () => ({ vector: Float32Array.from([5 * sign, 0, 0, 0]), weight: 3 }));
    const { result } = simulateSecAggRound(config, { seeds: fed.seeds, inputs });
    assert.ok(Math.abs((result.sum[0] as number) - sign * n * 3) <= q.sumError, `sum ${result.sum[0]} should be ${sign * n * 3}`);
    assert.equal(result.weightSum, n * 3);
    assertSumMatches(config, result, inputs);
  }
});

test('SecAgg+ neighbourhoods: a random 8-regular graph over 30 sites, 20% dropouts, still the exact sum', () => {
  const fed = federation(30);
  const config = roundConfig(fed, 2048, 5, { degree: 8 });
  const s = openSession(config);
  for (let u = 1; u <= 30; u++) {
    const nb = s.graph.neighbours(u);
    assert.equal(nb.length, 8, `site ${u} has 8 neighbours`);
    for (const v of nb) assert.ok(s.graph.isNeighbour(v, u), 'symmetric');
  }
  assert.deepEqual(openSession(config).graph.neighbours(7), s.graph.neighbours(7), 'every party derives the same graph');
  const inputs = updates(30, 2048, 6);
  // The graph is random (drawn from the round id), so the dropouts are chosen on it: six sites (20%) such that
  // every site still has at least t = 5 holders of its shares alive, the condition for the sum to be recoverable.
  const dropped = new Set<number>();
  const recoverable = (): boolean =>
    Array.from({ length: 30 }, (_, i) => i + 1).every((u) => [u, ...s.graph.neighbours(u)].filter((v) => !dropped.has(v)).length >= 5);
  for (let u = 1; u <= 30 && dropped.size < 6; u += 1) {
    dropped.add(u);
    if (!recoverable()) dropped.delete(u);
  }
  assert.equal(dropped.size, 6, 'six sites can drop out of an 8-regular graph of 30 with the sum still recoverable');
  const drop = new Map<number, SecAggDropPhase>([...dropped].map((u) => [u, 'mask']));
  const { result } = simulateSecAggRound(config, { seeds: fed.seeds, inputs, drop });
  assert.equal(result.contributors.length, 24);
  assertSumMatches(config, result, inputs);
});

test('the neighbour graph changes with the round and its degree is checked', () => {
  const a = buildGraph(20, 4, new Uint8Array(32).fill(1));
  const b = buildGraph(20, 4, new Uint8Array(32).fill(2));
  assert.notDeepEqual(
    Array.from({ length: 20 }, (_, i) => a.neighbours(i + 1)),
    Array.from({ length: 20 }, (_, i) => b.neighbours(i + 1)),
  );
  assert.equal(buildGraph(5, undefined, new Uint8Array(32)).degree, 4);
  assert.equal(buildGraph(5, 10, new Uint8Array(32)).complete, true);
  assert.throws(() => buildGraph(20, 5, new Uint8Array(32)), (e) => isFedmetaError(e, ErrorCode.CONFIG));
});

test('a threshold of half the holders or less, or above them, is refused at configuration', () => {
  const fed = federation(10);
  assert.throws(() => openSession(roundConfig(fed, 10, 5)), (e) => isFedmetaError(e, ErrorCode.CONFIG));
  assert.throws(() => openSession(roundConfig(fed, 10, 11)), (e) => isFedmetaError(e, ErrorCode.CONFIG));
  assert.throws(() => openSession(roundConfig(fed, 10, 6, { degree: 4 })), (e) => isFedmetaError(e, ErrorCode.CONFIG));
  assert.equal(openSession(roundConfig(fed, 10, 6)).threshold, 6);
});

test('below the threshold the round aborts with SECAGG_ABORTED at whichever phase it happens', () => {
  const fed = federation(10);
  const inputs = updates(10, 256, 7);
  const cases: [string, Map<number, SecAggDropPhase>][] = [
    ['advertise', new Map([[1, 'advertise'], [2, 'advertise'], [3, 'advertise'], [4, 'advertise']])],
    ['share', new Map([[1, 'share'], [2, 'share'], [3, 'share'], [4, 'share']])],
    ['masked input', new Map([[1, 'mask'], [2, 'mask'], [3, 'mask'], [4, 'mask']])],
    ['confirmation', new Map([[1, 'mask'], [2, 'mask'], [3, 'mask'], [4, 'confirm']])],
    ['unmask', new Map([[1, 'mask'], [2, 'mask'], [3, 'mask'], [4, 'unmask']])],
  ];
  for (const [phase, drop] of cases) {
    assert.throws(
      () => simulateSecAggRound(roundConfig(fed, 256, 7), { seeds: fed.seeds, inputs, drop }),
      (e) => aborted(e) && (e as Error).message.includes(`${phase} phase`),
      phase,
    );
  }
});

test('an aborted server refuses everything after, and reveals no sum', () => {
  const fed = federation(4);
  const server = new SecAggServer(roundConfig(fed, 16, 3));
  assert.throws(() => server.closeAdvertise(), aborted);
  assert.equal(server.phase, 'aborted');
  assert.throws(() => server.receiveAdvertise({ type: 'secagg-advertise' }), aborted);
  assert.throws(() => server.finish(), aborted);
});
