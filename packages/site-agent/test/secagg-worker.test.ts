import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinSchema, generateIdentity, identityFromCredential, initParams, initRuntime } from '@fedmeta/shared';
import type { AckMessage, SecAggOffer, SecAggUpdateFields } from '@fedmeta/shared';
import { RoundWorker } from '../src/rounds.js';
import type { OfferInHand } from '../src/rounds.js';
import { loadSiteData, type SiteData } from '../src/site-data.js';
import { SMALL_SPEC, SMALL_TASK } from './fake-coordinator.js';
import { captureLogger, siteCsv, tempDir, writeText } from './fixtures.js';

const CREDENTIAL = 'fmC_' + 'k'.repeat(43);
let data: SiteData;

before(async () => {
  await initRuntime();
  const dir = tempDir({ after: () => undefined });
  data = await loadSiteData({ files: [writeText(dir, 'site.csv', siteCsv(20))], schema: builtinSchema('cicflowmeter'), seed: 1 });
});

function secureOffer(attempt: number, roster = [generateIdentity().publicKey, identityFromCredential(CREDENTIAL).publicKey, generateIdentity().publicKey]): OfferInHand {
  const p = initParams(SMALL_SPEC, 3);
  const secagg: SecAggOffer = { attempt, roundId: new Uint8Array(32).fill(attempt + 1), roster, site: 2, threshold: 2, degree: 0, clipNorm: 10, maxWeight: 1000 };
  return { round: 4, version: 2, task: SMALL_TASK, spec: SMALL_SPEC, manifest: p.manifest, params: p.values, deadline: Date.now() + 60_000, secagg };
}

function worker() {
  const sent: { update: Float32Array; secagg: SecAggUpdateFields | undefined }[] = [];
  let computed = 0;
  const log = captureLogger();
  const w = new RoundWorker({
    logger: log.logger,
    train: { siteSeed: 42, schemaName: 'cicflowmeter' },
    data: () => Promise.resolve(data),
    send: (u, secagg): Promise<AckMessage> => {
      sent.push({ update: u.update, secagg });
      return Promise.resolve({ type: 'ack', round: u.round, accepted: true });
    },
    sendSecAgg: () => Promise.resolve({ type: 'ack', round: 4, accepted: true }),
    credential: () => CREDENTIAL,
    chunkValues: () => 100,
    // These rounds carry no DP: the worker must not need the privacy ledger.
    ledger: () => Promise.reject(new Error('a round without DP asked for the privacy ledger')),
    onComputed: () => computed++,
  });
  return { w, sent, computed: () => computed, log };
}

test('a secure round is answered once per attempt, with fresh signed keys and without the vector; the update is computed once', async () => {
  const { w, sent, computed } = worker();
  w.offer(secureOffer(0));
  await w.settled();
  w.offer(secureOffer(0));
  await w.settled();
  assert.equal(sent.length, 1, 'a second offer of the same attempt is ignored');
  w.offer(secureOffer(1));
  await w.settled();
  assert.equal(sent.length, 2, 'a re-issued attempt is answered again');
  assert.equal(computed(), 1, 'the update of the round is reused for its new attempt');
  assert.deepEqual(sent.map((s) => s.secagg?.attempt), [0, 1]);
  assert.deepEqual(sent.map((s) => s.secagg?.roundId), [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)], "each answer names its attempt's round id");
  assert.equal(sent[0]?.secagg?.advertise.site, 2);
  assert.notDeepEqual(sent[0]?.secagg?.advertise.cPublic, sent[1]?.secagg?.advertise.cPublic, 'fresh keys per attempt');
});

test('a roster that lists another key for this site is not answered: the site cannot sign as itself', async () => {
  const { w, sent, log } = worker();
  w.offer(secureOffer(0, [generateIdentity().publicKey, generateIdentity().publicKey]));
  await w.settled();
  assert.equal(sent.length, 0);
  assert.match(log.text(), /re-enroll this site/);
});
