import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng, isFedmetaError } from '@fedmeta/shared';
import {
  aggregatorConfig,
  alieZ,
  allocateSites,
  gaussianUpdate,
  innerProductManipulation,
  inverseNormalCdf,
  littleIsEnough,
  maliciousSites,
  scaledUpdate,
  signFlip,
} from '../src/attacks/index.js';

const close = (a: ArrayLike<number>, b: readonly number[], tol = 1e-6): void => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `index ${i}: ${a[i]} != ${b[i]}`);
};

test('sign flip reverses (and scales) the own update without touching it', () => {
  const own = Float32Array.from([1, -2, 0.5]);
  close(signFlip(own), [-1, 2, -0.5]);
  close(signFlip(own, 3), [-3, 6, -1.5]);
  close(own, [1, -2, 0.5]);
});

test('scaled update multiplies by the boost and refuses a non-positive one', () => {
  close(scaledUpdate(Float32Array.from([1, -2]), 5), [5, -10]);
  assert.throws(() => scaledUpdate(Float32Array.from([1]), 0), (e: unknown) => isFedmetaError(e));
});

test('"a little is enough" sends mean − z·std of the honest updates, per coordinate', () => {
  // Coordinate 0: values 1, 3 → mean 2, population std 1. Coordinate 1: 2, 6 → mean 4, std 2.
  const honest = [Float32Array.from([1, 2]), Float32Array.from([3, 6])];
  close(littleIsEnough(honest, 0.5), [1.5, 3]);
});

test('the z of "a little is enough" follows n and f as in Baruch et al.', () => {
  // n = 10, f = 2: s = floor(10/2 + 1) − 2 = 4, z = Φ⁻¹(6/10); f = 3: s = 3, z = Φ⁻¹(7/10).
  assert.ok(Math.abs(alieZ(10, 2) - 0.2533471) < 1e-6);
  assert.ok(Math.abs(alieZ(10, 3) - 0.5244005) < 1e-6);
  // n = 50, f = 12: s = 14, z = Φ⁻¹(36/50).
  assert.ok(Math.abs(alieZ(50, 12) - 0.5828415) < 1e-6);
  assert.ok(Math.abs(inverseNormalCdf(0.975) - 1.959964) < 1e-6);
  assert.ok(Math.abs(inverseNormalCdf(0.001) + 3.090232) < 1e-6);
  assert.equal(inverseNormalCdf(0.5), 0);
});

test('inner-product manipulation sends −ε × the honest mean', () => {
  const honest = [Float32Array.from([1, 2]), Float32Array.from([3, 6])];
  close(innerProductManipulation(honest, 0.1), [-0.2, -0.4]);
  close(innerProductManipulation(honest, 2), [-4, -8]);
});

test('the Gaussian attack has the configured norm relative to the own update', () => {
  const own = new Float32Array(10_000).fill(1); // norm 100
  const v = gaussianUpdate(own, 10, createRng(7));
  let sq = 0;
  let sum = 0;
  for (const x of v) {
    sq += x * x;
    sum += x;
  }
  assert.ok(Math.abs(Math.sqrt(sq) - 1000) < 30, `norm ${Math.sqrt(sq)}`);
  assert.ok(Math.abs(sum / v.length) < 0.5, 'zero-mean noise');
});

test('sites are allocated in proportion to attack flows, at least one per office', () => {
  // One site each, then the 6 spare by share of 12,100 attack flows: 0.74, 2.98, 1.49, 0.79 → floors 0, 2, 1, 0
  // and the three largest remainders (.98, .79, .74) get one more.
  assert.deepEqual(allocateSites([1500, 6000, 3000, 1600], 10), [2, 4, 2, 2]);
  assert.deepEqual(allocateSites([10, 10], 2), [1, 1]);
  assert.equal(allocateSites([5, 500, 7], 9).reduce((a, b) => a + b, 0), 9);
  assert.throws(() => allocateSites([1, 2, 3], 2), (e: unknown) => isFedmetaError(e));
});

test('malicious sets grow with the fraction and nest', () => {
  const names = Array.from({ length: 10 }, (_, i) => `s${i}`);
  const a = maliciousSites(names, 0.2, 3);
  const b = maliciousSites(names, 0.3, 3);
  assert.equal(a.length, 2);
  assert.equal(b.length, 3);
  for (const x of a) assert.ok(b.includes(x));
  assert.deepEqual(maliciousSites(names, 0.2, 3), a, 'deterministic for a seed');
});

test('aggregator configs follow n and f, and refuse what the aggregator cannot tolerate', () => {
  assert.deepEqual(aggregatorConfig('multi-krum', 10, 3, 1), { kind: 'multi-krum', f: 3, m: 7 });
  assert.deepEqual(aggregatorConfig('trimmed-mean', 10, 3, 1), { kind: 'trimmed-mean', trim: 3 });
  assert.deepEqual(aggregatorConfig('norm-clip', 10, 3, 0.7), { kind: 'norm-clip', maxNorm: 0.7 });
  assert.throws(() => aggregatorConfig('multi-krum', 6, 2, 1), (e: unknown) => isFedmetaError(e) && /2f \+ 3/.test(e.message));
});
