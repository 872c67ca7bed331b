import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { FlaggedFlow, EcsAlert } from '../src/alerts/ecs.js';
import { openAlertSink, parseAlertTarget } from '../src/alerts/sinks.js';
import { formatSyslog, parseSyslogUrl } from '../src/alerts/syslog.js';
import { captureLogger, waitFor } from './fixtures.js';

/** RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA SP MSG */
const RFC5424 = /^<(\d{1,3})>1 (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z) ([\x21-\x7e]{1,255}) ([\x21-\x7e]{1,48}) ([\x21-\x7e]{1,128}) ([\x21-\x7e]{1,32}) (-|\[.*?\]) (.*)$/s;

function parse(message: string): { pri: number; host: string; app: string; msgid: string; alert: EcsAlert } {
  const m = RFC5424.exec(message);
  assert.ok(m, `an RFC 5424 message: ${message.slice(0, 80)}`);
  return { pri: Number(m[1]), host: m[3]!, app: m[4]!, msgid: m[6]!, alert: JSON.parse(m[8]!) as EcsAlert };
}

const flow = (score: number, row: number): FlaggedFlow => ({
  score,
  threshold: 0.5,
  modelVersion: 3,
  row,
  ids: { 'Src IP': '10.1.2.3', 'Src Port': '40000', 'Dst IP': '10.9.9.9', 'Dst Port': '22', Protocol: '6' },
});
const ecs = { site: 'branch-oslo', agentVersion: '1.2.3', hostname: 'ids host 1' };

test('a syslog line is RFC 5424 with the ECS document as its message and the priority from the severity', () => {
  const sink = formatSyslog(
    { '@timestamp': '2024-05-01T10:00:00.123Z', event: { severity: 99 } } as EcsAlert,
    { hostname: 'ids host 1' },
  );
  const m = parse(sink);
  assert.equal(m.pri, 16 * 8 + 2, 'local0.crit for a critical alert');
  assert.equal(m.host, 'idshost1', 'the host name is cut to printable characters');
  assert.equal(m.app, 'fedmeta-agent');
  assert.equal(m.msgid, 'alert');
  assert.equal(parse(formatSyslog({ '@timestamp': '2024-05-01T10:00:00Z', event: { severity: 21 } } as EcsAlert, { facility: 4 })).pri, 4 * 8 + 5);
  assert.deepEqual(parseSyslogUrl('syslog://127.0.0.1'), { transport: 'udp', host: '127.0.0.1', port: 514 });
  assert.deepEqual(parseSyslogUrl('syslog+tcp://[::1]:6514'), { transport: 'tcp', host: '::1', port: 6514 });
});

test('alerts reach a syslog server over UDP, one datagram each', async (t) => {
  const server = createSocket('udp4');
  const got: string[] = [];
  server.on('message', (m) => got.push(m.toString('utf8')));
  await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
  t.after(() => server.close());
  const { port } = server.address();
  const sink = openAlertSink(parseAlertTarget(`syslog://127.0.0.1:${port}`), { ecs, logger: captureLogger().logger });
  assert.equal(sink.describe, `syslog udp 127.0.0.1:${port}`);
  await sink.write([flow(0.995, 1), flow(0.8, 2), flow(0.6, 3)]);
  await waitFor(() => got.length === 3, 4000, 'three datagrams');
  await sink.close();
  const parsed = got.map(parse).sort((a, b) => a.alert.fedmeta.input.row - b.alert.fedmeta.input.row);
  assert.deepEqual(parsed.map((p) => p.pri), [130, 132, 133]);
  assert.deepEqual(parsed.map((p) => p.alert.source), [1, 2, 3].map(() => ({ ip: '10.1.2.3', port: 40000 })));
  assert.equal(parsed[0]!.alert.observer.name, 'branch-oslo');
  assert.equal(parsed[0]!.alert.network?.transport, 'tcp');
  assert.equal(sink.count, 3);
});

function tcpCollector(): { server: Server; messages: string[]; sockets: Socket[] } {
  const messages: string[] = [];
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      // Octet counting (RFC 6587): "<length> <message>", back to back.
      for (;;) {
        const sp = buf.indexOf(0x20);
        if (sp < 0) return;
        const len = Number(buf.subarray(0, sp).toString());
        if (!Number.isInteger(len)) {
          messages.push('(a frame without its length)');
          s.destroy();
          return;
        }
        if (buf.length < sp + 1 + len) return;
        messages.push(buf.subarray(sp + 1, sp + 1 + len).toString('utf8'));
        buf = buf.subarray(sp + 1 + len);
      }
    });
  });
  return { server, messages, sockets };
}

test('over TCP alerts are framed by octet counting, wait in a queue while the server is down, and arrive once it is up', async (t) => {
  // A port that nothing listens on yet.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));

  const log = captureLogger();
  const sink = openAlertSink(parseAlertTarget(`syslog+tcp://127.0.0.1:${port}`), { ecs, logger: log.logger });
  t.after(() => sink.close());
  await sink.write([flow(0.9, 1), flow(0.91, 2)]);
  await waitFor(() => log.text().includes('cannot be reached'), 4000, 'the refused connection to be logged');

  const c = tcpCollector();
  await new Promise<void>((r) => c.server.listen(port, '127.0.0.1', r));
  t.after(() => {
    for (const s of c.sockets) s.destroy();
    return new Promise<void>((r) => c.server.close(() => r()));
  });
  await waitFor(() => c.messages.length === 2, 8000, 'the queued alerts after reconnecting');
  await sink.write([flow(0.92, 3)]);
  await waitFor(() => c.messages.length === 3, 4000, 'a third alert');

  // The server drops the connection: the next alerts arrive over a new one.
  for (const s of c.sockets) s.destroy();
  await waitFor(() => c.sockets.length === 2, 8000, 'reconnection');
  await sink.write([flow(0.93, 4)]);
  await waitFor(() => c.messages.length === 4, 8000, 'an alert after the server dropped the connection');
  await sink.close();
  assert.deepEqual(c.messages.map((m) => parse(m).alert.fedmeta.input.row), [1, 2, 3, 4]);
  assert.ok(c.messages.every((m) => parse(m).alert.event.kind === 'alert'));
});
