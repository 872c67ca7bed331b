import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { hostname } from 'node:os';
import { connect } from 'node:net';
import type { Socket as TcpSocket } from 'node:net';
import type { Logger } from '@fedmeta/shared';
import type { EcsAlert } from './ecs.js';

/**
 * Alerts to a syslog server as RFC 5424 messages whose MSG is the ECS JSON document: over UDP (RFC 5426, one
 * alert per datagram) or TCP (RFC 6587 octet counting: "<length> <message>"). A TCP server that is down or goes
 * away is reconnected to with backoff; meanwhile alerts wait in a bounded queue, and the oldest are dropped
 * (and counted in the log) rather than stopping detection.
 */
export interface SyslogTarget {
  transport: 'udp' | 'tcp';
  host: string;
  port: number;
}

export interface SyslogOptions {
  /** Facility number (default 16, local0). */
  facility?: number;
  appName?: string;
  hostname?: string;
  /** Messages kept while a TCP server is unreachable (default 10000). */
  maxQueue?: number;
  logger: Logger;
}

/** syslog severity from the ECS one: critical 2, error 3, warning 4, notice 5. */
export function syslogSeverity(ecsSeverity: number): number {
  if (ecsSeverity >= 99) return 2;
  if (ecsSeverity >= 73) return 3;
  if (ecsSeverity >= 47) return 4;
  return 5;
}

/** PRINTUSASCII without spaces, at most `max` characters; "-" (the NILVALUE) when nothing is left. */
function field(s: string, max: number): string {
  const clean = s.replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return clean === '' ? '-' : clean;
}

/** One RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`. */
export function formatSyslog(alert: EcsAlert, opts: { facility?: number; appName?: string; hostname?: string } = {}): string {
  const pri = (opts.facility ?? 16) * 8 + syslogSeverity(alert.event.severity);
  const host = field(opts.hostname ?? hostname(), 255);
  return `<${pri}>1 ${alert['@timestamp']} ${host} ${field(opts.appName ?? 'fedmeta-agent', 48)} ${process.pid} alert - ${JSON.stringify(alert)}`;
}

export function parseSyslogUrl(url: string): SyslogTarget {
  const m = /^syslog(?:\+(udp|tcp))?:\/\/(\[[0-9a-fA-F:.]+\]|[^:/[\]]+)(?::(\d{1,5}))?\/?$/.exec(url);
  if (!m) throw new Error('expected syslog://host:port (UDP), syslog+udp://host:port or syslog+tcp://host:port');
  const port = m[3] === undefined ? 514 : Number(m[3]);
  if (port < 1 || port > 65535) throw new Error('the syslog port must be from 1 to 65535');
  return { transport: m[1] === 'tcp' ? 'tcp' : 'udp', host: m[2]!.replace(/^\[|\]$/g, ''), port };
}

export interface SyslogSender {
  send(alerts: readonly EcsAlert[]): Promise<void>;
  close(): Promise<void>;
}

export function createSyslogSender(target: SyslogTarget, opts: SyslogOptions): SyslogSender {
  const format = (a: EcsAlert): string => formatSyslog(a, opts);
  return target.transport === 'udp' ? udpSender(target, format, opts.logger) : tcpSender(target, format, opts);
}

function udpSender(target: SyslogTarget, format: (a: EcsAlert) => string, log: Logger): SyslogSender {
  const socket: UdpSocket = createSocket(target.host.includes(':') ? 'udp6' : 'udp4');
  let failures = 0;
  socket.on('error', (e: NodeJS.ErrnoException) => {
    failures++;
    if ((failures & (failures - 1)) === 0) log.warn({ code: e.code, failures }, 'syslog over UDP: sending failed; alerts are being lost');
  });
  const sendOne = (text: string): Promise<void> =>
    new Promise((resolve) => {
      socket.send(text, target.port, target.host, (e) => {
        if (e) {
          failures++;
          if ((failures & (failures - 1)) === 0) log.warn({ code: (e as NodeJS.ErrnoException).code, failures }, 'syslog over UDP: an alert could not be sent');
        }
        resolve();
      });
    });
  return {
    send: async (alerts) => {
      for (const a of alerts) await sendOne(format(a));
    },
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}

function tcpSender(target: SyslogTarget, format: (a: EcsAlert) => string, opts: SyslogOptions): SyslogSender {
  const log = opts.logger;
  const maxQueue = opts.maxQueue ?? 10_000;
  const queue: Buffer[] = [];
  let socket: TcpSocket | null = null;
  let connected = false;
  let closing = false;
  let retries = 0;
  let dropped = 0;
  let timer: NodeJS.Timeout | undefined;
  let drained: (() => void) | null = null;

  const flush = (): void => {
    while (connected && socket !== null && queue.length > 0) {
      const ok = socket.write(queue.shift()!);
      if (!ok) return;
    }
    if (queue.length === 0) {
      drained?.();
      drained = null;
    }
  };
  const open = (): void => {
    if (closing) return;
    const s = connect({ host: target.host, port: target.port });
    socket = s;
    s.setNoDelay(true);
    s.on('connect', () => {
      connected = true;
      if (retries > 0) log.info({ dropped }, 'syslog over TCP: connected again');
      retries = 0;
      flush();
    });
    s.on('drain', flush);
    s.on('error', (e: NodeJS.ErrnoException) => {
      if ((retries & (retries - 1)) === 0) log.warn({ code: e.code, retries }, 'syslog over TCP: the server cannot be reached; alerts are queued and the agent reconnects');
    });
    s.on('close', () => {
      connected = false;
      if (socket === s) socket = null;
      if (closing) return;
      const delay = Math.min(30_000, 250 * 2 ** Math.min(retries, 7));
      retries++;
      timer = setTimeout(open, delay);
    });
  };
  open();

  return {
    send: async (alerts) => {
      for (const a of alerts) {
        const body = Buffer.from(format(a), 'utf8');
        queue.push(Buffer.concat([Buffer.from(`${body.length} `), body]));
      }
      if (queue.length > maxQueue) {
        const n = queue.length - maxQueue;
        queue.splice(0, n);
        dropped += n;
        log.warn({ dropped: n, total: dropped }, 'syslog over TCP: the queue is full; the oldest alerts were dropped');
      }
      flush();
    },
    close: async () => {
      // Give queued alerts a moment to leave, then close whatever state the connection is in.
      if (queue.length > 0 && connected) {
        await Promise.race([new Promise<void>((r) => (drained = r)), new Promise<void>((r) => setTimeout(r, 2000).unref())]);
      }
      closing = true;
      clearTimeout(timer);
      const s = socket;
      if (s === null) return;
      await new Promise<void>((resolve) => {
        s.once('close', () => resolve());
        s.end();
        setTimeout(() => s.destroy(), 1000).unref();
      });
      if (queue.length > 0) log.warn({ lost: queue.length }, 'syslog over TCP: alerts still queued at shutdown were not delivered');
    },
  };
}
