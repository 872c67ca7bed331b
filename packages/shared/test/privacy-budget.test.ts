import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PRIVACY_EXTENSION_KEY, PrivacyBudget, RdpAccountant } from '../src/privacy/index.js';

// The budget as the coordinator (site-level DP) or a site (record-level DP) keeps it across restarts.

const config = { maxEpsilon: 1.5, delta: 1e-5 };
const round = { noiseMultiplier: 2, samplingRate: 0.1, steps: 1 };

/** What a checkpoint store does to extensions: a serialisation round trip (JSON here; msgpack keeps doubles too). */
const persist = (ext: Record<string, unknown>): Record<string, unknown> => JSON.parse(JSON.stringify(ext)) as Record<string, unknown>;

test('a run guarded by the budget stops at the same round with or without restarts in between', () => {
  // Uninterrupted.
  const straight = PrivacyBudget.fresh(config);
  let rounds = 0;
  while (straight.canRun(round)) {
    straight.record(round);
    rounds++;
  }
  assert.ok(rounds > 10, `${rounds} rounds`);
  assert.throws(() => straight.requireRoom(round), { code: 'FEDMETA_ERR_PRIVACY_BUDGET' });
  // Restarted from the checkpoint after every round, each round spent on a clone that is adopted on commit.
  let ext: Record<string, unknown> = { other: 'kept' };
  let restarted = 0;
  for (;;) {
    const budget = PrivacyBudget.fromExtensions(config, persist(ext));
    if (!budget.canRun(round)) break;
    const next = budget.clone();
    next.record(round);
    if (restarted === 1) {
      // An aborted round: its clone is dropped and the checkpoint keeps the old state.
      restarted++;
      continue;
    }
    ext = next.toExtensions(ext);
    restarted++;
  }
  const final = PrivacyBudget.fromExtensions(config, persist(ext));
  assert.equal(final.report().steps, rounds);
  assert.equal(final.report().epsilon, straight.report().epsilon);
  assert.ok(final.report().epsilon <= config.maxEpsilon);
  assert.equal(ext['other'], 'kept');
  assert.deepEqual(Object.keys(ext).sort(), ['other', PRIVACY_EXTENSION_KEY].sort());
});

test('no stored state starts fresh; a damaged one is refused; reports are what the accountant says', () => {
  const fresh = PrivacyBudget.fromExtensions(config, undefined);
  assert.deepEqual(fresh.report(), { epsilon: 0, delta: 1e-5, order: fresh.report().order, maxEpsilon: 1.5, steps: 0, exhausted: false });
  assert.throws(() => PrivacyBudget.fromExtensions(config, { [PRIVACY_EXTENSION_KEY]: { kind: 'rdp' } }), { code: 'FEDMETA_ERR_STATE_CORRUPT' });
  assert.throws(() => PrivacyBudget.fresh({ maxEpsilon: 0, delta: 1e-5 }), { code: 'FEDMETA_ERR_CONFIG' });
  const b = PrivacyBudget.fresh(config);
  b.record([round, round]);
  const acc = new RdpAccountant();
  acc.step(2, 0.1, 2);
  assert.equal(b.report().epsilon, acc.epsilon(1e-5).epsilon);
  // The clone is independent.
  const c = b.clone();
  c.record(round);
  assert.equal(b.report().steps, 2);
  assert.equal(c.report().steps, 3);
});
