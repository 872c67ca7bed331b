import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { builtinSchema, initRuntime, schemaFingerprint } from '@fedmeta/shared';
import { createAgentMetrics } from '../src/agent-metrics/agent-metrics.js';
import { openRunMetrics } from '../src/agent-metrics/run-wiring.js';
import { startMetricsServer } from '../src/agent-metrics/server.js';
import { SiteAgent } from '../src/client.js';
import { loadAgentConfig } from '../src/config.js';
import { parser } from '../src/cli.js';
import { loadSiteData, type SiteData } from '../src/site-data.js';
import { FakeCoordinator } from './fake-coordinator.js';
import { captureLogger, siteCsv, tempDir, waitFor, writeText } from './fixtures.js';

const schema = builtinSchema('cicflowmeter');
let data: SiteData;

before(async () => {
  await initRuntime();
  const dir = tempDir({ after: () => undefined });
  data = await loadSiteData({ files: [writeText(dir, 'site.csv', siteCsv(20))], schema, seed: 1 });
});

function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line, `the metrics have ${series}`);
  return Number(line.slice(series.length + 1));
}

test('the metrics listener serves /metrics and /healthz on loopback, and nothing else', async (t) => {
  const metrics = createAgentMetrics({ processMetrics: false });
  const server = await startMetricsServer({ metrics, port: 0, logger: captureLogger().logger });
  t.after(() => server.close());
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  metrics.batchScored({ scored: 1024, flagged: 3, seconds: 0.004, modelVersion: 5 });
  metrics.batchScored({ scored: 100, flagged: 0, seconds: 0.001, modelVersion: 6 });
  const res = await fetch(`${server.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await res.text();
  assert.equal(value(text, 'fedmeta_agent_flows_scored_total'), 1124);
  assert.equal(value(text, 'fedmeta_agent_alerts_total'), 3);
  assert.equal(value(text, 'fedmeta_agent_model_version'), 6);
  assert.equal(value(text, 'fedmeta_agent_detect_batch_seconds_count'), 2);
  assert.equal(value(text, 'fedmeta_agent_connected'), 0);
  assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  assert.equal((await fetch(`${server.url}/other`)).status, 404);
  assert.equal((await fetch(`${server.url}/metrics`, { method: 'POST' })).status, 405);
  // A port in use is a plain configuration error.
  await assert.rejects(startMetricsServer({ metrics, port: server.port, logger: captureLogger().logger }), /choose another --metrics-port/);
});

test('run --metrics-port: a round computed and accepted shows as episodes, inner-loop time and an accepted update', async (t) => {
  const coord = new FakeCoordinator();
  await coord.start();
  t.after(() => coord.close());
  const config = loadAgentConfig({
    env: {},
    flags: {
      site: 'branch-1',
      coordinatorUrl: coord.url,
      allowInsecureHttp: true,
      enrollmentToken: 'enroll-token-123',
      stateDir: tempDir(t),
      reconnect: { initialDelayMs: 30, maxDelayMs: 120 },
      metricsPort: 0,
    },
    ignoreFlags: ['metricsPort'],
  });
  const log = captureLogger();
  const run = await openRunMetrics({ port: 0, logger: log.logger });
  t.after(() => run.close());
  const agent = new SiteAgent({ config, schema, schemaFingerprint: schemaFingerprint(schema), data, siteSeed: 42, logger: log.logger, ...run.hooks });
  run.metrics.watchConnection(() => agent.connected);
  t.after(() => agent.stop());
  await agent.start();
  await waitFor(() => agent.connected, 5000, 'connection');
  coord.offer(3);
  await waitFor(() => coord.updates().length === 1, 20_000, 'the update');
  const url = /"url":"([^"]+)"/.exec(log.text())?.[1];
  assert.ok(url, 'the metrics address is logged');
  // The verdict reaches the metrics once the acknowledgement is in: scrape until it shows (5 s at most).
  let text = '';
  for (let i = 0; i < 100 && !text.includes('fedmeta_agent_updates_total{result="accepted"} 1'); i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 50));
    text = await (await fetch(url)).text();
  }
  const update = coord.updates()[0]!;
  assert.equal(value(text, 'fedmeta_agent_episodes_total'), update.counts.episodes);
  assert.equal(value(text, 'fedmeta_agent_examples_total'), update.counts.examples);
  assert.equal(value(text, 'fedmeta_agent_inner_loop_seconds_count'), 1);
  assert.ok(value(text, 'fedmeta_agent_inner_loop_seconds_sum') > 0);
  assert.equal(value(text, 'fedmeta_agent_updates_total{result="accepted"}'), 1);
  assert.equal(value(text, 'fedmeta_agent_updates_total{result="rejected"}'), 0);
  assert.equal(value(text, 'fedmeta_agent_connected'), 1);
  assert.ok(text.includes('process_cpu_user_seconds_total'));
  assert.ok(!text.includes('branch-1'), 'no site name or address in the metrics');
});

test('--metrics-port and --metrics-host are options of run and detect, not configuration keys', async () => {
  const run = (await parser(['run', '--metrics-port', '9464', '--metrics-host', '0.0.0.0']).parseAsync()) as Record<string, unknown>;
  assert.equal(run['metricsPort'], 9464);
  assert.equal(run['metricsHost'], '0.0.0.0');
  const detect = (await parser(['detect', '--shots', 's.csv', '--input', '-', '--metrics-port', '9465', '--alerts-to', 'syslog://127.0.0.1:514', '--follow']).parseAsync()) as Record<string, unknown>;
  assert.equal(detect['metricsPort'], 9465);
  assert.equal(detect['alertsTo'], 'syslog://127.0.0.1:514');
  assert.equal(detect['follow'], true);
});
