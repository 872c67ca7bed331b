import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { builtinSchema, initRuntime } from '@fedmeta/shared';
import { contextColumns, toEcs } from '../src/alerts/ecs.js';
import type { EcsAlert } from '../src/alerts/ecs.js';
import { openAlertSink, parseAlertTarget } from '../src/alerts/sinks.js';
import { runDetect } from '../src/detect.js';
import type { ModelFile } from '../src/model-file.js';
import { ADAPT, detectModel, schema, shotsFile } from './alerts-fixtures.js';
import { captureLogger, csv, rowsOf, tempDir, writeText } from './fixtures.js';

const ctx = { site: 'branch-lyon', agentVersion: '9.9.9', now: () => new Date('2024-05-01T10:00:00.000Z') };
let model: ModelFile;
let dir: string;

before(async () => {
  await initRuntime();
  dir = tempDir({ after: () => undefined });
  model = await detectModel(dir);
});

test('a CICFlowMeter flow maps onto ECS source, destination and network fields; the rest stays under fedmeta', () => {
  const a = toEcs(
    {
      score: 0.9912345678,
      threshold: 0.42,
      modelVersion: 6,
      row: 17,
      ids: {
        id: '307514',
        'Flow ID': '192.168.10.5-192.168.10.3-58181-53-17',
        'Src IP': '192.168.10.5',
        'Src Port': '58181',
        'Dst IP': '192.168.10.3',
        'Dst Port': '53',
        Timestamp: '2017-07-06 12:39:06.818901',
        Protocol: '17',
      },
    },
    ctx,
  );
  assert.equal(a['@timestamp'], '2024-05-01T10:00:00.000Z');
  assert.equal(a.event.kind, 'alert');
  assert.equal(a.event.module, 'fedmeta');
  assert.deepEqual(a.event.category, ['network', 'intrusion_detection']);
  assert.equal(a.event.severity, 99);
  assert.equal(a.event.risk_score, 99.12);
  assert.match(a.event.id, /^[0-9a-f-]{36}$/);
  assert.equal(a.event.start, undefined, 'a time without a zone is not guessed at');
  assert.deepEqual(a.source, { ip: '192.168.10.5', port: 58181 });
  assert.deepEqual(a.destination, { ip: '192.168.10.3', port: 53 });
  assert.deepEqual(a.network, { transport: 'udp', iana_number: '17' });
  assert.equal(a.rule.name, 'fedmeta attack detector');
  assert.equal(a.rule.version, '6');
  assert.equal(a.observer.name, 'branch-lyon');
  assert.equal(a.observer.version, '9.9.9');
  assert.deepEqual(a.fedmeta, {
    score: 0.991235,
    threshold: 0.42,
    model: { version: 6 },
    input: { row: 17 },
    flow: { id: '192.168.10.5-192.168.10.3-58181-53-17', timestamp: '2017-07-06 12:39:06.818901' },
    ids: { id: '307514' },
  });
  assert.equal(a.message, 'fedmeta attack detector: flow from 192.168.10.5:58181 to 192.168.10.3:53 scored 0.991235 (threshold 0.42, model v6)');
});

