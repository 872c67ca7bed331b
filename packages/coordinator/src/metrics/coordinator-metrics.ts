import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ErrorCode } from '@fedmeta/shared';
import type { EngineEvents } from '../engine/events.js';
import type { EngineStatus } from '../engine/types.js';
import type { Checkpoint, RoundRecord } from '../state/types.js';
import { privacyView } from './privacy.js';

/**
 * The coordinator's Prometheus metrics. Counters follow the round engine's events, so they count what happened
 * since this process started (Prometheus' rate() handles the reset at a restart); gauges are read from the
 * engine and the hub when scraped, so they are never stale. No metric carries a site name or anything else
 * that grows with the federation: the only label values are round outcomes and error codes.
 */
export interface MetricsEngine {
  on<K extends keyof EngineEvents>(event: K, listener: (...args: EngineEvents[K]) => void): unknown;
  off<K extends keyof EngineEvents>(event: K, listener: (...args: EngineEvents[K]) => void): unknown;
  status(): EngineStatus;
  checkpoint(): Checkpoint | null;
}

/** One engine.io connection: each packet in or out, whatever socket.io event it carries. */
export interface PacketSocket {
  on(event: 'packet' | 'packetCreate', listener: (packet: { data?: unknown }) => void): unknown;
}

/** socket.io's engine (`io.engine`): connections are followed to count the bytes they carry. */
export interface PacketServer {
  on(event: 'connection', listener: (socket: PacketSocket) => void): unknown;
  off(event: 'connection', listener: (socket: PacketSocket) => void): unknown;
}

export interface CoordinatorMetricsOptions {
  engine: MetricsEngine;
  /** Names of the sites connected now. */
  online: () => readonly string[];
  transport?: PacketServer;
  /** Add Node's process metrics (CPU, memory, event-loop lag, GC); default true. */
  processMetrics?: boolean;
}

export interface CoordinatorMetrics {
  readonly registry: Registry;
  /** The exposition text, as GET /metrics serves it. */
  render(): Promise<string>;
  readonly contentType: string;
  /** Stops following the engine and the transport. */
  close(): void;
}

/** A commit, with the engine's timings when it reports them (aggregation and optimizer step, durable write). */
type CommittedEvent = EngineEvents['round-committed'][0] & { timings?: { aggregateMs: number; commitMs: number } };

/** Codes an update can be refused with; each starts at zero so that a dashboard's rate() has a series to read. */
const REJECTION_CODES: readonly ErrorCode[] = [
  ErrorCode.STALE_ROUND,
  ErrorCode.DUPLICATE_UPDATE,
  ErrorCode.WRONG_LENGTH,
  ErrorCode.NON_FINITE,
  ErrorCode.OVERSIZE,
  ErrorCode.DECODE,
  ErrorCode.SCHEMA,
  ErrorCode.CHUNK,
  ErrorCode.RATE_LIMITED,
  ErrorCode.NOT_READY,
];

