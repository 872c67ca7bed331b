// Mutated messages for the fuzzer: what an authenticated but hostile agent can put in a socket.io event, and what
// an unauthenticated peer can put in a handshake. Every generator is seeded, so a failure replays with its seed.
// The msgpack is assembled by hand where a library would refuse to write it (lengths that lie, every extension
// type, nesting deeper than any encoder goes, keys that name the prototype).
import { Packr } from 'msgpackr';
import { PROTOCOL_VERSION, createRng } from '@fedmeta/shared';

/** Uniform [0, 1) numbers from the project's seeded generator, so that a failure replays with its seed. */
export function prng(seed: number): () => number {
  const r = createRng(seed);
  return () => r.next();
}

// The same extensions the protocol codec uses, so that Float32Array travels as it does from an honest agent.
const packr = new Packr({ moreTypes: true, useRecords: false, structuredClone: false });
const pack = (v: unknown): Uint8Array => packr.pack(v);

/** What the fuzzer knows of the federation: the open round (from its offers), the model size, the limits. */
export interface FuzzContext {
  round: number;
  version: number;
  dim: number;
  chunkValues: number;
  maxMessageBytes: number;
}

export interface FuzzMessage {
  /** The mutation, for the tally. */
  kind: string;
  event: string;
  args: unknown[];
  /** Whether the coordinator answers it through an acknowledgement (update and update-chunk events do). */
  ack: boolean;
}

function u8(...parts: (Uint8Array | number[])[]): Uint8Array {
  return Buffer.concat(parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p))));
}

function mapHeader(n: number): number[] {
  if (n < 16) return [0x80 | n];
  return [0xde, (n >> 8) & 0xff, n & 0xff];
}

/** A msgpack map from keys to values that are already msgpack (any bytes at all). */
export function rawMap(entries: [string, Uint8Array][]): Uint8Array {
  return u8(mapHeader(entries.length), ...entries.flatMap(([k, v]) => [pack(k), v]));
}

/** An extension value of type `type` (-128..127) in one of the eight extension formats. */
export function ext(type: number, format: number, rnd: () => number): Uint8Array {
  const t = type & 0xff;
  const fixed = [1, 2, 4, 8, 16];
  if (format < 5) {
    const n = fixed[format] as number;
    return u8([0xd4 + format, t], randomBytes(n, rnd));
  }
  const n = Math.floor(rnd() * 40);
  if (format === 5) return u8([0xc7, n, t], randomBytes(n, rnd));
  if (format === 6) return u8([0xc8, 0, n, t], randomBytes(n, rnd));
  return u8([0xc9, 0, 0, 0, n, t], randomBytes(n, rnd));
}

