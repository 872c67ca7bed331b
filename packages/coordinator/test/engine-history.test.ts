import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HISTORY_ROUNDS, SITE_DETAIL_BUDGET, boundHistory, pickBestVersion } from '../src/engine/records.js';
import type { RoundRecord, SiteRoundMetrics } from '../src/state/types.js';

function record(round: number, sites: number, meanValF1?: number): RoundRecord {
  const metrics: SiteRoundMetrics[] = Array.from({ length: sites }, (_, i) => ({ siteId: `s${i}`, examples: 10, episodes: 1, supportLoss: 1, queryLoss: 1 }));
  return {
    round,
    fromVersion: round,
    status: 'committed',
    startedAt: '',
    endedAt: '',
    sampled: [],
    accepted: sites,
    rejected: {},
    sites: metrics,
    ...(meanValF1 === undefined ? {} : { meanValF1 }),
  };
}

test('the checkpoint keeps the newest rounds, and per-site metrics only up to a budget of entries', () => {
  const sites = 1000;
  const all = Array.from({ length: HISTORY_ROUNDS + 500 }, (_, r) => record(r, sites));
  const kept = boundHistory(all, []);
  assert.equal(kept.length, HISTORY_ROUNDS);
  assert.equal(kept[0]!.round, 500, 'the oldest rounds are dropped');
  assert.equal(kept.at(-1)!.round, all.length - 1);
  const detailed = kept.filter((r) => r.sites.length > 0);
  assert.equal(detailed.length, SITE_DETAIL_BUDGET / sites);
  assert.ok(detailed.every((r) => r.round > kept.at(-1)!.round - SITE_DETAIL_BUDGET / sites), 'detail is kept for the newest rounds');
  assert.ok(kept.every((r) => r.accepted === sites), 'summaries stay whole');
  // A small federation keeps everything it has.
  const small = Array.from({ length: 50 }, (_, r) => record(r, 4));
  assert.deepEqual(boundHistory(small, []), small);
});

test('the records of released versions stay, so release --best still sees them', () => {
  const all = Array.from({ length: HISTORY_ROUNDS + 10 }, (_, r) => record(r, 2, r === 3 ? 0.99 : 0.5));
  const kept = boundHistory(all, [3]);
  assert.equal(kept.length, HISTORY_ROUNDS + 1);
  assert.equal(kept[0]!.round, 3);
  assert.equal(pickBestVersion(kept, new Set([3, HISTORY_ROUNDS + 5])), 3);
  // Applying the bound again changes nothing: a checkpoint's history is already bounded.
  assert.deepEqual(boundHistory(kept, [3]), kept);
});
