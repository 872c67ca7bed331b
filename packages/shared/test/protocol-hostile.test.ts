import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Packr } from 'msgpackr';
import {
  ErrorCode,
  PROTOCOL_LIMITS,
  PROTOCOL_VERSION,
  decodeMessage,
  encodeMessage,
  maxMessageBytes,
  validateMessage,
  type Message,
} from '@fedmeta/shared';
import { MANIFEST, MANIFEST_SIZE, SPEC, TASK, cloningPackr, codeOf, edgeVector, rawPackr, sampleMessages, sampleUpdate } from './protocol-fixtures.js';

const LIMITS = { maxBytes: maxMessageBytes(MANIFEST_SIZE), expectedLength: () => MANIFEST_SIZE };
const decode = (bytes: Uint8Array) => () => decodeMessage(bytes, LIMITS);
/** The update as a plain object a hostile peer edits before packing it without validation. */
const updateObject = (): Record<string, unknown> => ({ ...sampleUpdate() });
const withField = (path: string[], value: unknown): Uint8Array => {
  const root = structuredClone(updateObject()) as Record<string, unknown>;
  let o = root;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
  o[path[path.length - 1] as string] = value;
  return rawPackr.pack(root);
};
const pollutedCheck = () => assert.equal(({} as Record<string, unknown>)['polluted'], undefined, 'Object.prototype was polluted');

test('every truncation of a valid message is a DECODE error', () => {
  const bytes = encodeMessage(sampleUpdate());
  for (let n = 0; n < bytes.byteLength; n++) {
    assert.equal(codeOf(decode(bytes.subarray(0, n))), ErrorCode.DECODE, `prefix of ${n} bytes`);
  }
});

test('trailing bytes after a valid message are a DECODE error', () => {
  const bytes = encodeMessage(sampleUpdate());
  assert.equal(codeOf(decode(Buffer.concat([bytes, Buffer.from([0xc0])]))), ErrorCode.DECODE);
});

test('headers claiming 4 GB arrays, maps, strings, binaries or extensions fail without allocating', () => {
  const claims = [
    [0xdd, 0xff, 0xff, 0xff, 0xff], // array 32
    [0xdf, 0xff, 0xff, 0xff, 0xff], // map 32
    [0xdb, 0xff, 0xff, 0xff, 0xff], // str 32
    [0xc6, 0xff, 0xff, 0xff, 0xff], // bin 32
    [0xc9, 0xff, 0xff, 0xff, 0xff, 0x74], // ext 32 (typed array)
    [0xc9, 0xff, 0xff, 0xff, 0xff, 0x73], // ext 32 (set)
  ];
  const before = process.memoryUsage().arrayBuffers;
  for (const c of claims) {
    assert.equal(codeOf(decode(Buffer.from([...c, 0, 0, 0, 0, 0]))), ErrorCode.DECODE, c.join(','));
    // The same claim nested where the update vector belongs.
    const inner = Buffer.from(rawPackr.pack({ ...updateObject(), update: 'PLACEHOLDER' }));
    const at = inner.indexOf(Buffer.from('PLACEHOLDER')) - 1;
    const nested = Buffer.concat([inner.subarray(0, at), Buffer.from(c), inner.subarray(at + 12)]);
    assert.equal(codeOf(decode(nested)), ErrorCode.DECODE, `nested ${c.join(',')}`);
  }
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024);
});

test('100k-deep nesting of arrays or maps is a DECODE error, not a crash', () => {
  const arrays = Buffer.alloc(100_001, 0x91);
  arrays[100_000] = 0xc0;
  const maps = Buffer.alloc(3 * 100_000 + 1);
  for (let i = 0; i < 100_000; i++) maps.set([0x81, 0xa1, 0x61], 3 * i);
  maps[3 * 100_000] = 0xc0;
  const limits = { maxBytes: 1 << 20 };
  assert.equal(codeOf(() => decodeMessage(arrays, limits)), ErrorCode.DECODE);
  assert.equal(codeOf(() => decodeMessage(maps, limits)), ErrorCode.DECODE);
  // Shallow enough to decode, still refused by the schema.
  const deep = Buffer.alloc(1_001, 0x91);
  deep[1_000] = 0xc0;
  assert.equal(codeOf(() => decodeMessage(deep, limits)), ErrorCode.SCHEMA);
});

