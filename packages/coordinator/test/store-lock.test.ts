import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdir, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, isFedmetaError } from '@fedmeta/shared';
import { FileStateStore } from '../src/state/index.js';
import { bytesOf, makeCheckpoint, tempDir } from './store-helpers.js';

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  assert.ok(r.pid && r.pid > 0);
  return r.pid;
}

test('a second coordinator on the same data directory is refused while the first holds it', async (t) => {
  const dir = await tempDir(t);
  const first = new FileStateStore(dir);
  await first.open();
  const second = new FileStateStore(dir);
  await assert.rejects(second.open(), (e) => {
    assert.ok(isFedmetaError(e, ErrorCode.STATE_LOCKED));
    assert.match(e.message, new RegExp(`process ${process.pid}`));
    return true;
  });
  await first.close();
  assert.ok(!(await readdir(dir)).includes('LOCK'), 'close removes the lock');
  const third = new FileStateStore(dir);
  await third.open();
  await third.close();
});

test('a lock left by a dead process is taken over, and the report says whose', async (t) => {
  const dir = await tempDir(t);
  const pid = deadPid();
  await writeFile(
    join(dir, 'LOCK'),
    JSON.stringify({ pid, hostname: hostname(), nonce: 'old', startedAt: new Date(0).toISOString() }),
  );
  const s = new FileStateStore(dir);
  const report = await s.open();
  t.after(() => s.close());
  assert.equal(report.tookOverLockFrom, pid);
  assert.match(report.message, new RegExp(`took over the lock of process ${pid}`));
});

test('a lock from another host is respected while its heartbeat is fresh and taken over once it stops', async (t) => {
  const dir = await tempDir(t);
  const lock = join(dir, 'LOCK');
  await writeFile(lock, JSON.stringify({ pid: 1, hostname: 'other-host', nonce: 'n', startedAt: 'x' }));
  const s = new FileStateStore(dir, { lock: { staleAfterMs: 60_000 } });
  await assert.rejects(s.open(), (e) => isFedmetaError(e, ErrorCode.STATE_LOCKED) && /other-host/.test(e.message));
  const old = new Date(Date.now() - 120_000);
  await utimes(lock, old, old);
  const report = await s.open();
  t.after(() => s.close());
  assert.equal(report.tookOverLockFrom, 1);
});

test('kill -9 in the middle of a commit: the restart restores the last committed version', async (t) => {
  const dir = await tempDir(t);
  const storeModule = new URL('../src/state/index.ts', import.meta.url).href;
  const helpersModule = new URL('./store-helpers.ts', import.meta.url).href;
  // The child dies between the fsync of the temporary file and the rename, the worst moment for a torn write.
  const child = [
    `const { FileStateStore } = await import(${JSON.stringify(storeModule)});`,
    `const { makeCheckpoint } = await import(${JSON.stringify(helpersModule)});`,
    `const s = new FileStateStore(${JSON.stringify(dir)}, { writeHooks: { beforeRename: (p) => {`,
    `  if (p.includes('checkpoint-000000000003')) process.kill(process.pid, 'SIGKILL'); } } });`,
    'await s.open();',
    'for (const v of [1, 2, 3]) await s.commit(makeCheckpoint(v));',
  ].join('\n');
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const proc = spawn(
    process.execPath,
    ['--conditions=fedmeta-source', '--import', 'tsx', '--input-type=module', '-e', child],
    { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) =>
    proc.on('exit', (c, sig) => res([c, sig])),
  );
  assert.equal(signal, 'SIGKILL', `child should die by SIGKILL (code ${code}): ${stderr}`);

  const s = new FileStateStore(dir);
  const report = await s.open();
  t.after(() => s.close());
  assert.equal(report.status, 'restored');
  assert.equal(report.version, 2);
  assert.equal(report.removedTempFiles, 1);
  assert.equal(report.tookOverLockFrom, proc.pid);
  assert.ok(bytesOf(s.latest()!.params).equals(bytesOf(makeCheckpoint(2).params)));
  assert.ok(bytesOf(s.latest()!.optimizer.buffers.v!).equals(bytesOf(makeCheckpoint(2).optimizer.buffers.v!)));
});
