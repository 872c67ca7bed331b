import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../src/cli/main.js';
import { tempDir } from './transport-fixtures.js';

const BIN = fileURLToPath(new URL('../bin/fedmeta-coordinator', import.meta.url));

test('the launcher serves from a config file, environment and flags, and stops cleanly on SIGTERM', async (t) => {
  const dir = await tempDir(t);
  const config = join(dir, 'coordinator.yaml');
  await writeFile(config, ['server:', '  host: 127.0.0.1', '  port: 8443', '  allowInsecureHttp: true', 'dataDir: state', 'model:', '  inputDim: 6', '  hidden: [4]', ''].join('\n'));
  const token = 'env-admin-token-0123456789';
  const child = spawn(process.execPath, [BIN, 'serve', '--config', config, '--server.port', '0'], {
    cwd: '/',
    env: { ...process.env, FEDMETA_COORDINATOR_ADMIN_TOKEN: token, FEDMETA_COORDINATOR_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));

  const deadline = Date.now() + 20_000;
  while (!out.includes('"coordinator ready"')) {
    assert.ok(Date.now() < deadline, `the coordinator did not start:\n${out}`);
    assert.equal(child.exitCode, null, `the coordinator exited:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out)?.[1];
  assert.ok(url, 'the log names the bound address');
  assert.notEqual(url, 'http://127.0.0.1:8443', 'the flag overrode the file');

  let text = '';
  const io = { stdout: (s: string) => (text += s), stderr: (s: string) => (text += s), env: {}, cwd: dir };
  assert.equal(await runCli(['status', '--url', url, '--admin-token', token, '--json'], io), 0, text);
  const status = JSON.parse(text) as { version: number; ready: boolean };
  assert.equal(status.version, 0);
  assert.equal(status.ready, true);
  assert.ok(!out.includes(token), 'the admin token is not logged');

  child.kill('SIGTERM');
  assert.equal(await exited, 0, out);
  assert.match(out, /"coordinator stopped"/);
  // The data directory lies beside the config file and is free again: offline commands can open it.
  text = '';
  assert.equal(await runCli(['sites', 'list', '--data-dir', join(dir, 'state'), '--json'], io), 0, text);
});
