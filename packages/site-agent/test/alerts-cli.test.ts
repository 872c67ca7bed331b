import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initRuntime } from '@fedmeta/shared';
import type { EcsAlert } from '../src/alerts/ecs.js';
import { writeModelFile } from '../src/model-file.js';
import { detectModel, shotsFile } from './alerts-fixtures.js';
import { csv, rowsOf, tempDir, waitFor } from './fixtures.js';

before(async () => {
  await initRuntime();
});

/**
 * The command line as an operator runs it: `detect --follow` on a growing file, alerts to a syslog server over
 * TCP, metrics on a port; SIGTERM ends it with its summary and exit code 0.
 */
test('fedmeta-agent detect --follow --alerts-to syslog+tcp:// --metrics-port: alerts arrive, metrics count them, SIGTERM ends it cleanly', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  const modelFile = join(dir, 'model.fmodel');
  await writeModelFile(modelFile, await detectModel(dir, 8));
  const shots = shotsFile(dir);
  const flows = join(dir, 'flows.csv');
  writeFileSync(flows, csv([...rowsOf('BENIGN', 5, 40), ...rowsOf('DoS Hulk', 10, 40)]));

  const messages: string[] = [];
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      for (let m = /^(\d+) /.exec(buf); m && buf.length >= m[0].length + Number(m[1]); m = /^(\d+) /.exec(buf)) {
        messages.push(buf.slice(m[0].length, m[0].length + Number(m[1])));
        buf = buf.slice(m[0].length + Number(m[1]));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const port = (server.address() as AddressInfo).port;

  const bin = fileURLToPath(new URL('../bin/fedmeta-agent', import.meta.url));
  const args = ['detect', '--model', modelFile, '--shots', shots, '--input', flows, '--follow', '--no-watch', '--steps', '30', '--lr', '0.1',
    '--alerts-to', `syslog+tcp://127.0.0.1:${port}`, '--site', 'branch-bergen', '--metrics-port', '0'];
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  await waitFor(() => messages.length >= 8, 60_000, `syslog alerts (stderr: ${stderr.slice(-400)})`);
  const metricsUrl = /"url":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/.exec(stderr)?.[1];
  assert.ok(metricsUrl, 'the metrics address is logged');
  appendFileSync(flows, `${rowsOf('DoS Hulk', 10, 60).join('\n')}\n`);
  await waitFor(() => messages.length >= 16, 10_000, 'alerts on appended flows');

  // Scrape until the appended flows show (10 s at most): alerts can arrive a moment before the batch is counted.
  let metrics = '';
  const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
  for (const end = Date.now() + 10_000; value('fedmeta_agent_flows_scored_total') !== 25 && Date.now() < end; ) {
    metrics = await (await fetch(metricsUrl)).text();
    if (value('fedmeta_agent_flows_scored_total') !== 25) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(value('fedmeta_agent_flows_scored_total'), 25);
  assert.equal(value('fedmeta_agent_alerts_total'), messages.length);
  assert.equal(value('fedmeta_agent_model_version'), 8);

  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr.slice(-800));
  assert.equal(stdout, '', 'with --alerts-to syslog nothing goes to stdout');
  assert.match(stderr, /scored 25 flows in/);
  const alert = JSON.parse(/^<\d+>1 \S+ \S+ fedmeta-agent \d+ alert - (.*)$/s.exec(messages[0]!)![1]!) as EcsAlert;
  assert.equal(alert.observer.name, 'branch-bergen');
  assert.equal(alert.rule.version, '8');
  assert.equal(alert.network?.transport !== undefined, true);
});
