import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isFedmetaError } from '../src/errors.js';
import { createRng, deriveSeed, restoreRng } from '../src/episodes/index.js';

const draw = (seed: number, n = 8): number[] => {
  const r = createRng(seed);
  return Array.from({ length: n }, () => r.uint32());
};

test('the generator is deterministic per seed and differs between seeds, including nearby and large ones', () => {
  assert.deepEqual(draw(42), draw(42));
  const seeds = [0, 1, 2, -1, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1, 0.5];
  const firsts = seeds.map((s) => draw(s).join(','));
  assert.equal(new Set(firsts).size, seeds.length);
  assert.throws(() => createRng(NaN), (e: unknown) => isFedmetaError(e, ErrorCode.CONFIG));
});

test('a saved state continues the exact same stream', () => {
  const a = createRng(7);
  for (let i = 0; i < 100; i++) a.next();
  const saved = JSON.parse(JSON.stringify(a.state())) as number[];
  const expected = Array.from({ length: 50 }, () => a.uint32());
  const b = restoreRng(saved);
  assert.deepEqual(Array.from({ length: 50 }, () => b.uint32()), expected);
  const c = createRng(0);
  c.setState(saved);
  assert.deepEqual(Array.from({ length: 50 }, () => c.uint32()), expected);
  assert.throws(() => restoreRng([1, 2, 3]), (e: unknown) => isFedmetaError(e, ErrorCode.STATE_CORRUPT));
  assert.throws(() => restoreRng([1, 2, 3, -4]), (e: unknown) => isFedmetaError(e, ErrorCode.STATE_CORRUPT));
});

test('int() is uniform and in range; next() is in [0, 1); shuffle permutes', () => {
  const rng = createRng(3);
  const counts = new Array<number>(7).fill(0);
  const n = 70_000;
  for (let i = 0; i < n; i++) counts[rng.int(7)]!++;
  // Chi-square with 6 degrees of freedom: 22.5 is the 0.1% tail.
  const chi2 = counts.reduce((a, c) => a + (c - n / 7) ** 2 / (n / 7), 0);
  assert.ok(chi2 < 22.5, `chi2 ${chi2}`);
  for (let i = 0; i < 1000; i++) {
    const u = rng.next();
    assert.ok(u >= 0 && u < 1);
  }
  const a = rng.shuffle(Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
  assert.notDeepEqual(a, Array.from({ length: 50 }, (_, i) => i));
  let m = 0;
  for (let i = 0; i < 20_000; i++) m += rng.normal();
  assert.ok(Math.abs(m / 20_000) < 0.05);
});

test('derived seeds are stable and separate streams by label', () => {
  assert.equal(deriveSeed(1, 'site-a', 3), deriveSeed(1, 'site-a', 3));
  const all = [deriveSeed(1, 'site-a', 3), deriveSeed(1, 'site-b', 3), deriveSeed(1, 'site-a', 4), deriveSeed(2, 'site-a', 3), deriveSeed(1, 'ab', 'c'), deriveSeed(1, 'a', 'bc')];
  assert.equal(new Set(all).size, all.length);
});