test('__proto__, constructor and prototype keys are refused and pollute nothing', () => {
  const key = (k: string) => [0xa0 + k.length, ...Buffer.from(k)];
  const evil = (k: string) =>
    Buffer.from([0x82, ...key('type'), ...key('update'), ...key(k), 0x81, ...key('polluted'), 0xc3]);
  for (const k of ['__proto__', 'constructor', 'prototype']) {
    assert.equal(codeOf(decode(evil(k))), ErrorCode.SCHEMA, k);
  }
  // Nested inside an otherwise valid update, and through the handshake's JSON path.
  const nested = rawPackr.pack({ ...updateObject(), metrics: { supportLoss: 1, queryLoss: 1 } });
  const patched = Buffer.from(nested);
  const i = patched.indexOf(Buffer.from('queryLoss'));
  patched.set(Buffer.from('__proto__'), i);
  assert.equal(codeOf(decode(patched)), ErrorCode.SCHEMA);
  const json = JSON.parse(`{"type":"update","__proto__":{"polluted":true}}`);
  assert.equal(codeOf(() => validateMessage(json)), ErrorCode.SCHEMA);
  pollutedCheck();
});

test('wrong types give SCHEMA', () => {
  const cases: [string[], unknown][] = [
    [['round'], '7'],
    [['round'], true],
    [['round'], 1.5],
    [['round'], -1],
    [['round'], null],
    [['version'], [6]],
    [['counts'], [4, 168]],
    [['counts', 'episodes'], 0],
    [['metrics', 'queryLoss'], '0.4'],
    [['metrics', 'queryLoss'], -0.1],
    [['metrics', 'valF1'], 1.5],
    [['update'], Array.from(edgeVector(MANIFEST_SIZE))],
    [['update'], 'AAAA'],
    [['chunks'], 1],
    [['secagg'], { mask: 1 }],
    [['privacy'], { epsilon: -1 }],
    [['privacy'], 'none'],
    [['privacy'], { delta: 0 }],
    [['privacy'], { delta: 1 }],
    [['type'], 'updates'],
    [['type'], 5],
  ];
  for (const [path, value] of cases) {
    assert.equal(codeOf(decode(withField(path, value))), ErrorCode.SCHEMA, `${path.join('.')} = ${String(value)}`);
  }
  for (const top of [null, 42, 'update', [sampleUpdate()], true]) {
    assert.equal(codeOf(decode(rawPackr.pack(top))), ErrorCode.SCHEMA, String(top));
  }
  for (const payload of ['bytes', { type: 'update' }, new ArrayBuffer(8), null, [1, 2]]) {
    assert.equal(codeOf(() => decodeMessage(payload as unknown as Uint8Array, LIMITS)), ErrorCode.DECODE);
  }
});