test('NetFlow and other exports map too; unusable values stay as they were, and severity follows the score', () => {
  const nf = toEcs({ score: 0.75, threshold: 0.5, modelVersion: 2, row: 1, ids: { IPV4_SRC_ADDR: '10.0.0.1', L4_SRC_PORT: '443', IPV4_DST_ADDR: 'fe80::1', L4_DST_PORT: '70000', PROTOCOL: '6' } }, ctx);
  assert.deepEqual(nf.source, { ip: '10.0.0.1', port: 443 });
  assert.deepEqual(nf.destination, { ip: 'fe80::1' });
  assert.deepEqual(nf.network, { transport: 'tcp', iana_number: '6' });
  assert.deepEqual(nf.fedmeta.ids, { L4_DST_PORT: '70000' }, 'an impossible port is not passed off as one');
  assert.equal(nf.event.severity, 47);

  const zeek = toEcs({ score: 0.6, threshold: 0.5, modelVersion: 2, row: 2, ids: { srcip: 'not-an-ip', sport: '5', dstip: '8.8.8.8', dsport: '53', proto: 'udp', stime: '1424242193' } }, ctx);
  assert.equal(zeek.source?.ip, undefined);
  assert.equal(zeek.source?.port, 5);
  assert.deepEqual(zeek.network, { transport: 'udp', iana_number: '17' });
  assert.equal(zeek.event.start, '2015-02-18T06:49:53.000Z', 'epoch seconds become event.start');
  assert.equal(zeek.fedmeta.ids?.['srcip'], 'not-an-ip');
  assert.equal(zeek.event.severity, 21);
  assert.equal(toEcs({ score: 0.95, threshold: 0.5, modelVersion: 2, row: 3, ids: {} }, ctx).event.severity, 73);
  assert.equal(toEcs({ score: 0.95, threshold: 0.5, modelVersion: 2, row: 3, ids: {} }, ctx).source, undefined);

  // The protocol is a feature in the built-in schemas: detect reads it beside the ids for network.transport.
  assert.deepEqual(contextColumns(builtinSchema('cicflowmeter')), ['Protocol']);
  assert.deepEqual(contextColumns(builtinSchema('netflow-v2')), ['PROTOCOL']);
  assert.deepEqual(contextColumns(builtinSchema('unsw-nb15')), ['proto']);
});

test('--alerts-to targets are checked before anything runs', () => {
  assert.deepEqual(parseAlertTarget('stdout'), { kind: 'stdout' });
  assert.deepEqual(parseAlertTarget('file:alerts.json', '/var/log'), { kind: 'file', path: '/var/log/alerts.json' });
  assert.deepEqual(parseAlertTarget('file:///tmp/a.json'), { kind: 'file', path: '/tmp/a.json' });
  assert.deepEqual(parseAlertTarget('syslog+tcp://[::1]:6514'), { kind: 'syslog', url: 'syslog+tcp://[::1]:6514' });
  for (const bad of ['elastic://x', 'file:', 'syslog://host:99999', 'syslog://']) {
    assert.throws(() => parseAlertTarget(bad), /--alerts-to/, bad);
  }
});

test('detect writes one ECS document per flagged flow to an alerts file, with the addresses and protocol of that very row', async (t) => {
  const rows = [...rowsOf('BENIGN', 40, 30), ...rowsOf('DoS Hulk', 40, 30)];
  const input = writeText(dir, 'input.csv', csv(rows));
  const shots = shotsFile(dir);
  const file = join(tempDir(t), 'alerts.json');
  const log = captureLogger();
  const sink = openAlertSink(parseAlertTarget(`file:${file}`), { ecs: { site: 'branch-lyon', agentVersion: '1.0.0' }, logger: log.logger });
  const summary = await runDetect({ model, shots, input, output: process.stdout, alerts: sink, schema, watch: false, logger: log.logger, ...ADAPT });
  await sink.close();
  const alerts = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as EcsAlert);
  assert.equal(alerts.length, summary.flagged);
  assert.equal(sink.count, summary.flagged);
  assert.ok(alerts.length >= 32, `attacks are flagged (${alerts.length})`);
  const header = csv([]).split('\n')[0]!.split(',');
  const col = (name: string): number => header.indexOf(name);
  for (const a of alerts) {
    const fields = rows[a.fedmeta.input.row - 1]!.split(',');
    assert.equal(a.source?.ip, fields[col('Src IP')]);
    assert.equal(a.source?.port, Number(fields[col('Src Port')]));
    assert.equal(a.destination?.ip, fields[col('Dst IP')]);
    assert.equal(a.destination?.port, Number(fields[col('Dst Port')]));
    assert.equal(a.network?.iana_number, fields[col('Protocol')]);
    assert.equal(a.event.kind, 'alert');
    assert.equal(a.observer.name, 'branch-lyon');
    assert.equal(a.fedmeta.model.version, 6);
    assert.ok(a.fedmeta.score >= a.fedmeta.threshold);
    assert.equal(a.fedmeta.ids?.['Protocol'], undefined, 'the protocol went to network.*');
  }
  assert.ok(alerts.filter((a) => rows[a.fedmeta.input.row - 1]!.includes(',DoS Hulk,')).length > alerts.length / 2, 'most alerts are attacks');
});
