import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, acquireLock, isFedmetaError, isTempName, removeTempFiles, writeFileAtomic } from '@fedmeta/shared';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'fedmeta-durable-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('writeFileAtomic replaces the file with the whole new content, mode 0600, and leaves no temporary file', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'credential');
  writeFileSync(file, 'old content that is longer than the new one', { mode: 0o644 });
  await writeFileAtomic(file, 'secret\n');
  assert.equal(readFileSync(file, 'utf8'), 'secret\n');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir), ['credential']);

  await writeFileAtomic(file, [Buffer.from('a'), new Uint8Array(0), Buffer.from('bc')], 0o644);
  assert.equal(readFileSync(file, 'utf8'), 'abc');
  assert.equal(statSync(file).mode & 0o777, 0o644);
});

test('writeFileAtomic creates a missing directory with mode 0700', async (t) => {
  const dir = join(tempDir(t), 'state', 'models');
  await writeFileAtomic(join(dir, 'm.bin'), new Uint8Array([1, 2, 3]));
  assert.deepEqual([...readFileSync(join(dir, 'm.bin'))], [1, 2, 3]);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
});

test('a write interrupted before the rename keeps the old file, and removeTempFiles clears what it left', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'ledger.json');
  await writeFileAtomic(file, 'v1');
  const crash = new Error('crash before rename');
  await assert.rejects(
    writeFileAtomic(file, 'v2', 0o600, {
      beforeRename: () => {
        throw crash;
      },
    }),
    (e) => e === crash,
  );
  assert.equal(readFileSync(file, 'utf8'), 'v1');
  assert.equal(readdirSync(dir).filter(isTempName).length, 1);
  assert.equal(await removeTempFiles(dir), 1);
  assert.deepEqual(readdirSync(dir), ['ledger.json']);
});

test('the lock refusal names the role of the program that holds the directory', async (t) => {
  const dir = tempDir(t);
  for (const role of ['agent', 'coordinator'] as const) {
    const held = await acquireLock(dir, { role });
    await assert.rejects(acquireLock(dir, { role }), (e) => {
      assert.ok(isFedmetaError(e, ErrorCode.STATE_LOCKED));
      assert.match(e.message, new RegExp(`in use by process ${process.pid} .*stop that ${role} first`));
      return true;
    });
    await held.release();
  }
});
