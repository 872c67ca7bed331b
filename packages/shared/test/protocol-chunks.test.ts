import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CHUNK_VALUES,
  ChunkAssembler,
  ErrorCode,
  chunkCount,
  chunkRange,
  chunkVector,
  decodeMessageOf,
  encodeMessage,
  maxMessageBytes,
  type Message,
  type ParamsChunkMessage,
  type RoundOfferMessage,
} from '@fedmeta/shared';
import { TASK, bytesOf, codeOf, edgeVector, linearModel, rng } from './protocol-fixtures.js';

test('chunkVector splits into balanced views that concatenate to the original', () => {
  for (const [n, max] of [[1, 1], [10, 4], [9, 4], [7, 2], [100, 100], [101, 100], [1000, 3]] as const) {
    const v = edgeVector(n, n);
    const parts = chunkVector(v, max);
    assert.equal(parts.length, chunkCount(n, max));
    assert.equal(parts.length, Math.ceil(n / max));
    const sizes = parts.map((p) => p.length);
    assert.ok(sizes.every((s) => s >= 1 && s <= max), `${n}/${max}: ${sizes.join(',')}`);
    assert.ok(sizes.slice(0, -1).every((s) => s === sizes[0]) && (sizes.at(-1) as number) <= (sizes[0] as number), 'balanced');
    parts.forEach((p, i) => {
      assert.equal(p.buffer, v.buffer, 'a view, not a copy');
      assert.deepEqual(chunkRange(n, parts.length, i), { start: p.byteOffset / 4, end: p.byteOffset / 4 + p.length });
    });
    const joined = new Float32Array(n);
    let at = 0;
    for (const p of parts) {
      joined.set(p, at);
      at += p.length;
    }
    assert.ok(bytesOf(joined).equals(bytesOf(v)));
  }
  assert.equal(chunkVector(new Float32Array(5)).length, 1);
  assert.equal(codeOf(() => chunkVector(new Float32Array(5), 0)), ErrorCode.PRECONDITION);
});

test('ChunkAssembler reassembles chunks in any order, byte-exact', () => {
  const r = rng(3);
  const v = edgeVector(1003, 9);
  const parts = chunkVector(v, 100);
  const order = parts.map((_, i) => i).sort(() => r() - 0.5);
  const asm = new ChunkAssembler({ total: v.length, count: parts.length });
  assert.equal(codeOf(() => asm.result()), ErrorCode.CHUNK);
  order.forEach((index, k) => {
    const done = asm.add({ index, count: parts.length, values: parts[index] as Float32Array });
    assert.equal(done, k === order.length - 1);
    assert.equal(asm.chunksReceived, k + 1);
  });
  assert.ok(asm.complete);
  assert.ok(bytesOf(asm.result()).equals(bytesOf(v)));
});

test('ChunkAssembler refuses out-of-range, duplicate, inconsistent and mis-sized chunks', () => {
  const v = edgeVector(100, 1);
  const parts = chunkVector(v, 30); // 4 chunks of 25
  const asm = new ChunkAssembler({ total: 100, count: 4 });
  const piece = (index: number, values = parts[index] ?? new Float32Array(25), count = 4) => () => asm.add({ index, count, values });
  for (const index of [-1, 4, 1.5, Number.NaN, 2 ** 40]) {
    assert.equal(codeOf(piece(index, new Float32Array(25))), ErrorCode.CHUNK, `index ${index}`);
  }
  assert.equal(codeOf(piece(0, parts[0], 5)), ErrorCode.CHUNK, 'count differs from the header');
  assert.equal(codeOf(piece(0, new Float32Array(24))), ErrorCode.WRONG_LENGTH);
  assert.equal(codeOf(piece(3, new Float32Array(26))), ErrorCode.WRONG_LENGTH);
  assert.equal(asm.chunksReceived, 0, 'refused chunks leave no trace');
  asm.add({ index: 2, count: 4, values: parts[2] as Float32Array });
  assert.equal(codeOf(piece(2)), ErrorCode.CHUNK, 'duplicate');
  assert.equal(codeOf(piece(2, new Float32Array(25))), ErrorCode.CHUNK, 'a different duplicate does not overwrite');
  assert.equal(codeOf(() => asm.result()), ErrorCode.CHUNK);
  for (const i of [0, 1, 3]) asm.add({ index: i, count: 4, values: parts[i] as Float32Array });
  assert.ok(bytesOf(asm.result()).equals(bytesOf(v)));
  assert.equal(codeOf(piece(1)), ErrorCode.CHUNK, 'after completion');
});

test('a chunk count the vector cannot fill is refused up front', () => {
  assert.equal(codeOf(() => new ChunkAssembler({ total: 5, count: 6 })), ErrorCode.CHUNK);
  assert.equal(codeOf(() => new ChunkAssembler({ total: 5, count: 4 })), ErrorCode.CHUNK); // 2+2+1+0
  assert.equal(codeOf(() => new ChunkAssembler({ total: 5, count: 0 })), ErrorCode.CHUNK);
  assert.equal(codeOf(() => new ChunkAssembler({ total: 10, count: 1e9 })), ErrorCode.CHUNK);
  assert.equal(new ChunkAssembler({ total: 5, count: 3 }).count, 3);
});

test('a model too large for one message travels as a header and chunks that each fit the limit', () => {
  const n = 2 * CHUNK_VALUES + 123;
  const params = new Float32Array(n);
  for (let i = 0; i < n; i++) params[i] = Math.cos(i) * 0.01;
  params[n - 1] = -0;
  const chunks = chunkVector(params);
  const offer: RoundOfferMessage = {
    type: 'round-offer',
    round: 3,
    version: 2,
    task: TASK,
    ...linearModel(n),
    params: null,
    chunks: chunks.length,
    deadline: Date.now() + 60_000,
  };
  const limits = { maxBytes: maxMessageBytes(n), expectedLength: () => n };
  const wire: Uint8Array[] = [encodeMessage(offer)];
  chunks.forEach((values, index) => {
    const m: Message = { type: 'params-chunk', version: 2, index, count: chunks.length, values };
    wire.push(encodeMessage(m));
  });
  for (const bytes of wire) assert.ok(bytes.byteLength <= limits.maxBytes, `${bytes.byteLength} > ${limits.maxBytes}`);
  const header = decodeMessageOf('round-offer', wire[0] as Uint8Array, limits);
  const asm = new ChunkAssembler({ total: n, count: header.chunks });
  for (const bytes of wire.slice(1).reverse()) {
    const c: ParamsChunkMessage = decodeMessageOf('params-chunk', bytes, limits);
    asm.add(c);
  }
  assert.ok(bytesOf(asm.result()).equals(bytesOf(params)));
});