test('NaN and infinities in metrics, integers and vectors give NON_FINITE', () => {
  for (const bad of [Number.NaN, Infinity, -Infinity]) {
    assert.equal(codeOf(decode(withField(['metrics', 'supportLoss'], bad))), ErrorCode.NON_FINITE);
    assert.equal(codeOf(decode(withField(['metrics', 'valF1'], bad))), ErrorCode.NON_FINITE);
    assert.equal(codeOf(decode(withField(['round'], bad))), ErrorCode.NON_FINITE);
    assert.equal(codeOf(decode(withField(['privacy'], { epsilon: bad }))), ErrorCode.NON_FINITE);
    for (const at of [0, 9, MANIFEST_SIZE - 1]) {
      const v = edgeVector(MANIFEST_SIZE);
      v[at] = bad;
      assert.equal(codeOf(decode(withField(['update'], v))), ErrorCode.NON_FINITE, `update[${at}]`);
      const offer = { type: 'round-offer', round: 1, version: 1, task: TASK, spec: SPEC, manifest: MANIFEST, params: v, chunks: 0, deadline: 1 };
      assert.equal(codeOf(decode(rawPackr.pack(offer))), ErrorCode.NON_FINITE);
      const piece = { type: 'update-chunk', round: 1, index: 0, count: 1, values: v };
      assert.equal(codeOf(decode(rawPackr.pack(piece))), ErrorCode.NON_FINITE);
    }
  }
  const task = { ...TASK, innerLr: Number.NaN };
  const offer = { type: 'round-offer', round: 1, version: 1, task, spec: SPEC, manifest: MANIFEST, params: edgeVector(MANIFEST_SIZE), chunks: 0, deadline: 1 };
  assert.equal(codeOf(decode(rawPackr.pack(offer))), ErrorCode.NON_FINITE);
});

test('extra keys anywhere give SCHEMA, and refusals do not echo payload values', () => {
  for (const path of [['flows'], ['counts', 'flows'], ['metrics', 'labels'], ['privacy', 'raw']]) {
    const root = structuredClone(updateObject()) as Record<string, unknown>;
    if (path[0] === 'privacy') root['privacy'] = {};
    let o = root;
    for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
    o[path[path.length - 1] as string] = '10.1.2.3,443,SECRET-FLOW';
    let message = '';
    try {
      decodeMessage(rawPackr.pack(root), LIMITS);
    } catch (e) {
      message = (e as Error).message;
      assert.equal((e as { code: string }).code, ErrorCode.SCHEMA, path.join('.'));
    }
    assert.ok(message !== '' && !message.includes('SECRET') && !message.includes('10.1.2.3'), message);
  }
  const entry = { ...(MANIFEST[0] as object), init: 'glorot' };
  const offer = { type: 'round-offer', round: 1, version: 1, task: TASK, spec: SPEC, manifest: [entry, ...MANIFEST.slice(1)], params: null, chunks: 1, deadline: 1 };
  assert.equal(codeOf(decode(rawPackr.pack(offer))), ErrorCode.SCHEMA);
  const task = { ...TASK, extra: 1 };
  assert.equal(codeOf(decode(rawPackr.pack({ ...offer, manifest: MANIFEST, task }))), ErrorCode.SCHEMA);
  const spec = { ...SPEC, dropout: 0.5 };
  assert.equal(codeOf(decode(rawPackr.pack({ ...offer, manifest: MANIFEST, spec }))), ErrorCode.SCHEMA);
});

test('each missing required key gives SCHEMA', () => {
  const optional: Record<string, string[]> = { welcome: ['credential'], ack: ['chunk', 'error'], 'round-offer': ['secagg'] };
  for (const m of sampleMessages()) {
    for (const key of Object.keys(m)) {
      if (optional[m.type]?.includes(key)) continue;
      const partial = { ...m } as Record<string, unknown>;
      delete partial[key];
      const code = codeOf(decode(rawPackr.pack(partial)));
      assert.equal(code, ErrorCode.SCHEMA, `${m.type} without ${key}`);
    }
  }
  const noLoss = { ...sampleUpdate(), metrics: { supportLoss: 1 } };
  assert.equal(codeOf(decode(rawPackr.pack(noLoss))), ErrorCode.SCHEMA);
});

test('optional keys may be absent, but required keys set to undefined are refused', () => {
  const welcome = { type: 'welcome', protocolVersion: PROTOCOL_VERSION, site: 's1', currentVersion: 0, round: null, released: null, chunkValues: 19, maxMessageBytes: 65_612 };
  assert.equal(decodeMessage(rawPackr.pack({ ...welcome, credential: undefined }), LIMITS).type, 'welcome');
  assert.equal(codeOf(decode(rawPackr.pack({ ...welcome, round: undefined }))), ErrorCode.SCHEMA);
});