const ROUND_BUCKETS = [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
const FAST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function byteLength(data: unknown): number {
  if (typeof data === 'string') return Buffer.byteLength(data);
  if (data instanceof ArrayBuffer) return data.byteLength;
  if (ArrayBuffer.isView(data)) return data.byteLength;
  return 0;
}

function durationSeconds(r: RoundRecord): number | null {
  const ms = Date.parse(r.endedAt) - Date.parse(r.startedAt);
  return Number.isFinite(ms) && ms >= 0 ? ms / 1000 : null;
}

export function createCoordinatorMetrics(opts: CoordinatorMetricsOptions): CoordinatorMetrics {
  const registry = new Registry();
  const registers = [registry];
  const { engine } = opts;

  const committed = new Counter({ name: 'fedmeta_rounds_committed_total', help: 'Rounds that committed a new version.', registers });
  const aborted = new Counter({ name: 'fedmeta_rounds_aborted_total', help: 'Round attempts aborted (no quorum by the deadline, failed aggregation); each is re-issued.', registers });
  const duration = new Histogram({
    name: 'fedmeta_round_duration_seconds',
    help: 'From the start of a round attempt (including the wait for sites) to its commit or abort.',
    labelNames: ['status'],
    buckets: ROUND_BUCKETS,
    registers,
  });
  const accepted = new Counter({ name: 'fedmeta_updates_accepted_total', help: 'Site updates accepted into a round.', registers });
  const rejected = new Counter({
    name: 'fedmeta_updates_rejected_total',
    help: 'Site messages refused, by error code (stale, duplicate, wrong length, non-finite, oversize, undecodable, rate-limited).',
    labelNames: ['code'],
    registers,
  });
  for (const code of REJECTION_CODES) rejected.inc({ code }, 0);
  const examples = new Counter({ name: 'fedmeta_update_examples_total', help: 'Training examples reported by the accepted updates.', registers });
  const received = new Counter({ name: 'fedmeta_received_bytes_total', help: 'Bytes received from sites over socket.io (all packets, before decoding).', registers });
  const sent = new Counter({ name: 'fedmeta_sent_bytes_total', help: 'Bytes sent to sites over socket.io (offers, releases, acknowledgements).', registers });
  const aggregation = new Histogram({
    name: 'fedmeta_aggregation_seconds',
    help: 'Aggregation of a round\'s updates with the outer optimizer step.',
    buckets: FAST_BUCKETS,
    registers,
  });
  const commit = new Histogram({ name: 'fedmeta_commit_seconds', help: 'Durable write of a new checkpoint.', buckets: FAST_BUCKETS, registers });
  const releases = new Counter({ name: 'fedmeta_releases_total', help: 'Release changes (release or rollback).', registers });
  const queryLoss = new Gauge({ name: 'fedmeta_round_mean_query_loss', help: 'Mean query loss of the last committed round, weighted by examples.', registers });
  const valF1 = new Gauge({ name: 'fedmeta_round_mean_val_f1', help: 'Mean validation F1 the sites reported in the last committed round.', registers });

  new Gauge({
    name: 'fedmeta_sites_connected',
    help: 'Sites connected now.',
    registers,
    collect() {
      this.set(opts.online().length);
    },
  });
  new Gauge({
    name: 'fedmeta_model_version',
    help: 'Latest committed version of the meta-parameters.',
    registers,
    collect() {
      this.set(engine.status().version ?? 0);
    },
  });
  new Gauge({
    name: 'fedmeta_released_version',
    help: 'Version the sites use for detection; -1 before the first release.',
    registers,
    collect() {
      this.set(engine.status().released ?? -1);
    },
  });
  new Gauge({
    name: 'fedmeta_round_in_flight',
    help: '1 while a round is open, else 0.',
    registers,
    collect() {
      this.set(engine.status().roundInFlight ? 1 : 0);
    },
  });
  new Gauge({
    name: 'fedmeta_privacy_epsilon_spent',
    help: 'Differential-privacy budget spent so far (epsilon at the configured delta); 0 without differential privacy.',
    registers,
    collect() {
      this.set(privacyView(engine.checkpoint()).epsilonSpent);
    },
  });
  new Gauge({
    name: 'fedmeta_privacy_epsilon_budget',
    help: 'Configured differential-privacy budget (epsilon); 0 when none is configured.',
    registers,
    collect() {
      this.set(privacyView(engine.checkpoint()).epsilonBudget ?? 0);
    },
  });
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry });

  const onCommitted = (e: CommittedEvent): void => {
    committed.inc();
    const s = durationSeconds(e.record);
    if (s !== null) duration.observe({ status: 'committed' }, s);
    if (e.timings) {
      aggregation.observe(e.timings.aggregateMs / 1000);
      commit.observe(e.timings.commitMs / 1000);
    }
    if (e.record.meanQueryLoss !== undefined) queryLoss.set(e.record.meanQueryLoss);
    if (e.record.meanValF1 !== undefined) valF1.set(e.record.meanValF1);
  };
  const onAborted = (e: EngineEvents['round-aborted'][0]): void => {
    aborted.inc();
    const s = durationSeconds(e.record);
    if (s !== null) duration.observe({ status: 'aborted' }, s);
  };
  const onAccepted = (e: EngineEvents['update-accepted'][0]): void => {
    accepted.inc();
    examples.inc(Math.max(0, e.examples));
  };
  const onRejected = (e: EngineEvents['update-rejected'][0]): void => rejected.inc({ code: e.code });
  const onReleased = (): void => releases.inc();
  engine.on('round-committed', onCommitted);
  engine.on('round-aborted', onAborted);
  engine.on('update-accepted', onAccepted);
  engine.on('update-rejected', onRejected);
  engine.on('released', onReleased);

  const onConnection = (socket: PacketSocket): void => {
    socket.on('packet', (p) => received.inc(byteLength(p.data)));
    socket.on('packetCreate', (p) => sent.inc(byteLength(p.data)));
  };
  opts.transport?.on('connection', onConnection);

  let closed = false;
  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    close: () => {
      if (closed) return;
      closed = true;
      engine.off('round-committed', onCommitted);
      engine.off('round-aborted', onAborted);
      engine.off('update-accepted', onAccepted);
      engine.off('update-rejected', onRejected);
      engine.off('released', onReleased);
      opts.transport?.off('connection', onConnection);
    },
  };
}
