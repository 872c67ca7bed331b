import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPrimeSync, randomBytes } from 'node:crypto';
import { ErrorCode, isFedmetaError } from '../src/errors.js';
import { reconstructSecret, SHAMIR_PRIME, SHARE_BYTES, splitSecret } from '../src/secagg/index.js';
import type { Share } from '../src/secagg/index.js';

const secret = (): Uint8Array => new Uint8Array(randomBytes(32));

test('the field modulus is a prime just above 2^256, so every 32-byte secret is a field element', () => {
  assert.ok(checkPrimeSync(SHAMIR_PRIME, { checks: 32 }));
  assert.ok(SHAMIR_PRIME > 1n << 256n);
  assert.equal(SHARE_BYTES, 33);
});

test('any t of n shares rebuild the secret, in any order', () => {
  const s = secret();
  const xs = [1, 2, 3, 5, 8, 13, 21];
  const shares = splitSecret(s, xs, 4);
  assert.equal(shares.length, 7);
  for (const pick of [[0, 1, 2, 3], [3, 4, 5, 6], [6, 0, 4, 2], [1, 3, 5, 6]]) {
    assert.deepEqual(reconstructSecret(pick.map((i) => shares[i] as Share), 4), s);
  }
  // More than t: the first t are used.
  assert.deepEqual(reconstructSecret(shares, 4), s);
});

test('the extreme secrets 0…0 and ff…ff survive sharing', () => {
  for (const s of [new Uint8Array(32), new Uint8Array(32).fill(0xff)]) {
    const shares = splitSecret(s, [4, 9, 17], 2);
    assert.deepEqual(reconstructSecret([shares[2] as Share, shares[0] as Share], 2), s);
  }
});

test('threshold 1 hands every holder the secret itself; threshold n needs all of them', () => {
  const s = secret();
  const one = splitSecret(s, [1, 2, 3], 1);
  for (const sh of one) assert.deepEqual(reconstructSecret([sh], 1), s);
  const all = splitSecret(s, [1, 2, 3], 3);
  assert.deepEqual(reconstructSecret(all, 3), s);
});

test('t − 1 shares are refused with SECAGG_ABORTED, and interpolating them gives nothing like the secret', () => {
  const s = secret();
  const shares = splitSecret(s, [1, 2, 3, 4, 5], 3);
  assert.throws(() => reconstructSecret(shares.slice(0, 2), 3), (e) => isFedmetaError(e, ErrorCode.SECAGG_ABORTED));
  // Treating two shares of a degree-2 polynomial as a line gives a value unrelated to the secret.
  let got: Uint8Array | null = null;
  try {
    got = reconstructSecret(shares.slice(0, 2), 2);
  } catch (e) {
    assert.ok(isFedmetaError(e, ErrorCode.SECAGG_AUTH));
  }
  if (got) assert.notDeepEqual(got, s);
});

test('the same secret shared twice gives unrelated shares (fresh random coefficients)', () => {
  const s = secret();
  const a = splitSecret(s, [1, 2, 3], 2);
  const b = splitSecret(s, [1, 2, 3], 2);
  assert.notDeepEqual(a[0]?.value, b[0]?.value);
});

test('an altered share rebuilds another value', () => {
  const s = secret();
  const shares = splitSecret(s, [1, 2, 3], 3);
  const bad = shares.map((sh, i) => ({ x: sh.x, value: Uint8Array.from(sh.value, (b, j) => (i === 1 && j === 32 ? b ^ 1 : b)) }));
  let got: Uint8Array | null = null;
  try {
    got = reconstructSecret(bad, 3);
  } catch (e) {
    assert.ok(isFedmetaError(e, ErrorCode.SECAGG_AUTH));
  }
  if (got) assert.notDeepEqual(got, s);
});

test('bad inputs are refused: wrong secret length, repeated or zero x, threshold above the holders', () => {
  assert.throws(() => splitSecret(new Uint8Array(31), [1, 2], 2), (e) => isFedmetaError(e, ErrorCode.WRONG_LENGTH));
  assert.throws(() => splitSecret(secret(), [1, 1], 2), (e) => isFedmetaError(e, ErrorCode.PRECONDITION));
  assert.throws(() => splitSecret(secret(), [0, 1], 2), (e) => isFedmetaError(e, ErrorCode.PRECONDITION));
  assert.throws(() => splitSecret(secret(), [1, 2], 3), (e) => isFedmetaError(e, ErrorCode.PRECONDITION));
  const shares = splitSecret(secret(), [1, 2], 2);
  assert.throws(
    () => reconstructSecret([shares[0] as Share, { x: 1, value: (shares[1] as Share).value }], 2),
    (e) => isFedmetaError(e, ErrorCode.PRECONDITION),
  );
});