test('a vector of the wrong length gives WRONG_LENGTH', () => {
  for (const n of [0, 1, MANIFEST_SIZE - 1, MANIFEST_SIZE + 1, 1000]) {
    assert.equal(codeOf(decode(withField(['update'], new Float32Array(n)))), ErrorCode.WRONG_LENGTH, `update of ${n}`);
    const offer = { type: 'release', version: 1, spec: SPEC, manifest: MANIFEST, params: new Float32Array(n), chunks: 0 };
    assert.equal(codeOf(() => decodeMessage(rawPackr.pack(offer), { maxBytes: 1 << 16 })), ErrorCode.WRONG_LENGTH);
  }
  // A chunk is checked against its slice of the expected total: 19 values in 2 chunks are 10 + 9.
  const piece = (index: number, n: number) => rawPackr.pack({ type: 'params-chunk', version: 1, index, count: 2, values: new Float32Array(n) });
  assert.equal(decodeMessage(piece(1, 9), LIMITS).type, 'params-chunk');
  assert.equal(codeOf(decode(piece(1, 10))), ErrorCode.WRONG_LENGTH);
  assert.equal(codeOf(decode(piece(0, 9))), ErrorCode.WRONG_LENGTH);
});

test('chunk announcements that cannot fit the vector give CHUNK or SCHEMA', () => {
  assert.equal(codeOf(decode(rawPackr.pack({ ...updateObject(), update: null, chunks: MANIFEST_SIZE + 1 }))), ErrorCode.CHUNK);
  assert.equal(codeOf(decode(withField(['chunks'], 2))), ErrorCode.SCHEMA);
  assert.equal(codeOf(decode(rawPackr.pack({ ...updateObject(), update: null, chunks: 0 }))), ErrorCode.SCHEMA);
  assert.equal(codeOf(decode(rawPackr.pack({ ...updateObject(), update: null, chunks: PROTOCOL_LIMITS.chunks + 1 }))), ErrorCode.SCHEMA);
  const piece = { type: 'update-chunk', round: 1, index: 3, count: 3, values: new Float32Array(1) };
  assert.equal(codeOf(() => decodeMessage(rawPackr.pack(piece), { maxBytes: 1024 })), ErrorCode.CHUNK);
  const offer = { type: 'round-offer', round: 1, version: 1, task: TASK, spec: SPEC, manifest: MANIFEST, params: null, chunks: 20, deadline: 1 };
  assert.equal(codeOf(decode(rawPackr.pack(offer))), ErrorCode.CHUNK);
});

test('oversize input gives OVERSIZE before any decoding', () => {
  const big = encodeMessage(sampleUpdate({ update: new Float32Array(2000) }));
  assert.equal(codeOf(() => decodeMessage(big, { maxBytes: big.byteLength - 1 })), ErrorCode.OVERSIZE);
  const garbage = Buffer.alloc(LIMITS.maxBytes + 1, 0xc1);
  assert.equal(codeOf(decode(garbage)), ErrorCode.OVERSIZE);
  assert.equal(codeOf(() => decodeMessage(big, { maxBytes: 0 })), ErrorCode.PRECONDITION);
});

