import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { once } from 'node:events';
import { resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { Logger } from '@fedmeta/shared';
import { toEcs } from './ecs.js';
import type { EcsContext, FlaggedFlow } from './ecs.js';
import { createSyslogSender, parseSyslogUrl } from './syslog.js';
import type { SyslogSender } from './syslog.js';

/**
 * Where `detect` sends its alerts (`--alerts-to`): `stdout` (the default), `file:<path>` (appended, one JSON
 * line per alert; SIGHUP reopens it after log rotation), or a syslog server (`syslog://host:port` over UDP,
 * `syslog+tcp://host:port`). Every destination gets the same ECS documents.
 */
export interface AlertSink {
  /** Sends one batch of flagged flows; resolves when the destination can take more. */
  write(flows: readonly FlaggedFlow[]): Promise<void>;
  /** Reopens a file destination (after rotation); a no-op elsewhere. */
  reopen(): void;
  close(): Promise<void>;
  /** Alerts written so far. */
  readonly count: number;
  /** What the destination is, for logs: "stdout", "file <path>", "syslog udp host:port". */
  readonly describe: string;
}

export type AlertTarget = { kind: 'stdout' } | { kind: 'file'; path: string } | { kind: 'syslog'; url: string };

export function parseAlertTarget(spec: string, cwd = process.cwd()): AlertTarget {
  const s = spec.trim();
  if (s === 'stdout' || s === '-') return { kind: 'stdout' };
  if (s.startsWith('file:')) {
    const path = s.slice('file:'.length).replace(/^\/\/(?=\/)/, '');
    if (path === '') throw new FedmetaError(ErrorCode.CONFIG, '--alerts-to file: needs a path, e.g. file:/var/log/fedmeta/alerts.json');
    return { kind: 'file', path: resolve(cwd, path) };
  }
  if (/^syslog(\+(udp|tcp))?:\/\//.test(s)) {
    try {
      parseSyslogUrl(s);
    } catch (e) {
      throw new FedmetaError(ErrorCode.CONFIG, `--alerts-to: ${(e as Error).message}`);
    }
    return { kind: 'syslog', url: s };
  }
  throw new FedmetaError(ErrorCode.CONFIG, '--alerts-to takes stdout, file:<path>, syslog://host:port (UDP) or syslog+tcp://host:port');
}

export interface OpenSinkOptions {
  ecs: EcsContext;
  /** Where `stdout` writes (default process.stdout). */
  stdout?: Writable;
  logger: Logger;
}

async function writeLines(out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

function streamSink(describe: string, open: () => Writable, ecs: EcsContext, canReopen: boolean): AlertSink {
  let out = open();
  let count = 0;
  return {
    get count() {
      return count;
    },
    describe,
    write: async (flows) => {
      if (flows.length === 0) return;
      let text = '';
      for (const f of flows) text += `${JSON.stringify(toEcs(f, ecs))}\n`;
      count += flows.length;
      await writeLines(out, text);
    },
    reopen: () => {
      if (!canReopen) return;
      const old = out;
      out = open();
      old.end();
    },
    close: async () => {
      if (!canReopen) return;
      const done = once(out, 'close');
      out.end();
      await done;
    },
  };
}

function openFile(path: string, log: Logger): WriteStream {
  const s = createWriteStream(path, { flags: 'a', mode: 0o640 });
  s.on('error', (e: NodeJS.ErrnoException) => log.error({ code: e.code, file: path }, 'cannot write the alerts file; check the path and its permissions'));
  return s;
}

function syslogSink(url: string, opts: OpenSinkOptions): AlertSink {
  const target = parseSyslogUrl(url);
  const sender: SyslogSender = createSyslogSender(target, {
    logger: opts.logger,
    ...(opts.ecs.hostname !== undefined ? { hostname: opts.ecs.hostname } : {}),
  });
  let count = 0;
  return {
    get count() {
      return count;
    },
    describe: `syslog ${target.transport} ${target.host}:${target.port}`,
    write: async (flows) => {
      count += flows.length;
      await sender.send(flows.map((f) => toEcs(f, opts.ecs)));
    },
    reopen: () => undefined,
    close: () => sender.close(),
  };
}

export function openAlertSink(target: AlertTarget, opts: OpenSinkOptions): AlertSink {
  switch (target.kind) {
    case 'stdout':
      return streamSink('stdout', () => opts.stdout ?? process.stdout, opts.ecs, false);
    case 'file':
      return streamSink(`file ${target.path}`, () => openFile(target.path, opts.logger), opts.ecs, true);
    case 'syslog':
      return syslogSink(target.url, opts);
  }
}
