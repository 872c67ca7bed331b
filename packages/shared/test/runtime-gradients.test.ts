import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initRuntime, tf } from '@fedmeta/shared';
import type { Tensor } from '@fedmeta/shared';

// The project registers its own gradient table (tfjs-core's Node build ships none). Each gradient is checked
// against central finite differences of the same function, evaluated in float32 on the backend.

function seeded(shape: number[], seed: number, lo = -1, hi = 1): Tensor {
  let s = seed;
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n).map(() => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return lo + ((hi - lo) * s) / 2147483648;
  });
  return tf.tensor(v, shape);
}

/** Max relative deviation between tf.grads and finite differences for every input of f. */
function check(f: (...xs: Tensor[]) => Tensor, xs: Tensor[], h = 1e-2): number {
  const analytic = tf.grads((...a: Tensor[]) => tf.sum(f(...a)))(xs);
  let worst = 0;
  xs.forEach((x, k) => {
    const base = x.dataSync() as Float32Array;
    const g = analytic[k]!.dataSync();
    let num = 0;
    let den = 0;
    for (let i = 0; i < base.length; i++) {
      const eval1 = (delta: number): number => {
        const v = Float32Array.from(base);
        v[i] = v[i]! + delta;
        return tf.tidy(() => {
          const args = xs.map((t, j) => (j === k ? tf.tensor(v, x.shape) : t));
          return tf.sum(f(...args)).dataSync()[0]!;
        });
      };
      const fd = (eval1(h) - eval1(-h)) / (2 * h);
      num += (fd - g[i]!) ** 2;
      den += fd ** 2;
    }
    worst = Math.max(worst, Math.sqrt(num / Math.max(den, 1e-12)));
  });
  tf.dispose(analytic);
  return worst;
}

const cases: Array<[string, (...xs: Tensor[]) => Tensor, number[][]]> = [
  ['matMul', (a, b) => tf.matMul(a!, b!), [[3, 4], [4, 2]]],
  ['matMul transposeA', (a, b) => tf.matMul(a!, b!, true, false), [[4, 3], [4, 2]]],
  ['matMul transposeB', (a, b) => tf.matMul(a!, b!, false, true), [[3, 4], [2, 4]]],
  ['matMul both transposed', (a, b) => tf.matMul(a!, b!, true, true), [[4, 3], [2, 4]]],
  ['batched matMul', (a, b) => tf.matMul(a!, b!), [[2, 3, 4], [2, 4, 2]]],
  ['broadcast add/sub/mul/div', (a, b) => tf.div(tf.mul(tf.sub(tf.add(a!, b!), b!), a!), tf.add(tf.square(b!), 1)), [[3, 4], [4]]],
  ['maximum/minimum', (a, b) => tf.add(tf.maximum(a!, b!), tf.minimum(a!, tf.mul(b!, 0.5))), [[3, 4], [3, 4]]],
  ['exp/log/log1p/sqrt', (a) => tf.add(tf.log(tf.add(tf.exp(a!), 1)), tf.sqrt(tf.log1p(tf.square(a!)))), [[2, 5]]],
  ['activations', (a) => tf.add(tf.add(tf.tanh(a!), tf.sigmoid(a!)), tf.add(tf.elu(a!), tf.softplus(a!))), [[3, 5]]],
  ['softmax', (a, w) => tf.mul(tf.softmax(a!), w!), [[3, 4], [3, 4]]],
  ['reductions', (a) => tf.add(tf.add(tf.sum(a!, 1), tf.mean(a!, 1)), tf.mul(tf.max(a!, 1), 2)), [[3, 6]]],
  ['logSumExp', (a) => tf.logSumExp(a!, 1), [[4, 3]]],
  ['reshape/transpose/slice/pad', (a) => tf.pad(tf.slice(tf.transpose(tf.reshape(a!, [4, 3])), [1, 0], [2, 3]), [[1, 0], [0, 2]]), [[2, 6]]],
  ['abs/neg/reciprocal', (a) => tf.add(tf.abs(a!), tf.neg(tf.reciprocal(tf.add(tf.square(a!), 1)))), [[3, 3]]],
];

for (const backend of ['wasm', 'cpu'] as const) {
  test(`registered gradients match finite differences (${backend})`, async () => {
    await initRuntime({ backend });
    const before = tf.memory().numTensors;
    for (const [name, f, shapes] of cases) {
      const xs = shapes.map((s, i) => seeded(s, 7 + 13 * i));
      const err = check(f, xs);
      assert.ok(err < 2e-3, `${name}: relative error ${err}`);
      tf.dispose(xs);
    }
    assert.equal(tf.memory().numTensors, before);
  });
}

test('second derivatives through tanh, sigmoid and exp are right (saved inputs, not outputs)', async () => {
  await initRuntime({ backend: 'wasm' });
  const x = tf.tensor1d([-0.7, 0.2, 1.1]);
  const d2 = (f: (t: Tensor) => Tensor): Float32Array =>
    tf.tidy(() => tf.grad((t: Tensor) => tf.sum(tf.grad((u: Tensor) => tf.sum(f(u)))(t)))(x).dataSync() as Float32Array);
  const xs = [-0.7, 0.2, 1.1];
  const tanh2 = xs.map((v) => -2 * Math.tanh(v) * (1 - Math.tanh(v) ** 2));
  const sig = (v: number): number => 1 / (1 + Math.exp(-v));
  const sig2 = xs.map((v) => sig(v) * (1 - sig(v)) * (1 - 2 * sig(v)));
  const exp2 = xs.map((v) => Math.exp(v));
  for (const [f, want] of [
    [tf.tanh, tanh2],
    [tf.sigmoid, sig2],
    [tf.exp, exp2],
  ] as const) {
    const got = d2(f as (t: Tensor) => Tensor);
    want.forEach((w, i) => assert.ok(Math.abs(got[i]! - w) < 1e-5, `${got[i]} vs ${w}`));
  }
  x.dispose();
});