test('every msgpackr extension type is refused with a code', () => {
  const foreign: [string, unknown][] = [
    ['RegExp', /flow/g],
    ['Error', new Error('boom')],
    ['Set', new Set([1])],
    ['Map with number keys', new Map([[1, 2]])],
    ['Date', new Date(0)],
    ['undefined', undefined],
    ['ArrayBuffer', new ArrayBuffer(8)],
    ['DataView', new DataView(new ArrayBuffer(8))],
    ['Buffer', Buffer.alloc(4 * MANIFEST_SIZE)],
  ];
  for (const ctor of [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float64Array]) {
    foreign.push([ctor.name, new ctor(MANIFEST_SIZE)]);
  }
  foreign.push(['BigInt64Array', new BigInt64Array(MANIFEST_SIZE)], ['BigUint64Array', new BigUint64Array(MANIFEST_SIZE)]);
  for (const [name, value] of foreign) {
    for (const path of [['round'], ['update'], ['counts'], ['metrics', 'queryLoss']]) {
      const root = structuredClone(updateObject()) as Record<string, unknown>;
      let o = root;
      for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
      o[path[path.length - 1] as string] = value;
      const code = codeOf(decode(cloningPackr.pack(root)));
      assert.ok(code === ErrorCode.SCHEMA || code === ErrorCode.DECODE, `${name} at ${path.join('.')}: ${code}`);
    }
  }
  // Handed over as decoded JS objects (the JSON handshake path, or a caller's bug), the same values fail.
  for (const [name, value] of foreign) {
    assert.equal(codeOf(() => validateMessage(value)), ErrorCode.SCHEMA, name);
  }
  assert.equal(codeOf(() => validateMessage(new Map(Object.entries(sampleUpdate())))), ErrorCode.SCHEMA);
});

