import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoundEngine } from '../src/engine/round-engine.js';
import { createMemoryHub } from '../src/engine/memory-hub.js';
import type { RoundOffer } from '../src/engine/hub.js';
import { MemoryStore } from './helpers/memory-store.js';
import { captureLogger, engineConfig, initialCheckpoint, quadraticUpdate, vec } from './helpers/engine-fixtures.js';

const DIM = 6;
const target = vec(DIM, (j) => j + 1);

/**
 * Sites that behave like the real agent: each answers a (round, version) once and ignores a second offer of
 * it. `ready` says which sites have their update ready in time for a given offer.
 */
function onceAnsweringFederation(names: string[], ready: (site: string) => boolean) {
  const m = createMemoryHub();
  const offers = new Map<string, number>();
  for (const site of names) {
    const answered = new Set<string>();
    m.connect(site, (offer: RoundOffer) => {
      offers.set(site, (offers.get(site) ?? 0) + 1);
      const key = `${offer.round}/${offer.version}`;
      if (answered.has(key) || !ready(site)) return null;
      answered.add(key);
      return quadraticUpdate(offer, target);
    });
  }
  return { m, offers };
}

test('a round re-issued after a missed quorum keeps the updates its aborted attempt accepted', async () => {
  const names = ['a', 'b', 'c', 'd'];
  let late = new Set(['c', 'd']);
  const { m, offers } = onceAnsweringFederation(names, (s) => !late.has(s));
  const engine = new RoundEngine({
    store: new MemoryStore(),
    hub: m.hub,
    config: engineConfig({ deadlineSeconds: 0.25, minSites: 4, quorum: { kind: 'count', value: 3 }, maxConsecutiveAborts: 3 }),
    logger: captureLogger('silent').logger,
  });
  let aborts = 0;
  engine.on('round-aborted', () => {
    aborts++;
    // The slow sites catch up between the attempts; a and b, having answered, ignore the re-offer.
    late = new Set();
  });
  await engine.init(initialCheckpoint(DIM - 1));
  const record = await engine.runRound();

  assert.equal(record.status, 'committed');
  assert.equal(aborts, 1, 'the first attempt missed the quorum and the second committed');
  assert.equal(record.accepted, 4, 'the two updates of the aborted attempt count with the two new ones');
  for (const s of names) assert.equal(offers.get(s), 2, `site ${s} was offered both attempts`);
});
