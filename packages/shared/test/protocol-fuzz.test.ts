import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessage, encodeMessage, isFedmetaError, maxMessageBytes, validateMessage, type Message } from '@fedmeta/shared';
import { MANIFEST_SIZE, cloningPackr, rng, sampleMessages } from './protocol-fixtures.js';

const LIMITS = { maxBytes: maxMessageBytes(MANIFEST_SIZE), expectedLength: () => MANIFEST_SIZE };

/** Tokens that switch the decoder into its rarer paths: extensions, records, wide lengths, 64-bit ints. */
const INTERESTING = [
  0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcf, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8,
  0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xff, 0x00, 0x7f, 0x72, 0x74, 0x42, 0x65, 0x69, 0x70, 0x73, 0x78, 0x62, 0x80, 0x90,
];

function mutate(src: Uint8Array, r: () => number): Uint8Array {
  const b = Buffer.from(src);
  const pick = (n: number) => Math.floor(r() * n);
  switch (pick(7)) {
    case 0: {
      const i = pick(b.length);
      b[i] = (b[i] as number) ^ (1 << pick(8));
      return b;
    }
    case 1:
      b[pick(b.length)] = pick(256);
      return b;
    case 2:
      b[pick(b.length)] = INTERESTING[pick(INTERESTING.length)] as number;
      return b;
    case 3:
      return b.subarray(0, pick(b.length));
    case 4: {
      const i = pick(b.length);
      return Buffer.concat([b.subarray(0, i), b.subarray(i + 1 + pick(8))]);
    }
    case 5: {
      const i = pick(b.length);
      const junk = Buffer.from(Array.from({ length: 1 + pick(6) }, () => (r() < 0.5 ? pick(256) : (INTERESTING[pick(INTERESTING.length)] as number))));
      return Buffer.concat([b.subarray(0, i), junk, b.subarray(i)]);
    }
    default: {
      const i = pick(b.length);
      const j = i + pick(b.length - i);
      return Buffer.concat([b.subarray(0, j), b.subarray(i, j), b.subarray(j)]);
    }
  }
}

const HOSTILE_VALUES: unknown[] = [
  Number.NaN, Infinity, -0, -1, 1.5, 2 ** 53, '', 'x'.repeat(2000), '__proto__', [], {}, null, undefined, true,
  new Float64Array(3), new Uint8Array(4), new Float32Array(0), new Float32Array([Number.NaN]), new Map([['a', 1]]),
  new Set([1]), new Date(0), /x/, new Error('e'), 10n, JSON.parse('{"__proto__":{"polluted":true}}'), { constructor: 1 },
];

/** Replaces, removes or adds one field somewhere in a copy of the message. */
function mutateObject(m: Message, r: () => number): unknown {
  const root = structuredClone(m) as unknown as Record<string, unknown>;
  const objects: Record<string, unknown>[] = [root];
  for (let i = 0; i < objects.length; i++) {
    for (const v of Object.values(objects[i] as object)) {
      if (v !== null && typeof v === 'object' && !ArrayBuffer.isView(v)) objects.push(v as Record<string, unknown>);
    }
  }
  const target = objects[Math.floor(r() * objects.length)] as Record<string, unknown>;
  const keys = Object.keys(target);
  const key = keys.length > 0 && r() < 0.8 ? (keys[Math.floor(r() * keys.length)] as string) : 'extra';
  if (r() < 0.15) delete target[key];
  else target[key] = HOSTILE_VALUES[Math.floor(r() * HOSTILE_VALUES.length)];
  return root;
}

function expectOnlyFedmetaErrors(bytes: Uint8Array, tally: { ok: number; refused: number }): void {
  let decoded: Message;
  try {
    decoded = decodeMessage(bytes, LIMITS);
  } catch (e) {
    assert.ok(isFedmetaError(e), `non-coded error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    tally.refused++;
    return;
  }
  // Whatever survives must be a message this end could have produced itself.
  validateMessage(decoded);
  encodeMessage(decoded);
  tally.ok++;
}

test('seeded byte-level fuzzing of valid messages only ever yields coded errors', (t) => {
  const r = rng(20_240_601);
  const seeds = sampleMessages().map((m) => encodeMessage(m));
  const tally = { ok: 0, refused: 0 };
  for (let i = 0; i < 4000; i++) {
    let bytes: Uint8Array = seeds[i % seeds.length] as Uint8Array;
    const rounds = 1 + Math.floor(r() * 3);
    for (let k = 0; k < rounds && bytes.length > 0; k++) bytes = mutate(bytes, r);
    expectOnlyFedmetaErrors(bytes, tally);
  }
  t.diagnostic(`${tally.refused} refused, ${tally.ok} still valid`);
  assert.ok(tally.refused > 3000, `only ${tally.refused} of 4000 mutations refused`);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
});

test('seeded structural fuzzing (fields replaced, removed or added) only ever yields coded errors', (t) => {
  const r = rng(7);
  const samples = sampleMessages();
  const tally = { ok: 0, refused: 0 };
  for (let i = 0; i < 3000; i++) {
    const m = samples[i % samples.length] as Message;
    expectOnlyFedmetaErrors(cloningPackr.pack(mutateObject(m, r)), tally);
    try {
      validateMessage(mutateObject(m, r));
    } catch (e) {
      assert.ok(isFedmetaError(e), `non-coded error: ${String(e)}`);
    }
  }
  t.diagnostic(`${tally.refused} refused, ${tally.ok} still valid`);
  assert.ok(tally.refused > 2000, `only ${tally.refused} of 3000 mutations refused`);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
});
