import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CHUNK_VALUES,
  ErrorCode,
  HEADER_SLACK_BYTES,
  PROTOCOL_LIMITS,
  PROTOCOL_VERSION,
  SERVER_MESSAGE_TYPES,
  SITE_MESSAGE_TYPES,
  decodeHandshake,
  decodeMessage,
  decodeMessageOf,
  encodeMessage,
  chunkCount,
  manifestFor,
  manifestSize,
  maxMessageBytes,
  type Message,
  type ModelSpec,
  type ParamManifest,
  type RoundOfferMessage,
  type UpdateMessage,
} from '@fedmeta/shared';
import { MANIFEST_SIZE, TASK, bytesOf, codeOf, edgeVector, linearModel, sampleMessages, sampleUpdate } from './protocol-fixtures.js';

const LIMITS = { maxBytes: maxMessageBytes(MANIFEST_SIZE), expectedLength: () => MANIFEST_SIZE };

function vectorsOf(m: Message): Float32Array[] {
  const out: Float32Array[] = [];
  for (const v of Object.values(m)) if (v instanceof Float32Array) out.push(v);
  return out;
}

test('every message type round-trips, with float32 vectors byte-exact (-0, subnormals, extremes)', () => {
  const samples = sampleMessages();
  const types = new Set(samples.map((m) => m.type));
  assert.deepEqual([...types].sort(), [...SITE_MESSAGE_TYPES, ...SERVER_MESSAGE_TYPES].sort());
  for (const m of samples) {
    const decoded = decodeMessage(encodeMessage(m), LIMITS);
    assert.deepEqual(decoded, m, m.type);
    const sent = vectorsOf(m);
    const got = vectorsOf(decoded);
    assert.equal(got.length, sent.length);
    for (let i = 0; i < sent.length; i++) {
      const g = got[i] as Float32Array;
      assert.equal(Object.getPrototypeOf(g), Float32Array.prototype);
      assert.ok(bytesOf(g).equals(bytesOf(sent[i] as Float32Array)), `${m.type}: vector bytes differ`);
    }
  }
  const v = (decodeMessage(encodeMessage(sampleUpdate()), LIMITS) as UpdateMessage).update as Float32Array;
  assert.ok(Object.is(v[0], -0), 'negative zero keeps its sign');
});

test('integers beyond 32 bits (epoch-ms deadlines) and large versions round-trip exactly', () => {
  const m: RoundOfferMessage = {
    type: 'round-offer',
    round: 2 ** 40 + 3,
    version: Number.MAX_SAFE_INTEGER,
    task: { ...TASK, seed: 2 ** 32 + 1 },
    ...linearModel(2),
    params: new Float32Array([1, 2]),
    chunks: 0,
    deadline: 1_767_225_600_123,
  };
  assert.deepEqual(decodeMessage(encodeMessage(m), { maxBytes: 1024 }), m);
  // Small integers use msgpack's compact forms, including 64..127, which share a range with record ids.
  for (let round = 0; round < 300; round++) {
    assert.equal((decodeMessage(encodeMessage({ type: 'ack', round, accepted: true }), { maxBytes: 64 }) as { round: number }).round, round);
  }
});

test('decodes a Buffer that sits at an odd offset inside a larger pool, as socket.io delivers it', () => {
  const bytes = encodeMessage(sampleUpdate());
  const pool = Buffer.alloc(bytes.byteLength + 3);
  pool.set(bytes, 1);
  const view = pool.subarray(1, 1 + bytes.byteLength);
  assert.deepEqual(decodeMessage(view, LIMITS), sampleUpdate());
});

test('encoded bytes stay intact when more messages are encoded afterwards', () => {
  const first = encodeMessage(sampleUpdate());
  const copy = Buffer.from(first);
  for (const m of sampleMessages()) encodeMessage(m);
  for (let i = 0; i < 50; i++) encodeMessage(sampleUpdate({ update: edgeVector(MANIFEST_SIZE, i) }));
  assert.ok(Buffer.from(first.buffer, first.byteOffset, first.byteLength).equals(copy));
});

test('encodeMessage refuses what the receiver would refuse, so nothing invalid leaves', () => {
  const nan = edgeVector(MANIFEST_SIZE);
  nan[5] = Number.NaN;
  assert.equal(codeOf(() => encodeMessage(sampleUpdate({ update: nan }))), ErrorCode.NON_FINITE);
  const extra = { ...sampleUpdate(), flows: [1, 2, 3] } as unknown as Message;
  assert.equal(codeOf(() => encodeMessage(extra)), ErrorCode.SCHEMA);
  assert.equal(codeOf(() => encodeMessage(sampleUpdate({ round: -1 }))), ErrorCode.SCHEMA);
});

test('decodeMessageOf and accept lists admit only the types an end expects', () => {
  const update = encodeMessage(sampleUpdate());
  assert.equal(decodeMessageOf('update', update, LIMITS).type, 'update');
  assert.equal(codeOf(() => decodeMessageOf('update-chunk', update, LIMITS)), ErrorCode.SCHEMA);
  const welcome = encodeMessage(sampleMessages().find((m) => m.type === 'welcome') as Message);
  assert.equal(codeOf(() => decodeMessage(welcome, { ...LIMITS, accept: SITE_MESSAGE_TYPES })), ErrorCode.SCHEMA);
  assert.equal(decodeMessage(welcome, { ...LIMITS, accept: SERVER_MESSAGE_TYPES }).type, 'welcome');
});

