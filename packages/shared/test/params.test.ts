import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkFlat, manifestOffsets, manifestSize, isFedmetaError, ErrorCode } from '@fedmeta/shared';

test('manifest sizes and offsets follow manifest order', () => {
  const m = [
    { name: 'w0', shape: [3, 4], dtype: 'float32' as const },
    { name: 'b0', shape: [4], dtype: 'float32' as const },
  ];
  assert.equal(manifestSize(m), 16);
  assert.deepEqual(manifestOffsets(m), [0, 12]);
  assert.throws(() => checkFlat(m, new Float32Array(15)), (e) => isFedmetaError(e, ErrorCode.WRONG_LENGTH));
});
