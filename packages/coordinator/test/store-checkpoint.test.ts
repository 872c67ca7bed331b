import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, isFedmetaError } from '@fedmeta/shared';
import { FileStateStore } from '../src/state/index.js';
import { bytesOf, checkpointFile, makeCheckpoint, tempDir } from './store-helpers.js';

async function flipBit(path: string, offset: number, bit = 0): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b[0] = b[0]! ^ (1 << bit);
    await fh.write(b, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

async function storeWithVersions(dir: string, versions: number[]): Promise<void> {
  const s = new FileStateStore(dir);
  await s.open();
  for (const v of versions) await s.commit(makeCheckpoint(v));
  await s.close();
}

test('a committed checkpoint reopens with byte-equal parameters, optimizer state and counters', async (t) => {
  const dir = await tempDir(t);
  const s = new FileStateStore(dir);
  const fresh = await s.open();
  assert.equal(fresh.status, 'fresh');
  assert.equal(s.latest(), null);
  const cp = makeCheckpoint(3, { nextRound: 4, released: [2], extensions: { accountant: { eps: 1.25 } } });
  await s.commit(cp);
  await s.close();

  const again = new FileStateStore(dir);
  const report = await again.open();
  t.after(() => again.close());
  assert.equal(report.status, 'restored');
  assert.equal(report.version, 3);
  assert.deepEqual(report.skipped, []);
  const got = again.latest();
  assert.ok(got);
  assert.ok(got.params instanceof Float32Array);
  assert.ok(bytesOf(got.params).equals(bytesOf(cp.params)), 'params byte-equal (NaN payload, -0, subnormal)');
  for (const name of ['m', 'v']) {
    const buf = got.optimizer.buffers[name];
    assert.ok(buf instanceof Float64Array, `${name} is a Float64Array`);
    assert.ok(bytesOf(buf).equals(bytesOf(cp.optimizer.buffers[name]!)), `optimizer buffer ${name} byte-equal`);
  }
  assert.equal(got.optimizer.step, 3);
  assert.equal(got.nextRound, 4);
  assert.deepEqual(got.rngState, cp.rngState);
  assert.deepEqual(got.manifest, cp.manifest);
  assert.deepEqual(got.released, [2]);
  assert.deepEqual(got.extensions, { accountant: { eps: 1.25 } });
});

test('a truncated latest checkpoint falls back to the previous one and the report says so', async (t) => {
  const dir = await tempDir(t);
  await storeWithVersions(dir, [1, 2, 3]);
  const size = (await stat(checkpointFile(dir, 3))).size;
  await truncate(checkpointFile(dir, 3), Math.floor(size / 2));

  const s = new FileStateStore(dir);
  const report = await s.open();
  t.after(() => s.close());
  assert.equal(report.status, 'fell-back');
  assert.equal(report.version, 2);
  assert.equal(report.fellBackFrom, 3);
  assert.equal(report.skipped[0]?.version, 3);
  assert.equal(report.skipped[0]?.fault, 'truncated');
  assert.match(report.message, /FELL BACK to version 2/);
  assert.match(report.message, /version 3 truncated/);
  assert.ok(bytesOf(s.latest()!.params).equals(bytesOf(makeCheckpoint(2).params)));
  // The damaged file is kept for inspection but out of the way, so the next commit can reuse the number.
  assert.ok(report.skipped[0]?.quarantinedTo);
  await stat(report.skipped[0].quarantinedTo);
  assert.deepEqual(await s.listVersions(), [1, 2]);
  await s.commit(makeCheckpoint(3));
  assert.equal(s.latest()?.version, 3);
});

test('a single flipped bit in the latest checkpoint payload or header is detected and falls back', async (t) => {
  for (const [where, offset] of [
    ['payload', 900],
    ['length field', 9],
  ] as const) {
    const dir = await tempDir(t);
    await storeWithVersions(dir, [1, 2]);
    await flipBit(checkpointFile(dir, 2), offset, 3);
    const s = new FileStateStore(dir);
    const report = await s.open();
    assert.equal(report.status, 'fell-back', where);
    assert.equal(report.version, 1, where);
    assert.ok(['checksum-mismatch', 'truncated', 'bad-header'].includes(report.skipped[0]!.fault), where);
    assert.match(report.message, /FELL BACK to version 1/);
    await s.close();
    // Reported once: the damaged file was moved away, so the next open is a plain restore.
    const s2 = new FileStateStore(dir);
    assert.equal((await s2.open()).status, 'restored');
    await s2.close();
  }
});

test('when every checkpoint is damaged the store refuses with STATE_CORRUPT instead of starting fresh', async (t) => {
  const dir = await tempDir(t);
  await storeWithVersions(dir, [1, 2]);
  await flipBit(checkpointFile(dir, 1), 500);
  await truncate(checkpointFile(dir, 2), 10);
  const s = new FileStateStore(dir);
  await assert.rejects(s.open(), (e) => {
    assert.ok(isFedmetaError(e, ErrorCode.STATE_CORRUPT));
    assert.match(e.message, /no checkpoint .* verifies/);
    assert.match(e.message, /version 2/);
    assert.match(e.message, /version 1/);
    return true;
  });
  // Nothing was moved or deleted: the operator gets the files as they were, and the lock was released.
  assert.equal((await readdir(dir)).filter((n) => n.startsWith('checkpoint-')).length, 2);
  const again = new FileStateStore(dir);
  await assert.rejects(again.open(), (e) => isFedmetaError(e, ErrorCode.STATE_CORRUPT));
});

test('checkpoint files gone while the manifest says state existed: STATE_CORRUPT, not a fresh start', async (t) => {
  const dir = await tempDir(t);
  await storeWithVersions(dir, [1, 2]);
  for (const n of await readdir(dir)) if (n.startsWith('checkpoint-')) await rm(join(dir, n));
  const s = new FileStateStore(dir);
  await assert.rejects(s.open(), (e) => {
    assert.ok(isFedmetaError(e, ErrorCode.STATE_CORRUPT));
    assert.match(e.message, /manifest records version 2 but no checkpoint file is left/);
    return true;
  });
});

test('the newest checkpoint file missing (but recorded) falls back and says it is missing', async (t) => {
  const dir = await tempDir(t);
  await storeWithVersions(dir, [1, 2, 3]);
  await rm(checkpointFile(dir, 3));
  const s = new FileStateStore(dir);
  const report = await s.open();
  t.after(() => s.close());
  assert.equal(report.status, 'fell-back');
  assert.equal(report.version, 2);
  assert.equal(report.fellBackFrom, 3);
  assert.deepEqual(
    report.skipped.map((x) => [x.version, x.fault]),
    [[3, 'missing']],
  );
});

test('a crash between writing the temporary file and the rename leaves the previous version intact', async (t) => {
  const dir = await tempDir(t);
  const crash = new Error('simulated crash before rename');
  const s = new FileStateStore(dir, {
    writeHooks: {
      beforeRename: (temp) => {
        if (temp.includes('checkpoint-000000000002')) throw crash;
      },
    },
  });
  await s.open();
  await s.commit(makeCheckpoint(1));
  await assert.rejects(s.commit(makeCheckpoint(2)), (e) => e === crash);
  assert.equal(s.latest()?.version, 1, 'memory keeps the last durable version');
  const temps = (await readdir(dir)).filter((n) => n.startsWith('.tmp-'));
  assert.equal(temps.length, 1, 'the interrupted write left its temporary file');
  await s.close();

  const again = new FileStateStore(dir);
  const report = await again.open();
  t.after(() => again.close());
  assert.equal(report.status, 'restored');
  assert.equal(report.version, 1);
  assert.equal(report.removedTempFiles, 1);
  assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('.tmp-')), []);
  assert.ok(bytesOf(again.latest()!.params).equals(bytesOf(makeCheckpoint(1).params)));
});

