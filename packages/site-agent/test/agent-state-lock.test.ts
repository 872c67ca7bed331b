import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, builtinSchema, initRuntime, isFedmetaError, schemaFingerprint } from '@fedmeta/shared';
import { SiteAgent } from '../src/client.js';
import { loadAgentConfig } from '../src/config.js';
import { loadSiteData, type SiteData } from '../src/site-data.js';
import { captureLogger, siteCsv, tempDir, waitFor, writeText } from './fixtures.js';

const schema = builtinSchema('cicflowmeter');
let data: SiteData;

before(async () => {
  await initRuntime();
  const dir = tempDir({ after: () => undefined });
  data = await loadSiteData({ files: [writeText(dir, 'site.csv', siteCsv(20))], schema, seed: 1 });
});

/** Settings of an agent whose coordinator never answers (port 1 refuses): the lock comes before any connection. */
function settings(stateDir: string, files: string[] = []): Record<string, unknown> {
  return {
    site: 'branch-1',
    coordinatorUrl: 'http://127.0.0.1:1',
    allowInsecureHttp: true,
    enrollmentToken: 'enroll-token-123',
    stateDir,
    reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    data: { files },
  };
}

function agentOn(stateDir: string): SiteAgent {
  const config = loadAgentConfig({ env: {}, flags: settings(stateDir) });
  return new SiteAgent({ config, schema, schemaFingerprint: schemaFingerprint(schema), data, siteSeed: 42, logger: captureLogger().logger });
}

test('a second agent on the same state directory is refused with STATE_LOCKED until the first stops', async (t) => {
  const stateDir = tempDir(t);
  const first = agentOn(stateDir);
  await first.start();
  t.after(() => first.stop());
  const second = agentOn(stateDir);
  t.after(() => second.stop());
  await assert.rejects(second.start(), (e) => {
    assert.ok(isFedmetaError(e, ErrorCode.STATE_LOCKED));
    assert.match(e.message, new RegExp(`state directory is in use by process ${process.pid}`));
    assert.match(e.message, /stop that agent first/);
    return true;
  });
  await first.stop();
  assert.ok(!existsSync(join(stateDir, 'LOCK')), 'stop releases the lock');
  await second.start();
  assert.ok(existsSync(join(stateDir, 'LOCK')), 'the second agent holds the lock now');
});

function runAgent(configFile: string): { child: ChildProcess; exit: Promise<number | null>; stderr: () => string } {
  const bin = fileURLToPath(new URL('../bin/fedmeta-agent', import.meta.url));
  const child = spawn(process.execPath, [bin, 'run', '--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exit, stderr: () => stderr };
}

test('fedmeta-agent run refuses a state directory another run holds, and exits non-zero with the coded message', async (t) => {
  const dir = tempDir(t);
  const stateDir = join(dir, 'state');
  const configFile = join(dir, 'agent.json');
  writeFileSync(configFile, JSON.stringify({ ...settings(stateDir, [writeText(dir, 'site.csv', siteCsv(10))]), logLevel: 'error' }));
  const first = runAgent(configFile);
  t.after(() => first.child.kill('SIGKILL'));
  let firstExited = false;
  void first.exit.then(() => (firstExited = true));
  await waitFor(() => existsSync(join(stateDir, 'LOCK')) || firstExited, 30_000, 'the first agent to take the lock');
  assert.ok(!firstExited, `the first agent exited early: ${first.stderr()}`);

  const second = runAgent(configFile);
  t.after(() => second.child.kill('SIGKILL'));
  assert.equal(await second.exit, 1);
  assert.match(second.stderr(), /FEDMETA_ERR_STATE_LOCKED: the state directory is in use by process \d+ .*stop that agent first/);
  assert.ok(existsSync(join(stateDir, 'LOCK')), 'the refused run leaves the holder\'s lock alone');

  first.child.kill('SIGTERM');
  assert.equal(await first.exit, 0, first.stderr());
  assert.ok(!existsSync(join(stateDir, 'LOCK')), 'run releases the lock when it stops');
});
