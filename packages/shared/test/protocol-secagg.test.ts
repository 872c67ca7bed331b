import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessage, encodeMessage, ErrorCode, maxMessageBytes, SECAGG_MAX_SITES } from '../src/index.js';
import type { Message } from '../src/index.js';
import { codeOf, edgeVector, fakeBytes, MANIFEST_SIZE, rawPackr, sampleUpdate, secAggSamples } from './protocol-fixtures.js';

const LIMITS = { maxBytes: maxMessageBytes(MANIFEST_SIZE), expectedLength: () => MANIFEST_SIZE };
const decode = (m: unknown): string => codeOf(() => decodeMessage(rawPackr.pack(m), LIMITS));
const sample = (type: string): Record<string, unknown> => structuredClone(secAggSamples().find((m) => m.type === type)) as unknown as Record<string, unknown>;

test('every secure-aggregation message round-trips with its byte strings intact', () => {
  for (const m of secAggSamples()) assert.deepEqual(decodeMessage(encodeMessage(m), LIMITS), m, m.type);
});

test('byte strings of the wrong length or kind are refused', () => {
  const keys = sample('secagg-keys');
  const k0 = (keys['keys'] as Record<string, unknown>[])[0] as Record<string, unknown>;
  for (const [field, bad] of [['cPublic', fakeBytes(31)], ['sPublic', fakeBytes(33)], ['signature', fakeBytes(63)], ['cPublic', new Uint16Array(16)], ['signature', 'x'.repeat(64)]] as const) {
    const m = structuredClone(keys);
    ((m['keys'] as Record<string, unknown>[])[0] as Record<string, unknown>)[field] = bad;
    assert.equal(decode(m), ErrorCode.SCHEMA, `${field}`);
  }
  assert.equal(k0['site'], 2);
  const shares = sample('secagg-shares');
  ((shares['shares'] as Record<string, unknown>[])[0] as Record<string, unknown>)['ciphertext'] = fakeBytes(101);
  assert.equal(decode(shares), ErrorCode.SCHEMA, 'a sealed share is 102 bytes');
  const unmask = sample('secagg-unmask');
  ((unmask['keyShares'] as Record<string, unknown>[])[0] as Record<string, unknown>)['value'] = fakeBytes(32);
  assert.equal(decode(unmask), ErrorCode.SCHEMA, 'a Shamir share is 33 bytes');
  const offer = sample('round-offer');
  (offer['secagg'] as Record<string, unknown>)['roundId'] = fakeBytes(8);
  assert.equal(decode(offer), ErrorCode.SCHEMA, 'a round id of 8 bytes');
});

test('what a site sends names its round id, of 16 to 64 bytes; what the coordinator sends does not', () => {
  const secure = secAggSamples().find((m) => m.type === 'update') as unknown as Record<string, unknown>;
  const fields = secure['secagg'] as Record<string, unknown>;
  const { roundId: _, ...without } = fields;
  assert.equal(decode({ ...secure, secagg: without }), ErrorCode.SCHEMA, 'the update keys without a round id');
  for (const bad of [fakeBytes(15), fakeBytes(65), 'x'.repeat(32), new Uint16Array(16)]) {
    assert.equal(decode({ ...secure, secagg: { ...fields, roundId: bad } }), ErrorCode.SCHEMA, `the update keys with ${String(bad.length)} units`);
  }
  for (const type of ['secagg-shares', 'secagg-masked', 'secagg-confirm', 'secagg-unmask']) {
    const m = sample(type);
    for (const ok of [fakeBytes(16), fakeBytes(64)]) assert.equal(decode({ ...m, roundId: ok }), 'no error', `${type} with ${ok.length} bytes`);
    const { roundId: _id, ...missing } = m;
    assert.equal(decode(missing), ErrorCode.SCHEMA, `${type} without a round id`);
    for (const bad of [fakeBytes(15), fakeBytes(65), 'x'.repeat(32), null]) assert.equal(decode({ ...m, roundId: bad }), ErrorCode.SCHEMA, `${type} with ${String(bad)}`);
  }
  assert.equal(decode({ ...sample('secagg-keys'), roundId: fakeBytes(32) }), ErrorCode.SCHEMA, 'the coordinator names no round id');
});

test('lists and indices are bounded by the roster limit, and a site index must lie in the roster', () => {
  const survivors = sample('secagg-survivors');
  survivors['survivors'] = Array.from({ length: SECAGG_MAX_SITES + 1 }, (_, i) => 1 + (i % SECAGG_MAX_SITES));
  assert.equal(decode(survivors), ErrorCode.SCHEMA);
  for (const site of [0, SECAGG_MAX_SITES + 1, 1.5, -1]) assert.equal(decode({ ...sample('secagg-confirm'), site }), ErrorCode.SCHEMA, String(site));
  const offer = sample('round-offer');
  (offer['secagg'] as Record<string, unknown>)['site'] = 4;
  assert.equal(decode(offer), ErrorCode.SCHEMA, 'site 4 of a roster of 3');
  const odd = sample('round-offer');
  (odd['secagg'] as Record<string, unknown>)['degree'] = 3;
  assert.equal(decode(odd), ErrorCode.SCHEMA, 'an odd degree');
});

test('a masked piece must fit the layout of the update it belongs to', () => {
  const masked = sample('secagg-masked');
  assert.equal(decode({ ...masked, masked: fakeBytes(44) }), ErrorCode.WRONG_LENGTH, 'piece 1 of 2 over 20 words is 10 words');
  assert.equal(decode({ ...masked, masked: fakeBytes(42) }), ErrorCode.SCHEMA, 'whole words only');
  assert.equal(decode({ ...masked, index: 2 }), ErrorCode.CHUNK);
  assert.equal(decode({ ...masked, count: 21, index: 0, masked: fakeBytes(4) }), ErrorCode.CHUNK, '21 pieces cannot split 20 words');
});

test('a secure update carries keys and no vector; a plain update carries no keys', () => {
  const secure = secAggSamples().find((m) => m.type === 'update') as Message;
  assert.equal(decode({ ...secure, update: edgeVector(MANIFEST_SIZE) }), ErrorCode.SCHEMA, 'the vector with the keys');
  assert.equal(decode({ ...secure, chunks: 2 }), ErrorCode.SCHEMA, 'chunks announced with the keys');
  assert.equal(decode({ ...secure, secagg: { attempt: 1 } }), ErrorCode.SCHEMA, 'keys missing');
  assert.equal(decodeMessage(encodeMessage(sampleUpdate()), LIMITS).type, 'update');
});
