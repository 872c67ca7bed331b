import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RdpAccountant, calibrateNoiseMultiplier, computeRdp, rdpToEpsilon } from '../src/privacy/index.js';

// The accountant is what stops a federation when its privacy budget is spent: it must compose correctly,
// survive a checkpoint exactly, and say "exhausted" at the right step.

const DELTA = 1e-5;

test('steps compose by adding RDP: one call of t steps equals t calls of one, and mixed mechanisms add up', () => {
  const orders = [1.5, 2, 4, 8, 16, 32];
  const many = new RdpAccountant({ orders });
  for (let i = 0; i < 250; i++) many.step(1.1, 0.01);
  const once = new RdpAccountant({ orders });
  once.step(1.1, 0.01, 250);
  const a = many.state().rdp;
  const b = once.state().rdp;
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) <= 1e-12 * b[i]!, `order ${orders[i]}`));
  assert.equal(many.steps, 250);
  assert.deepEqual(many.state().history, [{ noiseMultiplier: 1.1, samplingRate: 0.01, steps: 250 }]);

  const mixed = new RdpAccountant({ orders });
  mixed.step(1.1, 0.01, 100);
  mixed.record([
    { noiseMultiplier: 2, samplingRate: 0.05, steps: 10 },
    { noiseMultiplier: 1.1, samplingRate: 0.01, steps: 5 },
  ]);
  const want = computeRdp(1.1, 0.01, 105, orders).map((v, i) => v + computeRdp(2, 0.05, 10, orders)[i]!);
  mixed.state().rdp.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) <= 1e-12 * want[i]!));
  assert.equal(mixed.state().history.length, 3);
});

test('ε after the tutorial\'s 60 MNIST epochs matches the standalone computation, and previews do not spend', () => {
  const acc = new RdpAccountant();
  const preview = acc.epsilonAfter(1.12, 256 / 60000, 14040, DELTA);
  assert.equal(acc.steps, 0);
  assert.equal(acc.epsilon(DELTA).epsilon, 0);
  acc.step(1.12, 256 / 60000, 14040);
  const e = acc.epsilon(DELTA);
  assert.equal(e.epsilon, preview.epsilon);
  // With the default (improved) conversion and the default orders: below the tutorial's classic 2.92.
  assert.ok(e.epsilon > 2.3 && e.epsilon < 2.92, `ε = ${e.epsilon}`);
  assert.ok(e.order > 1 && e.order < 20);
});

test('the state is plain JSON that restores exactly: same ε to the bit, and the same future', () => {
  const acc = new RdpAccountant();
  acc.step(1.3, 0.004, 1000);
  acc.step(0.9, 0.02, 37);
  const json = JSON.stringify(acc.state());
  const restored = RdpAccountant.restore(JSON.parse(json));
  assert.deepEqual(restored.state(), acc.state());
  assert.equal(restored.epsilon(DELTA).epsilon, acc.epsilon(DELTA).epsilon);
  acc.step(1.3, 0.004, 500);
  restored.step(1.3, 0.004, 500);
  assert.deepEqual(restored.state(), acc.state());
  assert.equal(restored.epsilon(1e-6).epsilon, acc.epsilon(1e-6).epsilon);
  const classic = new RdpAccountant({ conversion: 'classic', orders: [2, 3] });
  classic.step(1, 0.1, 3);
  assert.equal(RdpAccountant.restore(JSON.parse(JSON.stringify(classic.state()))).epsilon(DELTA).epsilon, classic.epsilon(DELTA).epsilon);
});

test('a damaged or tampered state is refused as corrupt, never silently reset', () => {
  const acc = new RdpAccountant({ orders: [2, 4, 8] });
  acc.step(1, 0.05, 100);
  const good = acc.state();
  const corrupt = { code: 'FEDMETA_ERR_STATE_CORRUPT' };
  const tampered = { ...good, rdp: good.rdp.map((v) => v / 2) }; // someone "refunds" half the budget
  assert.throws(() => RdpAccountant.restore(tampered), corrupt);
  assert.throws(() => RdpAccountant.restore({ ...good, history: [] }), corrupt);
  assert.throws(() => RdpAccountant.restore({ ...good, kind: 'pld' }), corrupt);
  assert.throws(() => RdpAccountant.restore({ ...good, formatVersion: 2 }), corrupt);
  assert.throws(() => RdpAccountant.restore({ ...good, rdp: [1, 2] }), corrupt);
  assert.throws(() => RdpAccountant.restore({ ...good, orders: [2, 2, 8] }), corrupt);
  assert.throws(() => RdpAccountant.restore({ ...good, history: [{ noiseMultiplier: 0, samplingRate: 0.05, steps: 100 }] }), corrupt);
  assert.throws(() => RdpAccountant.restore({ ...good, conversion: 'optimistic' }), corrupt);
  assert.throws(() => RdpAccountant.restore(null), corrupt);
});

