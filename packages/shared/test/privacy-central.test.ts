import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RdpAccountant, clipAndNoiseAggregate, clipUpdate, cryptoNoise, seededNoise } from '../src/privacy/index.js';
import { createRng } from '@fedmeta/shared';

// Site-level DP: the coordinator clips each site's update to S and adds N(0, σ²S²) to the sum.

function norm64(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

function randomUpdate(dim: number, scale: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: dim }, () => scale * rng.normal());
}

test('every clipped site update is inside S, after float32 rounding, and keeps its direction', () => {
  const S = 1.7;
  // Norms from well inside the bound to far outside, including ones a hair past it where rounding bites.
  for (let k = 0; k < 300; k++) {
    const v = randomUpdate(257, 1, k);
    const target = k < 100 ? S * (1 + (k + 1) * 1e-8) : S * Math.pow(10, (k - 200) / 50);
    const n0 = norm64(v);
    for (let i = 0; i < v.length; i++) v[i] = (v[i]! * target) / n0;
    const c = clipUpdate(v, S);
    const n = norm64(c.vector);
    assert.ok(n <= S, `case ${k}: ${n} > ${S}`);
    if (c.clipped) {
      assert.ok(n > S * (1 - 1e-6));
      let dot = 0;
      for (let i = 0; i < v.length; i++) dot += v[i]! * c.vector[i]!;
      assert.ok(dot / (n * norm64(v)) > 1 - 1e-9);
    } else {
      assert.deepEqual(c.vector, v);
    }
  }
});

test('without noise the aggregate is the unweighted mean of the clipped updates; each clipped update is inside S', () => {
  const S = 2;
  const updates = [randomUpdate(100, 0.05, 1), randomUpdate(100, 1, 2), randomUpdate(100, 3, 3), randomUpdate(100, 0.01, 4)];
  const r = clipAndNoiseAggregate(updates, { clipNorm: S, noiseMultiplier: 0, samplingRate: 0.5 }, seededNoise(1));
  assert.equal(r.clipped, 2);
  for (const u of r.clippedUpdates) assert.ok(norm64(u) <= S);
  for (let i = 0; i < 100; i++) {
    const want = r.clippedUpdates.reduce((s, u) => s + u[i]!, 0) / 4;
    assert.ok(Math.abs(r.aggregate[i]! - want) < 1e-6);
  }
  // A fixed denominator (the expected number of sites) replaces the count.
  const fixed = clipAndNoiseAggregate(updates, { clipNorm: S, noiseMultiplier: 0, samplingRate: 0.5, expectedSites: 8 }, seededNoise(1));
  for (let i = 0; i < 100; i++) assert.ok(Math.abs(fixed.aggregate[i]! - r.aggregate[i]! / 2) < 1e-6);
});

test('the noise on the sum has standard deviation σS: 100k coordinates with zero updates, within 2%', () => {
  const [sigma, S] = [0.8, 2.5];
  const updates = [new Float32Array(50_000), new Float32Array(50_000), new Float32Array(50_000)];
  const samples: number[] = [];
  const noise = seededNoise(99);
  for (let round = 0; round < 2; round++) {
    const r = clipAndNoiseAggregate(updates, { clipNorm: S, noiseMultiplier: sigma, samplingRate: 0.3 }, noise);
    assert.equal(r.noiseStd, sigma * S);
    for (const v of r.aggregate) samples.push(v * r.denominator);
  }
  const mean = samples.reduce((s, v) => s + v, 0) / samples.length;
  const std = Math.sqrt(samples.reduce((s, v) => s + (v - mean) ** 2, 0) / (samples.length - 1));
  assert.ok(Math.abs(std / (sigma * S) - 1) < 0.02, `std ${std} against ${sigma * S}`);
  assert.ok(Math.abs(mean) < (4 * sigma * S) / Math.sqrt(samples.length));
});

test('each round reports one sampled Gaussian mechanism for the accountant', () => {
  const acc = new RdpAccountant();
  for (let round = 0; round < 5; round++) {
    const r = clipAndNoiseAggregate([randomUpdate(10, 1, round)], { clipNorm: 1, noiseMultiplier: 1.1, samplingRate: 0.2 }, seededNoise(round));
    assert.deepEqual(r.accounting, { noiseMultiplier: 1.1, samplingRate: 0.2, steps: 1 });
    acc.record(r.accounting);
  }
  assert.deepEqual(acc.state().history, [{ noiseMultiplier: 1.1, samplingRate: 0.2, steps: 5 }]);
});

test('bad inputs are refused: no updates, mixed lengths, non-finite values, bad settings', () => {
  const cfg = { clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.1 };
  assert.throws(() => clipAndNoiseAggregate([], cfg, seededNoise(1)), { code: 'FEDMETA_ERR_PRECONDITION' });
  assert.throws(() => clipAndNoiseAggregate([new Float32Array(3), new Float32Array(4)], cfg, seededNoise(1)), { code: 'FEDMETA_ERR_WRONG_LENGTH' });
  assert.throws(() => clipAndNoiseAggregate([Float32Array.from([1, Number.NaN])], cfg, seededNoise(1)), { code: 'FEDMETA_ERR_NON_FINITE' });
  assert.throws(() => clipAndNoiseAggregate([new Float32Array(2)], { ...cfg, clipNorm: -1 }, seededNoise(1)), { code: 'FEDMETA_ERR_CONFIG' });
  assert.throws(() => clipAndNoiseAggregate([new Float32Array(2)], { ...cfg, samplingRate: 2 }, seededNoise(1)), { code: 'FEDMETA_ERR_CONFIG' });
  assert.throws(() => clipAndNoiseAggregate([new Float32Array(2)], { ...cfg, expectedSites: 0 }, seededNoise(1)), { code: 'FEDMETA_ERR_CONFIG' });
});

test('both noise sources draw standard normals: unit spread, no correlation within Box-Muller pairs', () => {
  for (const [name, source] of [
    ['seeded', seededNoise(7)],
    ['crypto', cryptoNoise()],
  ] as const) {
    const z = Float64Array.from({ length: 100_000 }, () => source.normal());
    const mean = z.reduce((s, v) => s + v, 0) / z.length;
    const std = Math.sqrt(z.reduce((s, v) => s + (v - mean) ** 2, 0) / (z.length - 1));
    let pair = 0;
    for (let i = 0; i + 1 < z.length; i += 2) pair += z[i]! * z[i + 1]!;
    pair /= z.length / 2;
    assert.ok(Math.abs(std - 1) < 0.02, `${name}: std ${std}`);
    assert.ok(Math.abs(mean) < 4 / Math.sqrt(z.length), `${name}: mean ${mean}`);
    assert.ok(Math.abs(pair) < 4 / Math.sqrt(z.length / 2), `${name}: pair correlation ${pair}`);
  }
});