export function randomBytes(n: number, rnd: () => number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

/** Headers that claim far more than follows: str32, bin32, array32, map32, ext32 of 2^32-1, and 16-bit ones. */
const HUGE: Uint8Array[] = [
  u8([0xdb, 0xff, 0xff, 0xff, 0xff], [0x41, 0x42]),
  u8([0xc6, 0xff, 0xff, 0xff, 0xff], [1, 2, 3]),
  u8([0xdd, 0xff, 0xff, 0xff, 0xff], [0xc0]),
  u8([0xdf, 0xff, 0xff, 0xff, 0xff], [0xa1, 0x61, 0xc0]),
  u8([0xc9, 0xff, 0xff, 0xff, 0xff, 0x74], [8]),
  u8([0xdc, 0xff, 0xff], [0x01]),
  u8([0xde, 0xff, 0xff]),
  u8([0xda, 0xff, 0xff], [0x41]),
  u8([0xc5, 0xff, 0xff]),
  u8([0xc9, 0x7f, 0xff, 0xff, 0xff, 0x62], [0, 0, 0, 0]),
];

/** Values of every msgpack type but the one a field wants, NaN and infinities included. */
function wrongValues(rnd: () => number): Uint8Array[] {
  return [
    pack(null),
    pack(true),
    pack('7'),
    pack(''),
    pack(-1),
    pack(2 ** 53),
    pack(1.5),
    pack(Number.NaN),
    pack(Number.POSITIVE_INFINITY),
    pack(Number.NEGATIVE_INFINITY),
    pack([1, 2]),
    pack({}),
    pack({ __proto__: null, round: 1 }),
    u8([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // uint64 max
    u8([0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]), // int64 min
    u8([0xca, 0x7f, 0xc0, 0x00, 0x00]), // float32 NaN
    u8([0xca, 0x7f, 0x80, 0x00, 0x00]), // float32 +Infinity
    pack(new Float64Array([1, 2])),
    pack(new Int32Array([1, 2])),
    pack(new Uint8Array([1, 2])),
    randomBytes(1 + Math.floor(rnd() * 8), rnd),
  ];
}

function nested(depth: number, asMap: boolean): Uint8Array {
  const open = asMap ? [0x81, 0xa1, 0x61] : [0x91];
  const out = new Uint8Array(depth * open.length + 1);
  for (let i = 0; i < depth; i++) out.set(open, i * open.length);
  out[out.length - 1] = 0xc0;
  return out;
}

/** Mutated update and update-chunk events, and events that do not belong to the protocol at all. */
export class UpdateFuzzer {
  private readonly rnd: () => number;
  private readonly replays: FuzzMessage[] = [];
  /** Packed vectors of the model's length, reused: generating one per message would be most of the fuzzer's work. */
  private packedVectors: Uint8Array[] = [];
  private packedFor = -1;
  /** Extension messages sent so far: the type of the next one, so that every type from -128 to 127 comes in turn. */
  private extSent = 0;
  /** The extension types sent, for the tally. */
  readonly extTypes = new Set<number>();

  constructor(seed: number) {
    this.rnd = prng(seed);
  }

  private int(n: number): number {
    return Math.floor(this.rnd() * n);
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }

  private vector(n: number, poison?: number): Float32Array {
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = (this.rnd() - 0.5) * 1e-3;
    if (poison !== undefined && n > 0) v[this.int(n)] = poison;
    return v;
  }

  private packedVector(dim: number): Uint8Array {
    if (this.packedFor !== dim) {
      this.packedVectors = Array.from({ length: 16 }, () => pack(this.vector(dim)));
      this.packedFor = dim;
    }
    return this.pick(this.packedVectors);
  }

  /** The fields of a well-formed update for `round` and `version`, each as msgpack. */
  private fields(c: FuzzContext, round = c.round, version = c.version, vec: Float32Array | null | undefined = undefined): [string, Uint8Array][] {
    return [
      ['type', pack('update')],
      ['round', pack(round)],
      ['version', pack(version)],
      ['counts', pack({ episodes: 2, examples: 40 })],
      ['metrics', pack({ supportLoss: 0.6, queryLoss: 0.5 })],
      ['update', vec === undefined ? this.packedVector(c.dim) : pack(vec)],
      ['chunks', pack(vec === null ? Math.ceil(c.dim / c.chunkValues) : 0)],
      ['secagg', pack(null)],
      ['privacy', pack(null)],
    ];
  }

  private withField(fields: [string, Uint8Array][], name: string, value: Uint8Array): [string, Uint8Array][] {
    return fields.map(([k, v]) => [k, k === name ? value : v]);
  }

  private msg(kind: string, payload: unknown, event = 'update'): FuzzMessage {
    return { kind, event, args: [payload], ack: event === 'update' || event === 'update-chunk' };
  }

  next(c: FuzzContext): FuzzMessage {
    const r = this.int(100);
    const fields = this.fields(c);
    const names = fields.map(([k]) => k);
    if (r < 8) {
      // Well-formed, but for a round or version that is not open, or for a round no one offered.
      const round = this.pick([c.round - 1, c.round + 1, c.round + 1_000_000, 0, Number.MAX_SAFE_INTEGER]);
      const version = this.pick([c.version, c.version - 1, c.version + 1, Number.MAX_SAFE_INTEGER]);
      const m = this.msg('stale/future round', rawMap(this.fields(c, Math.max(0, round), Math.max(0, version))));
      if (this.replays.length < 64) this.replays.push(m);
      return m;
    }
    if (r < 12) {
      // A well-formed update for the open round: the first one a round gets is accepted, every copy after is a
      // duplicate; kept for replays in later rounds, when it is stale.
      const m = this.msg('open round (valid, then replays)', rawMap(fields));
      if (this.replays.length < 64) this.replays.push(m);
      else this.replays[this.int(64)] = m;
      return m;
    }
    if (r < 18 && this.replays.length > 0) return { ...this.pick(this.replays), kind: 'replay' };
    if (r < 24) {
      const poison = this.pick([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
      const where = this.int(3);
      if (where === 0) return this.msg('NaN/Infinity', rawMap(this.withField(fields, 'update', pack(this.vector(c.dim, poison)))));
      const metrics = where === 1 ? { supportLoss: poison, queryLoss: 0.5 } : { supportLoss: 0.5, queryLoss: 0.5, valF1: poison };
      return this.msg('NaN/Infinity', rawMap(this.withField(fields, 'metrics', pack(metrics))));
    }
    if (r < 34) {
      const name = this.pick(names);
      return this.msg('wrong type', rawMap(this.withField(fields, name, this.pick(wrongValues(this.rnd)))));
    }
    if (r < 40) {
      const key = this.pick(['__proto__', 'constructor', 'prototype', '__defineGetter__', 'toString']);
      const value = pack({ polluted: true, round: 1 });
      const at = this.int(3);
      if (at === 0) return this.msg('__proto__ keys', rawMap([...fields, [key, value]]));
      const inner = at === 1 ? 'counts' : 'metrics';
      const base = at === 1 ? [['episodes', pack(2)], ['examples', pack(40)]] : [['supportLoss', pack(0.6)], ['queryLoss', pack(0.5)]];
      return this.msg('__proto__ keys', rawMap(this.withField(fields, inner, rawMap([...(base as [string, Uint8Array][]), [key, value]]))));
    }
    if (r < 50) {
      // Every extension type in turn, in every format, as the vector or as a field.
      const type = (this.extSent++ % 256) - 128;
      this.extTypes.add(type);
      const value = ext(type, this.int(8), this.rnd);
      return this.msg('msgpack extension', this.int(4) === 0 ? value : rawMap(this.withField(fields, this.pick(['update', 'round', 'metrics', 'counts']), value)));
    }
    if (r < 55) {
      const depth = this.pick([64, 1000, 10_000, Math.floor((c.maxMessageBytes - 64) / 3)]);
      const body = nested(depth, this.int(2) === 0);
      if (body.length >= c.maxMessageBytes) return this.msg('deep nesting', nested(1000, false));
      return this.msg('deep nesting', this.int(2) === 0 ? body : rawMap(this.withField(fields, 'metrics', body)));
    }
    if (r < 61) {
      const h = this.pick(HUGE);
      return this.msg('huge length header', this.int(2) === 0 ? h : rawMap(this.withField(fields, this.pick(names), h)));
    }
    if (r < 69) {
      const whole = rawMap(fields);
      return this.msg('truncated', whole.subarray(0, this.int(whole.length)));
    }
    if (r < 77) {
      const whole = Buffer.from(rawMap(fields));
      for (let k = 1 + this.int(4); k > 0; k--) {
        const at = this.int(whole.length);
        whole[at] = (whole[at] as number) ^ (1 << this.int(8));
      }
      return this.msg('bit flips', whole);
    }
    if (r < 80) {
      // A little over the codec's limit: refused with a coded acknowledgement, the connection stays.
      const over = u8(rawMap(fields), new Uint8Array(c.maxMessageBytes));
      return this.msg('oversized frame', over);
    }
    if (r < 84) return this.msg('random bytes', randomBytes(this.int(200), this.rnd));
    if (r < 88) {
      const payload = this.pick<unknown>(['update', 42, null, true, { type: 'update' }, [1, 2, 3], '', new Uint8Array(0)]);
      return this.msg('not binary / empty', payload, this.pick(['update', 'update-chunk']));
    }
    if (r < 92) return this.chunkMessage(c);
    if (r < 95) {
      const wrong = this.vector(this.pick([0, 1, c.dim - 1, c.dim + 1, 2 * c.dim]));
      return this.msg('wrong vector length', rawMap(this.withField(fields, 'update', pack(wrong))));
    }
    // Events the coordinator does not listen to: dropped, never answered.
    const event = this.pick(['hello', 'welcome', 'round-offer', 'ack', '__proto__', 'constructor', 'toString', 'error', 'x'.repeat(1 + this.int(300))]);
    return { kind: 'unknown event', event, args: [rawMap(fields)], ack: false };
  }

  /** Chunked transfers gone wrong: chunks without a header, out of range, for another round, of the wrong size. */
  private chunkMessage(c: FuzzContext): FuzzMessage {
    const count = Math.max(1, Math.ceil(c.dim / c.chunkValues));
    const r = this.int(6);
    if (r === 0) return this.msg('chunked transfer', rawMap(this.fields(c, c.round, c.version, null)));
    const index = this.pick([0, count - 1, count, 65_535, -1]);
    const values = this.vector(this.pick([1, c.chunkValues, c.chunkValues + 1, 0]), r === 5 ? Number.NaN : undefined);
    const chunk: [string, Uint8Array][] = [
      ['type', pack('update-chunk')],
      ['round', pack(this.pick([c.round, c.round + 1]))],
      ['index', pack(index)],
      ['count', pack(this.pick([count, count + 1, 0, 1 << 16]))],
      ['values', pack(values)],
    ];
    return this.msg('chunked transfer', rawMap(chunk), 'update-chunk');
  }
}

/** socket.io handshake `auth` objects, as JSON text, from plausible to absurd. */
export class HelloFuzzer {
  private readonly rnd: () => number;

  constructor(
    seed: number,
    private readonly valid: { site: string; schemaFingerprint: string },
  ) {
    this.rnd = prng(seed);
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rnd() * xs.length)] as T;
  }

  /** One CONNECT packet body (the JSON after "40"), and its kind. */
  next(): { kind: string; json: string } {
    const base = {
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      site: this.valid.site,
      schemaFingerprint: this.valid.schemaFingerprint,
      agentVersion: 'fuzz/1',
      auth: { kind: 'credential', credential: `fm_cred_${Math.floor(this.rnd() * 1e9)}` },
    };
    const r = Math.floor(this.rnd() * 10);
    const k = this.pick(Object.keys(base));
    switch (r) {
      case 0:
        return { kind: 'hello: wrong credential', json: JSON.stringify(base) };
      case 1:
        return { kind: 'hello: wrong token', json: JSON.stringify({ ...base, auth: { kind: 'enroll', token: 'fm_enroll_x' } }) };
      case 2:
        return { kind: 'hello: wrong type', json: JSON.stringify({ ...base, [k]: this.pick([null, 7, 'x', [], {}, true, -1e308]) }) };
      case 3:
        return { kind: 'hello: __proto__ keys', json: JSON.stringify(base).replace(/^\{/, `{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}},`) };
      case 4:
        return { kind: 'hello: other protocol version', json: JSON.stringify({ ...base, protocolVersion: this.pick([0, PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1, 1e9, String(PROTOCOL_VERSION)]) }) };
      case 5:
        return { kind: 'hello: bad site name', json: JSON.stringify({ ...base, site: this.pick(['', '../etc', 'a'.repeat(65), 'ünïcode', 'office a', '\u0000']) }) };
      case 6:
        return { kind: 'hello: deep nesting', json: `${JSON.stringify(base).slice(0, -1)},"x":${'['.repeat(5000)}${']'.repeat(5000)}}` };
      case 7:
        return { kind: 'hello: huge strings', json: JSON.stringify({ ...base, agentVersion: 'v'.repeat(50_000) }) };
      case 8:
        return { kind: 'hello: missing fields', json: JSON.stringify(Object.fromEntries(Object.entries(base).filter(([key]) => key !== k))) };
      default:
        return { kind: 'hello: not a hello', json: this.pick(['{"type":"hello"}', '{}', '{"auth":{"kind":"credential"}}', '{"type":"welcome"}']) };
    }
  }
}