test('the budget is exhausted exactly at the step where ε first reaches it (Gaussian mechanism, hand-computed ε)', () => {
  // q = 1: each step has RDP α/(2σ²), so after t steps the classic conversion gives
  // ε(t) = min over α of t α / (2σ²) - log δ / (α - 1), which is computed here by hand.
  const orders = [2, 4, 8, 16, 32];
  const sigma = 4;
  const maxEpsilon = 3;
  const byHand = (t: number): number => Math.min(...orders.map((a) => (t * a) / (2 * sigma * sigma) - Math.log(DELTA) / (a - 1)));
  let flip = 0;
  while (byHand(flip) < maxEpsilon) flip++;
  assert.ok(flip > 3, 'the test budget lasts a few steps');
  const acc = new RdpAccountant({ orders, conversion: 'classic' });
  for (let t = 0; t <= flip + 1; t++) {
    // Before any step nothing has been released: ε is 0, not the conversion's offset.
    assert.ok(Math.abs(acc.epsilon(DELTA).epsilon - (t === 0 ? 0 : byHand(t))) < 1e-12, `ε after ${t} steps`);
    assert.equal(acc.budgetExhausted(maxEpsilon, DELTA), t >= flip, `exhausted after ${t} steps`);
    // Before a step, the engine asks whether one more fits; the answer turns false one step earlier.
    assert.equal(acc.canAfford(sigma, 1, 1, maxEpsilon, DELTA), byHand(t + 1) <= maxEpsilon, `affordable after ${t} steps`);
    acc.step(sigma, 1);
  }
});

test('a training loop guarded by canAfford ends within budget with no room for one more round', () => {
  const acc = new RdpAccountant();
  const [sigma, q, stepsPerRound, budget] = [1.5, 0.02, 10, 1.0];
  let rounds = 0;
  while (acc.canAfford(sigma, q, stepsPerRound, budget, DELTA)) {
    acc.step(sigma, q, stepsPerRound);
    rounds++;
  }
  assert.ok(rounds > 5, `${rounds} rounds`);
  const spent = acc.epsilon(DELTA).epsilon;
  assert.ok(spent <= budget);
  const orders = acc.state().orders;
  const next = rdpToEpsilon(orders, computeRdp(sigma, q, (rounds + 1) * stepsPerRound, orders), DELTA).epsilon;
  assert.ok(next > budget, `one more round would spend ${next}`);
});

test('calibrateNoiseMultiplier recovers the tutorial\'s σ = 1.12 from its ε = 2.92 (classic conversion)', () => {
  const orders = [...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10), ...Array.from({ length: 52 }, (_, i) => 12 + i)];
  const sigma = calibrateNoiseMultiplier(2.92, DELTA, 256 / 60000, 14040, { orders, conversion: 'classic' });
  assert.ok(Math.abs(sigma - 1.12) < 0.005, `σ = ${sigma}`);
  // The calibrated σ spends no more than the target.
  const e = rdpToEpsilon(orders, computeRdp(sigma, 256 / 60000, 14040, orders), DELTA, 'classic').epsilon;
  assert.ok(e <= 2.92);
});

test('invalid steps and budgets are refused', () => {
  const acc = new RdpAccountant();
  const config = { code: 'FEDMETA_ERR_CONFIG' };
  assert.throws(() => acc.step(0, 0.1), config);
  assert.throws(() => acc.step(1, 0.1, -1), config);
  assert.throws(() => acc.budgetExhausted(0, DELTA), config);
  assert.throws(() => acc.epsilon(2), config);
  assert.throws(() => new RdpAccountant({ orders: [] }), config);
  assert.throws(() => new RdpAccountant({ orders: [0.5, 2] }), config);
  acc.step(1, 0.1, 0);
  assert.equal(acc.steps, 0);
});