test('records, structured-clone references, BigInt and unknown extensions are refused', () => {
  const withRecords = new Packr({ useRecords: true, moreTypes: true });
  const records = withRecords.pack([sampleUpdate(), sampleUpdate()]);
  assert.equal(codeOf(decode(records)), ErrorCode.DECODE);
  const single = withRecords.pack(sampleUpdate());
  assert.equal(codeOf(decode(single)), ErrorCode.DECODE);
  const shared: Record<string, unknown> = { supportLoss: 1, queryLoss: 1 };
  const cyclic = cloningPackr.pack({ ...updateObject(), metrics: shared, privacy: shared });
  assert.equal(codeOf(decode(cyclic)), ErrorCode.DECODE);
  const u64 = Buffer.from([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  const i64 = Buffer.from([0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]);
  const template = Buffer.from(rawPackr.pack({ ...updateObject(), round: 'R' }));
  const at = template.indexOf(Buffer.from([0xa1, 0x52]));
  for (const int of [u64, i64, Buffer.from([0xd4, 0x42, 0x01]), Buffer.from([0xd5, 0x42, 0x01, 0x00])]) {
    const patched = Buffer.concat([template.subarray(0, at), int, template.subarray(at + 2)]);
    assert.equal(codeOf(decode(patched)), ErrorCode.SCHEMA, int.toString('hex'));
  }
  for (const ext of [[0xd4, 0x10, 0x00], [0xd6, 0x7f, 1, 2, 3, 4], [0xc7, 0x01, 0x33, 0x00], [0xc1]]) {
    const patched = Buffer.concat([template.subarray(0, at), Buffer.from(ext), template.subarray(at + 2)]);
    const code = codeOf(decode(patched));
    assert.ok(code === ErrorCode.DECODE || code === ErrorCode.SCHEMA, `${Buffer.from(ext).toString('hex')}: ${code}`);
  }
});

test('protocol version mismatches give PROTOCOL_VERSION, unexpected types give SCHEMA', () => {
  const hello = sampleMessages()[0] as Message;
  for (const v of [0, PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1, String(PROTOCOL_VERSION), 1.5, null]) {
    assert.equal(codeOf(decode(rawPackr.pack({ ...hello, protocolVersion: v }))), ErrorCode.PROTOCOL_VERSION, String(v));
  }
  const welcome = sampleMessages().find((m) => m.type === 'welcome') as Message;
  assert.equal(codeOf(decode(rawPackr.pack({ ...welcome, protocolVersion: PROTOCOL_VERSION + 1 }))), ErrorCode.PROTOCOL_VERSION);
  // A peer of the first version, whose offers carried no model spec, is refused at the handshake, not mid-round.
  assert.equal(codeOf(decode(rawPackr.pack({ ...hello, protocolVersion: 1 }))), ErrorCode.PROTOCOL_VERSION);
  assert.equal(codeOf(decode(rawPackr.pack({ type: 'hello' }))), ErrorCode.SCHEMA);
  assert.equal(codeOf(decode(rawPackr.pack({ type: 'constructor' }))), ErrorCode.SCHEMA);
  assert.equal(codeOf(decode(rawPackr.pack({ type: '__proto__' }))), ErrorCode.SCHEMA);
});

test('strings and identifiers are bounded and restricted', () => {
  const hello = sampleMessages()[0] as unknown as Record<string, unknown>;
  const bad: Record<string, unknown>[] = [
    { ...hello, site: 'a'.repeat(PROTOCOL_LIMITS.siteNameChars + 1) },
    { ...hello, site: 'lyon\n{"level":60}' },
    { ...hello, site: '' },
    { ...hello, site: '-lyon' },
    { ...hello, schemaFingerprint: 'x'.repeat(PROTOCOL_LIMITS.fingerprintChars + 1) },
    { ...hello, agentVersion: '1.0 beta' },
    { ...hello, auth: { kind: 'enroll', token: 't'.repeat(PROTOCOL_LIMITS.secretChars + 1) } },
    { ...hello, auth: { kind: 'enroll', credential: 'c' } },
    { ...hello, auth: { kind: 'password', token: 't' } },
  ];
  for (const m of bad) assert.equal(codeOf(decode(rawPackr.pack(m))), ErrorCode.SCHEMA);
  const error = { type: 'error', code: ErrorCode.NOT_READY, message: 'm'.repeat(PROTOCOL_LIMITS.errorMessageChars + 1) };
  assert.equal(codeOf(decode(rawPackr.pack(error))), ErrorCode.SCHEMA);
  assert.equal(codeOf(decode(rawPackr.pack({ ...error, message: 'ok', code: 'FEDMETA_ERR_MADE_UP' }))), ErrorCode.SCHEMA);
});

test('manifests are validated: names, shapes, dtype, size', () => {
  const release = (manifest: unknown) => rawPackr.pack({ type: 'release', version: 1, spec: SPEC, manifest, params: null, chunks: 1 });
  const e = MANIFEST[0] as object;
  const bad: unknown[] = [
    [],
    {},
    [{ ...e, name: 'dense0/bias' }, ...MANIFEST.slice(1)],
    [{ ...e, shape: [4, 0] }],
    [{ ...e, shape: [4, -3] }],
    [{ ...e, shape: [4, 2.5] }],
    [{ ...e, shape: '4x3' }],
    [{ ...e, shape: [1, 1, 1, 1, 1, 1, 1, 1, 1] }],
    [{ ...e, shape: [1 << 14, 1 << 13] }],
    [{ ...e, dtype: 'float64' }],
    [{ ...e, name: '' }],
    [{ ...e, name: 'has space' }],
    Array.from({ length: PROTOCOL_LIMITS.manifestEntries + 1 }, (_, i) => ({ name: `p${i}`, shape: [1], dtype: 'float32' })),
    Array.from({ length: 5 }, (_, i) => ({ name: `p${i}`, shape: [1 << 24], dtype: 'float32' })),
  ];
  for (const m of bad) assert.equal(codeOf(() => decodeMessage(release(m), { maxBytes: 1 << 20 })), ErrorCode.SCHEMA, JSON.stringify(m).slice(0, 80));
  pollutedCheck();
});

test('the model spec of an offer or a release is checked strictly and must describe its manifest', () => {
  const offer = (spec: unknown, manifest: unknown = MANIFEST) =>
    rawPackr.pack({ type: 'round-offer', round: 1, version: 1, task: TASK, spec, manifest, params: null, chunks: 1, deadline: 1 });
  const release = (spec: unknown, manifest: unknown = MANIFEST) => rawPackr.pack({ type: 'release', version: 1, spec, manifest, params: null, chunks: 1 });
  assert.equal(decodeMessage(offer(SPEC), LIMITS).type, 'round-offer');
  assert.equal(decodeMessage(release(SPEC), LIMITS).type, 'release');
  // Meta-SGD step sizes after the model's own entries are part of a valid layout.
  const metaSgd = [...MANIFEST, ...MANIFEST.map((e) => ({ ...e, name: `metasgd/${e.name}` }))];
  assert.equal(decodeMessage(offer(SPEC, metaSgd), { maxBytes: 1 << 16 }).type, 'round-offer');
  const bad: [string, unknown][] = [
    ['absent', undefined],
    ['not a map', 'relu-4-3-1'],
    ['an extra field', { ...SPEC, dropout: 0.1 }],
    ['no activation', { inputDim: 4, hidden: [3], task: { kind: 'binary' } }],
    ['an unknown activation', { ...SPEC, activation: 'gelu' }],
    ['a fractional input width', { ...SPEC, inputDim: 4.5 }],
    ['a zero input width', { ...SPEC, inputDim: 0 }],
    ['hidden as a map', { ...SPEC, hidden: { 0: 3 } }],
    ['a negative hidden width', { ...SPEC, hidden: [-3] }],
    ['too many hidden layers', { ...SPEC, hidden: Array.from({ length: PROTOCOL_LIMITS.hiddenLayers + 1 }, () => 1) }],
    ['an unknown task', { ...SPEC, task: { kind: 'regression' } }],
    ['a binary task with classes', { ...SPEC, task: { kind: 'binary', classes: 2 } }],
    ['a one-class multiclass task', { ...SPEC, task: { kind: 'multiclass', classes: 1 } }],
    ['another input width than the manifest', { ...SPEC, inputDim: 5 }],
    ['another hidden width than the manifest', { ...SPEC, hidden: [4] }],
    ['another output width than the manifest', { ...SPEC, task: { kind: 'multiclass', classes: 2 } }],
    ['another depth than the manifest', { ...SPEC, hidden: [3, 3] }],
  ];
  for (const [what, spec] of bad) {
    assert.equal(codeOf(() => decodeMessage(offer(spec), LIMITS)), ErrorCode.SCHEMA, `offer with ${what}`);
    assert.equal(codeOf(() => decodeMessage(release(spec), LIMITS)), ErrorCode.SCHEMA, `release with ${what}`);
  }
  const renamed = MANIFEST.map((e, i) => (i === 2 ? { ...e, name: 'out/kernel' } : e));
  assert.equal(codeOf(() => decodeMessage(offer(SPEC, renamed), LIMITS)), ErrorCode.SCHEMA, 'entries the spec does not name');
  assert.equal(codeOf(() => decodeMessage(offer(SPEC, [...MANIFEST].reverse()), LIMITS)), ErrorCode.SCHEMA, 'entries out of order');
  assert.equal(codeOf(() => encodeMessage({ ...(sampleMessages().find((m) => m.type === 'release') as Message), spec: { ...SPEC, inputDim: 9 } } as Message)), ErrorCode.SCHEMA);
});

test('a welcome announces a chunk size and message limit the site can send with', () => {
  const welcome = { type: 'welcome', protocolVersion: PROTOCOL_VERSION, site: 's1', currentVersion: 0, round: null, released: null, chunkValues: 1000, maxMessageBytes: 70_000 };
  assert.equal(decodeMessage(rawPackr.pack(welcome), LIMITS).type, 'welcome');
  for (const [what, over] of [
    ['no chunk size', { chunkValues: undefined }],
    ['a zero chunk size', { chunkValues: 0 }],
    ['a fractional chunk size', { chunkValues: 2.5 }],
    ['a chunk size beyond the vector limit', { chunkValues: PROTOCOL_LIMITS.vectorValues + 1 }],
    ['a tiny message limit', { maxMessageBytes: 100 }],
    ['a message limit beyond the protocol limit', { maxMessageBytes: PROTOCOL_LIMITS.messageBytes + 1 }],
    ['a message limit too small for one chunk', { chunkValues: 100_000, maxMessageBytes: 70_000 }],
  ] as const) {
    assert.equal(codeOf(decode(rawPackr.pack({ ...welcome, ...over }))), ErrorCode.SCHEMA, what);
  }
});
