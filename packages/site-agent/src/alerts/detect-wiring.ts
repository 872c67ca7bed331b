import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '@fedmeta/shared';
import { createAgentMetrics } from '../agent-metrics/agent-metrics.js';
import { startMetricsServer } from '../agent-metrics/server.js';
import type { MetricsServer } from '../agent-metrics/server.js';
import { followFile } from '../follow/tail-file.js';
import { AGENT_VERSION } from '../version.js';
import { openAlertSink, parseAlertTarget } from './sinks.js';
import type { AlertSink } from './sinks.js';

/**
 * What `fedmeta-agent detect` sets up around the detector: the alert destination, the input (a file read once,
 * a file followed as it grows, or stdin), the optional metrics listener, and the signals an operator sends
 * (SIGINT/SIGTERM end a followed input cleanly, with the summary; SIGHUP reopens an alerts file after rotation).
 */
export interface DetectIo {
  alerts: AlertSink;
  input: string | Readable;
  /** Set for live input, so that a trickle of flows is scored without waiting for a full batch. */
  idleFlushMs?: number;
  onBatch: (b: { scored: number; flagged: number; seconds: number; modelVersion: number }) => void;
  /** Ends a followed input (what SIGINT and SIGTERM do): what has been read is scored, then detection ends. */
  stop(): void;
  /** Closes the alert destination and the metrics listener, and removes the signal handlers. */
  close(): Promise<void>;
}

export interface DetectIoOptions {
  /** --input: a path, or "-" for stdin. */
  input: string;
  follow: boolean;
  /** --alerts-to (default stdout). */
  alertsTo: string;
  /** observer.name of the alerts: the site. */
  site: string;
  metricsPort?: number;
  metricsHost?: string;
  logger: Logger;
  stdin?: Readable;
  stdout?: Writable;
  /** Process signals are handled unless false (tests). */
  signals?: boolean;
  /** Delay before a partial batch of live input is scored (default 200 ms). */
  idleFlushMs?: number;
}

export async function openDetectIo(o: DetectIoOptions): Promise<DetectIo> {
  const log = o.logger;
  const target = parseAlertTarget(o.alertsTo);
  const metrics = createAgentMetrics();
  let server: MetricsServer | undefined;
  if (o.metricsPort !== undefined) {
    server = await startMetricsServer({ metrics, port: o.metricsPort, ...(o.metricsHost !== undefined ? { host: o.metricsHost } : {}), logger: log });
  }
  const alerts = openAlertSink(target, {
    ecs: { site: o.site, agentVersion: AGENT_VERSION, hostname: hostname() },
    ...(o.stdout !== undefined ? { stdout: o.stdout } : {}),
    logger: log,
  });
  const stop = new AbortController();
  const live = o.follow || o.input === '-';
  let input: string | Readable;
  if (o.input === '-') input = o.stdin ?? process.stdin;
  else if (o.follow) input = followFile(resolve(o.input), { signal: stop.signal });
  else input = resolve(o.input);

  const onStop = (signal: NodeJS.Signals): void => {
    log.info({ signal }, 'stopping: scoring what has been read, then exiting');
    stop.abort();
  };
  const onHup = (): void => {
    log.info('reopening the alerts destination');
    alerts.reopen();
  };
  const handleSignals = o.signals !== false;
  if (handleSignals) {
    if (o.follow) {
      process.on('SIGINT', onStop);
      process.on('SIGTERM', onStop);
    }
    process.on('SIGHUP', onHup);
  }
  log.info({ alerts: alerts.describe, follow: o.follow, metrics: server?.url ?? null }, 'detect: alerts are written as ECS JSON');
  return {
    alerts,
    input,
    ...(live ? { idleFlushMs: o.idleFlushMs ?? 200 } : {}),
    onBatch: (b) => metrics.batchScored(b),
    stop: () => stop.abort(),
    close: async () => {
      stop.abort();
      if (handleSignals) {
        process.off('SIGINT', onStop);
        process.off('SIGTERM', onStop);
        process.off('SIGHUP', onHup);
      }
      await alerts.close();
      await server?.close();
    },
  };
}