test('keeps the last K checkpoints but never prunes a released version, even after a rollback', async (t) => {
  const dir = await tempDir(t);
  const s = new FileStateStore(dir, { keepCheckpoints: 3 });
  await s.open();
  t.after(() => s.close());
  await s.commit(makeCheckpoint(0));
  await s.commit(makeCheckpoint(1));
  await s.commit(makeCheckpoint(2));
  // Releasing rewrites the latest version's metadata in place.
  await s.commit(makeCheckpoint(2, { released: [1] }));
  await s.commit(makeCheckpoint(3, { released: [1] }));
  await s.commit(makeCheckpoint(4, { released: [1, 4] }));
  // A rollback pops version 4 off the release stack; it was released once, so it stays.
  for (let v = 5; v <= 9; v++) await s.commit(makeCheckpoint(v, { released: [1] }));
  assert.deepEqual(await s.listVersions(), [1, 4, 7, 8, 9]);
  const one = await s.loadVersion(1);
  assert.ok(bytesOf(one.params).equals(bytesOf(makeCheckpoint(1).params)));
  await assert.rejects(s.loadVersion(2), (e) => {
    assert.ok(isFedmetaError(e, ErrorCode.UNKNOWN_VERSION));
    assert.match(e.message, /version 2 is not kept/);
    return true;
  });
});

test('commit refuses an older version and a malformed checkpoint, and nothing works before open', async (t) => {
  const dir = await tempDir(t);
  const s = new FileStateStore(dir);
  assert.throws(() => s.latest(), (e) => isFedmetaError(e, ErrorCode.NOT_READY));
  await s.open();
  t.after(() => s.close());
  await s.commit(makeCheckpoint(5));
  await assert.rejects(s.commit(makeCheckpoint(4)), (e) => isFedmetaError(e, ErrorCode.PRECONDITION));
  const bad = makeCheckpoint(6, { params: new Float32Array(7) });
  await assert.rejects(s.commit(bad), (e) => {
    assert.ok(isFedmetaError(e, ErrorCode.PRECONDITION));
    assert.match(e.message, /7 parameters but its manifest describes 113/);
    return true;
  });
  const badOpt = makeCheckpoint(6);
  badOpt.optimizer.buffers.m = new Float32Array(113) as unknown as Float64Array;
  await assert.rejects(s.commit(badOpt), (e) => isFedmetaError(e, ErrorCode.PRECONDITION));
  assert.equal(s.latest()?.version, 5);
});

test('checkpoint files are a header with magic, length and sha256, then MessagePack, not JSON', async (t) => {
  const dir = await tempDir(t);
  await storeWithVersions(dir, [1]);
  const bytes = await readFile(checkpointFile(dir, 1));
  assert.equal(bytes.subarray(0, 4).toString('ascii'), 'FMST');
  assert.equal(Number(bytes.readBigUInt64LE(8)), bytes.length - 48);
  // 113 float32 + 2 x 113 float64 in binary, plus small metadata: far below a JSON rendering.
  assert.ok(bytes.length < 113 * 4 + 2 * 113 * 8 + 1500, `size ${bytes.length}`);
  // A foreign file with the checkpoint name pattern is treated as damage, not loaded.
  await writeFile(checkpointFile(dir, 2), JSON.stringify({ version: 2, params: Array.from(makeCheckpoint(2).params) }));
  const s = new FileStateStore(dir);
  const report = await s.open();
  t.after(() => s.close());
  assert.equal(report.version, 1);
  assert.equal(report.skipped[0]?.fault, 'bad-header');
});
