import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isFedmetaError } from '../src/errors.js';
import {
  aggregate,
  aggregatorPreconditions,
  centeredClipping,
  clipToNorm,
  multiKrum,
  needsIndividualUpdates,
  normClip,
  trimmedMean,
} from '../src/aggregate/index.js';
import type { AggregatorConfig, WeightedUpdate } from '../src/aggregate/index.js';
import type { ErrorCode as Code } from '../src/errors.js';

const up = (weight: number, ...xs: number[]): WeightedUpdate => ({ vector: new Float32Array(xs), weight });
const many = (n: number): WeightedUpdate[] => Array.from({ length: n }, (_, i) => up(1, i, -i));

function refuses(fn: () => unknown, code: Code, ...mentions: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isFedmetaError(e, code), `expected ${code}, got ${String(e)}`);
    for (const m of mentions) assert.ok(e.message.includes(m), `message should mention "${m}": ${e.message}`);
    return true;
  });
}

const ALL: AggregatorConfig[] = [
  { kind: 'mean' },
  { kind: 'median' },
  { kind: 'trimmed-mean', trim: 1 },
  { kind: 'multi-krum', f: 1 },
  { kind: 'centered-clipping', tau: 1 },
  { kind: 'norm-clip', maxNorm: 1 },
];

test('every aggregator refuses empty input, mixed lengths, non-finite values and bad weights', () => {
  for (const c of ALL) {
    refuses(() => aggregate(c, []), ErrorCode.PRECONDITION, 'n = 0');
    const ok = many(5);
    refuses(() => aggregate(c, [...ok, up(1, 1, 2, 3)]), ErrorCode.SHAPE, 'n = 6');
    for (const bad of [NaN, Infinity, -Infinity]) {
      refuses(() => aggregate(c, [...ok, up(1, 0, bad)]), ErrorCode.NON_FINITE, 'update 5');
    }
    refuses(() => aggregate(c, [...ok, up(-1, 0, 0)]), ErrorCode.PRECONDITION, 'update 5');
    refuses(() => aggregate(c, [...ok, up(NaN, 0, 0)]), ErrorCode.PRECONDITION, 'update 5');
    refuses(() => aggregate(c, ok.map((u) => ({ ...u, weight: 0 }))), ErrorCode.PRECONDITION, 'total weight');
  }
});

test('the sums find NaN and infinity from their result and still name the update, whatever its weight or place', () => {
  for (const c of ALL) {
    const ok = many(5);
    // In the middle, with weight 0 (a sum would drop it), and +inf and -inf that a sum turns into NaN.
    refuses(() => aggregate(c, [ok[0]!, ok[1]!, up(1, NaN, 0), ...ok.slice(2)]), ErrorCode.NON_FINITE, 'update 2 of n = 6');
    refuses(() => aggregate(c, [...ok, up(0, 0, NaN)]), ErrorCode.NON_FINITE, 'update 5');
    refuses(() => aggregate(c, [...ok, up(1, Infinity, 0), up(1, -Infinity, 0)]), ErrorCode.NON_FINITE, 'update 5');
  }
});

test('trimmed mean needs n > 2 * trim and a whole trim', () => {
  refuses(() => trimmedMean(many(4), 2), ErrorCode.PRECONDITION, 'n = 4', 'trim = 2');
  refuses(() => trimmedMean(many(4), -1), ErrorCode.PRECONDITION, 'trim = -1');
  refuses(() => trimmedMean(many(4), 0.5), ErrorCode.PRECONDITION, 'trim = 0.5');
  assert.equal(trimmedMean(many(5), 2).length, 2); // n = 5 = 2 * 2 + 1 is enough
});