test('the handshake travels as JSON in socket.io auth and is checked by the same schema', () => {
  const hello = sampleMessages()[0] as Message;
  assert.deepEqual(decodeHandshake(JSON.parse(JSON.stringify(hello))), hello);
  const v2 = { ...hello, protocolVersion: PROTOCOL_VERSION + 1, newField: true };
  assert.equal(codeOf(() => decodeHandshake(JSON.parse(JSON.stringify(v2)))), ErrorCode.PROTOCOL_VERSION);
  const welcome = sampleMessages().find((m) => m.type === 'welcome') as Message;
  assert.equal(codeOf(() => decodeHandshake(welcome)), ErrorCode.SCHEMA);
  for (const bad of [undefined, null, 'hello', 42, [], {}, { token: 'x' }]) {
    assert.equal(codeOf(() => decodeHandshake(bad)), ErrorCode.SCHEMA);
  }
  const recovering = { pid: 'Qk3vX9', offset: 'MzQ1', ...JSON.parse(JSON.stringify(hello)) };
  assert.deepEqual(decodeHandshake(recovering), hello, 'socket.io recovery fields are set aside');
  assert.equal(codeOf(() => decodeHandshake({ ...recovering, pid: 42 })), ErrorCode.SCHEMA);
  const polluting = JSON.parse(`{"type":"hello","pid":"p","__proto__":{"polluted":true}}`);
  assert.equal(codeOf(() => decodeHandshake(polluting)), ErrorCode.SCHEMA);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
});

test('a 50k-parameter update costs within 2% of 4 bytes per parameter on the wire', (t) => {
  const n = 50_000;
  const update = new Float32Array(n);
  for (let i = 0; i < n; i++) update[i] = Math.sin(i) * 1e-3;
  const msg = sampleUpdate({ update, metrics: { supportLoss: 0.7, queryLoss: 0.4, queryAccuracy: 0.9, valF1: 0.8 } });
  const limits = { maxBytes: maxMessageBytes(n), expectedLength: () => n };
  const bytes = encodeMessage(msg);
  const ratio = bytes.byteLength / (4 * n);
  assert.ok(ratio >= 1 && ratio <= 1.02, `wire ratio ${ratio}`);
  assert.ok(bytes.byteLength <= limits.maxBytes);
  // Timing is reported, not asserted: the machine is shared.
  const reps = 200;
  for (let i = 0; i < 100; i++) decodeMessage(encodeMessage(msg), limits);
  const start = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) decodeMessage(encodeMessage(msg), limits);
  const us = Number(process.hrtime.bigint() - start) / reps / 1000;
  t.diagnostic(`50k-float update: ${bytes.byteLength} bytes, ratio ${ratio.toFixed(5)}, encode+decode+validate ${us.toFixed(0)} µs (warm)`);
});

test('maxMessageBytes covers the largest header the schema allows, so only vectors decide the limit', () => {
  assert.equal(maxMessageBytes(50_000), HEADER_SLACK_BYTES + 200_000);
  assert.equal(maxMessageBytes(10_000_000), HEADER_SLACK_BYTES + 4 * CHUNK_VALUES);
  assert.equal(codeOf(() => maxMessageBytes(0)), ErrorCode.PRECONDITION);
  const L = PROTOCOL_LIMITS;
  // The largest manifest a spec can describe: as many layers as the entry limit allows, with Meta-SGD step sizes.
  const layers = L.manifestEntries / 4;
  const spec: ModelSpec = { inputDim: 650, hidden: Array.from({ length: layers - 1 }, () => 650), activation: 'softplus', task: { kind: 'multiclass', classes: 65 } };
  const manifest: ParamManifest = manifestFor(spec, { metaSgd: true });
  assert.equal(manifest.length, L.manifestEntries);
  const offer: RoundOfferMessage = {
    type: 'round-offer',
    round: Number.MAX_SAFE_INTEGER,
    version: Number.MAX_SAFE_INTEGER,
    task: { algorithm: 'fomaml', innerSteps: 10_000, innerLr: 0.1234567, shots: 1e6, queryShots: 1e6, episodes: 1e6, seed: Number.MAX_SAFE_INTEGER },
    spec,
    manifest,
    params: null,
    chunks: chunkCount(manifestSize(manifest), 1024),
    deadline: Number.MAX_SAFE_INTEGER,
  };
  const header = encodeMessage(offer).byteLength;
  assert.ok(header < HEADER_SLACK_BYTES, `round-offer header ${header} bytes`);
  const error = { type: 'error', code: ErrorCode.NOT_READY, message: '\u{1F512}'.repeat(L.errorMessageChars / 2) } as const;
  assert.ok(encodeMessage(error).byteLength < HEADER_SLACK_BYTES);
});
