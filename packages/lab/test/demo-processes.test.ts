import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isFedmetaError } from '@fedmeta/shared';
import { ProcessGroup, StepFailure, StepRunner, crashLines, readableLogLine } from '../src/demo/index.js';
import type { ManagedChild } from '../src/demo/index.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

// A launcher that re-executes node: it starts a grandchild that ignores SIGTERM, and exits on SIGTERM itself.
const LAUNCHER = `
const { spawn } = require('node:child_process');
const g = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"], { stdio: 'ignore' });
console.log('grandchild ' + g.pid);
setTimeout(() => console.log('ready'), 200);
setInterval(() => {}, 1000);
`;

test('stopping the group ends every child and what it started, even a grandchild that ignores SIGTERM', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fedmeta-demo-proc-'));
  const crashes: string[] = [];
  const group = new ProcessGroup((c) => crashes.push(c.name));
  try {
    const child = group.start({ name: 'launcher', command: process.execPath, args: ['-e', LAUNCHER], logFile: join(dir, 'launcher.log') });
    await child.waitForLine(/^ready$/, 10_000);
    const grandchild = Number(/grandchild (\d+)/.exec(child.tail().join('\n'))![1]);
    assert.ok(alive(child.pid!) && alive(grandchild));
    await group.stop(group.all, 300);
    assert.equal(child.running, false);
    await until(() => !alive(grandchild));
    assert.deepEqual(crashes, [], 'a stop the group asked for is not a crash');
    assert.match(await readFile(join(dir, 'launcher.log'), 'utf8'), /^ready$/m, 'the output went to the log file');
  } finally {
    group.killAllNow();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a child that dies on its own is reported, and waiting on it fails instead of timing out', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fedmeta-demo-proc-'));
  const crashed: ManagedChild[] = [];
  const group = new ProcessGroup((c) => crashed.push(c));
  try {
    const script = 'console.log(JSON.stringify({ level: 30, msg: "started" })); console.error("TypeError: bad thing"); console.error("Node.js v20"); process.exit(3)';
    const child = group.start({ name: 'agent', command: process.execPath, args: ['-e', script], logFile: join(dir, 'a.log') });
    await assert.rejects(child.waitForLine(/never printed/, 30_000), (e) => isFedmetaError(e) && /agent exited \(exit code 3\)/.test(e.message));
    await until(() => crashed.length === 1);
    assert.equal(group.crashes[0]?.child, child);
    // What explains the crash is its error line, not the runtime's trailer.
    assert.deepEqual(crashLines(crashed[0]!), ['TypeError: bad thing']);
    assert.ok(crashed[0]!.tail().map(readableLogLine).includes('info: started'), 'pino lines read as level and message');
  } finally {
    group.killAllNow();
    await rm(dir, { recursive: true, force: true });
  }
});

test('an abort fails the step in progress and every later step, naming the step', async () => {
  const lines: string[] = [];
  const steps = new StepRunner(3, (l) => lines.push(l));
  assert.equal(await steps.run('first', async () => 1), 1);
  const pending = steps.run('second', () => new Promise<number>(() => {}));
  steps.abort(new Error('the coordinator process exited unexpectedly'));
  await assert.rejects(pending, (e) => e instanceof StepFailure && e.step === 'second' && /exited unexpectedly/.test(e.message));
  await assert.rejects(steps.run('third', async () => 3), (e) => e instanceof StepFailure && e.step === 'third');
  assert.deepEqual(lines.filter((l) => l.startsWith('[')), ['[1/3] first', '[2/3] second']);
});