test('Multi-Krum needs n >= 2f + 3 and 1 <= m <= n - f', () => {
  refuses(() => multiKrum(many(4), 1), ErrorCode.PRECONDITION, 'n = 4', 'f = 1', '2f + 3 = 5');
  refuses(() => multiKrum(many(6), 2), ErrorCode.PRECONDITION, 'n = 6', 'f = 2');
  refuses(() => multiKrum(many(5), 1, 0), ErrorCode.PRECONDITION, 'n = 5', 'f = 1', 'm = 0');
  refuses(() => multiKrum(many(5), 1, 5), ErrorCode.PRECONDITION, 'n - f = 4', 'm = 5');
  refuses(() => multiKrum(many(5), -1), ErrorCode.PRECONDITION, 'f = -1');
  assert.equal(multiKrum(many(5), 1, 4).length, 2); // the boundary n = 2f + 3, m = n - f runs
  assert.equal(multiKrum(many(3), 0).length, 2); // f = 0 needs n >= 3
  // the selected updates all carry zero weight while the total over all does not
  const zeroSelected = [up(0, 0, 0), up(0, 0, 0), up(0, 0, 0), up(0, 0, 0), up(5, 50, 50)];
  refuses(() => multiKrum(zeroSelected, 1), ErrorCode.PRECONDITION, 'n = 5', 'f = 1');
});

test('centered clipping needs tau > 0, iterations >= 1 and a matching finite reference', () => {
  for (const tau of [0, -1, NaN, Infinity]) refuses(() => centeredClipping(many(3), tau), ErrorCode.PRECONDITION, 'n = 3', 'tau');
  refuses(() => centeredClipping(many(3), 1, 0), ErrorCode.PRECONDITION, 'iterations');
  refuses(() => centeredClipping(many(3), 1, 1, new Float32Array(3)), ErrorCode.SHAPE, 'n = 3');
  refuses(() => centeredClipping(many(3), 1, 1, new Float32Array([0, NaN])), ErrorCode.NON_FINITE, 'reference');
});

test('norm clipping needs a finite maxNorm > 0', () => {
  for (const maxNorm of [0, -2, NaN, Infinity]) refuses(() => normClip(many(2), maxNorm), ErrorCode.PRECONDITION, 'n = 2', 'maxNorm');
  refuses(() => clipToNorm(new Float32Array([1]), 0), ErrorCode.PRECONDITION, 'maxNorm');
  refuses(() => clipToNorm(new Float32Array([1, Infinity]), 1), ErrorCode.NON_FINITE);
});

test('aggregatorPreconditions answers from the config and the count alone', () => {
  assert.equal(aggregatorPreconditions({ kind: 'multi-krum', f: 2 }, 7), null);
  assert.match(aggregatorPreconditions({ kind: 'multi-krum', f: 2 }, 6) ?? '', /n = 6.*f = 2|f = 2.*n = 6/);
  assert.equal(aggregatorPreconditions({ kind: 'trimmed-mean', trim: 3 }, 7), null);
  assert.match(aggregatorPreconditions({ kind: 'trimmed-mean', trim: 3 }, 6) ?? '', /n = 6/);
  assert.equal(aggregatorPreconditions({ kind: 'mean' }, 1), null);
  assert.match(aggregatorPreconditions({ kind: 'median' }, 0) ?? '', /n = 0/);
  assert.equal(aggregatorPreconditions({ kind: 'centered-clipping', tau: 0.1, iterations: 1 }, 1), null);
  assert.notEqual(aggregatorPreconditions({ kind: 'norm-clip', maxNorm: 0 }, 4), null);
  const unknown = { kind: 'geometric-median' } as unknown as AggregatorConfig;
  assert.match(aggregatorPreconditions(unknown, 4) ?? '', /unknown aggregator/);
  refuses(() => aggregate(unknown, many(4)), ErrorCode.CONFIG, 'geometric-median');
});

test('needsIndividualUpdates marks the aggregators that secure aggregation cannot run', () => {
  const need = Object.fromEntries(ALL.map((c) => [c.kind, needsIndividualUpdates(c)]));
  assert.deepEqual(need, {
    mean: false,
    median: true,
    'trimmed-mean': true,
    'multi-krum': true,
    'centered-clipping': false,
    'norm-clip': false,
  });
});
