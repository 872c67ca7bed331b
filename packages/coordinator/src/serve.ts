import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  createLogger,
  ErrorCode,
  FedmetaError,
  featureDim,
  initialOptimizerState,
  initParams,
  isFedmetaError,
  resolveSchema,
  schemaFingerprint,
} from '@fedmeta/shared';
import type { Logger, ModelSpec } from '@fedmeta/shared';
import { createAdminBackend } from './admin/backend.js';
import { createAdminHandler } from './admin/admin-api.js';
import { RoundRunner } from './admin/round-runner.js';
import { checkServeConfig, redactConfig } from './config.js';
import type { CoordinatorConfig } from './config.js';
import { RoundEngine } from './engine/round-engine.js';
import type { EngineClock } from './engine/attempt.js';
import type { EngineConfig } from './engine/config.js';
import { FileStateStore } from './state/file-store.js';
import type { StateStore } from './state/store.js';
import type { Checkpoint } from './state/types.js';
import { SocketHub } from './transport/socket-hub.js';
import { attachObservability } from './metrics/attach.js';
import { pausePoint } from './test-hooks.js';
import type { CoordinatorMetrics } from './metrics/coordinator-metrics.js';

/** The fingerprint stored when the federation runs without a feature schema: sites are then not checked. */
export const UNCHECKED_SCHEMA = 'unchecked';

export interface StartCoordinatorOptions {
  logger?: Logger;
  /** Values per chunk of large vectors (default: 1 MiB of float32); tests force small chunks. */
  chunkValues?: number;
  clock?: EngineClock;
}

export interface RunningCoordinator {
  /** Base URL of socket.io and the admin API, with the port actually bound. */
  url: string;
  port: number;
  engine: RoundEngine;
  store: StateStore;
  hub: SocketHub;
  runner: RoundRunner;
  /** Prometheus metrics, served at GET /metrics (admin token). */
  metrics: CoordinatorMetrics;
  /** Stops rounds, closes every connection and the store; resolves once the data directory is released. */
  close(): Promise<void>;
}

export function coordinatorVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * The engine's settings from the coordinator's configuration. The quorum goes as the rule it is: a count, or a
 * fraction the engine applies to the sites each round sampled.
 */
export function engineConfigFrom(config: CoordinatorConfig, seed: number): EngineConfig {
  const r = config.rounds;
  return {
    rounds: {
      sampleFraction: r.sampleFraction,
      minSites: r.minSites,
      quorum: { ...r.quorum },
      deadlineSeconds: r.deadlineSeconds,
      algorithm: r.algorithm,
      innerSteps: r.innerSteps,
      innerLr: r.innerLr,
      shots: r.shots,
      queryShots: r.queryShots,
      episodes: r.episodes,
    },
    aggregator: config.aggregator,
    optimizer: config.optimizer,
    seed,
    privacy: { ...config.privacy.dp },
    secureAggregation: { ...config.privacy.secureAggregation },
  };
}

/** Version 0 of a new federation: the configured model, initialised from the seed, with a fresh optimizer. */
export function initialCheckpoint(config: CoordinatorConfig, inputDim: number, fingerprint: string, seed: number): Checkpoint {
  const spec: ModelSpec = {
    inputDim,
    hidden: [...config.model.hidden],
    activation: config.model.activation,
    task: { ...config.model.task },
  };
  const { manifest, values } = initParams(spec, seed);
  return {
    formatVersion: 1,
    version: 0,
    nextRound: 0,
    spec,
    manifest,
    params: values,
    optimizerConfig: { ...config.optimizer },
    optimizer: initialOptimizerState(config.optimizer.kind, values.length),
    aggregator: { ...config.aggregator },
    rngState: [seed],
    schemaFingerprint: fingerprint,
    history: [],
    released: [],
    createdAt: new Date().toISOString(),
  };
}

async function federationSchema(config: CoordinatorConfig): Promise<{ fingerprint: string | null; inputDim: number | null }> {
  if (!config.schema) return { fingerprint: null, inputDim: config.model.inputDim ?? null };
  const schema = await resolveSchema(config.schema);
  const dim = featureDim(schema);
  if (config.model.inputDim !== undefined && config.model.inputDim !== dim) {
    throw new FedmetaError(
      ErrorCode.CONFIG,
      `model.inputDim is ${config.model.inputDim} but the feature schema gives ${dim} inputs; remove model.inputDim to derive it from the schema`,
    );
  }
  return { fingerprint: schemaFingerprint(schema), inputDim: dim };
}

function listen(server: HttpServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      reject(
        new FedmetaError(
          ErrorCode.CONFIG,
          `cannot listen on ${host}:${port} (${e.code ?? 'error'}); choose another server.port or stop what uses it`,
        ),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function makeServer(config: CoordinatorConfig, handler: (req: IncomingMessage, res: ServerResponse) => void): { server: HttpServer; tls: boolean } {
  const s = config.server;
  if (!s.tlsCert || !s.tlsKey) return { server: createHttpServer(handler), tls: false };
  // Client certificates are requested at the TLS layer and enforced by the site admission middleware, not by
  // the handshake: the admin API and the health probes share this port and authenticate otherwise.
  const server = createHttpsServer(
    {
      cert: readFileSync(s.tlsCert),
      key: readFileSync(s.tlsKey),
      ...(s.tlsCa ? { ca: readFileSync(s.tlsCa) } : {}),
      ...(s.requireClientCert ? { requestCert: true, rejectUnauthorized: false } : {}),
      minVersion: 'TLSv1.2',
    },
    handler,
  );
  return { server: server as unknown as HttpServer, tls: true };
}

/**
 * Starts a coordinator: opens (and restores) the data directory, listens, restores the round engine, and only
 * then admits sites. Rejects with the store's STATE_CORRUPT or STATE_LOCKED error, or CONFIG, without leaving
 * anything open.
 */
export async function startCoordinator(config: CoordinatorConfig, opts: StartCoordinatorOptions = {}): Promise<RunningCoordinator> {
  const log = opts.logger ?? createLogger('coordinator', { level: config.logLevel });
  for (const w of checkServeConfig(config)) log.warn(w);
  const federation = await federationSchema(config);

  const store = new FileStateStore(config.dataDir, { keepCheckpoints: config.keepCheckpoints });
  const report = await store.open();
  if (report.status === 'fell-back') log.warn({ report: { ...report, message: undefined } }, report.message);
  else log.info({ status: report.status, version: report.version, sites: report.sites }, report.message);

  let server: HttpServer | null = null;
  let hub: SocketHub | null = null;
  try {
    const latest = store.latest();
    let initial: Checkpoint | undefined;
    let fingerprint: string;
    if (latest) {
      fingerprint = latest.schemaFingerprint;
      const configuredModel = { hidden: config.model.hidden, activation: config.model.activation, task: config.model.task };
      const stored = { hidden: latest.spec.hidden, activation: latest.spec.activation, task: latest.spec.task };
      if (JSON.stringify(configuredModel) !== JSON.stringify(stored)) {
        log.warn({ configured: configuredModel, stored }, 'the configured model differs from the federation\'s; the stored model is kept (start a new data directory to change it)');
      }
      const configured = federation.fingerprint ?? UNCHECKED_SCHEMA;
      if (config.schema && configured !== fingerprint) {
        throw new FedmetaError(
          ErrorCode.CONFIG,
          `the configured feature schema (fingerprint ${configured}) is not the federation's (${fingerprint}) kept in ${config.dataDir}; ` +
            'configure the schema the federation was started with, or start a new federation in an empty data directory',
        );
      }
    } else {
      if (federation.inputDim === null) {
        throw new FedmetaError(ErrorCode.CONFIG, 'set schema (a built-in name or a schema file) or model.inputDim so the coordinator can build the model');
      }
      fingerprint = federation.fingerprint ?? UNCHECKED_SCHEMA;
    }
    const storedSeed = latest?.rngState[0];
    const seed = config.seed ?? (storedSeed !== undefined && Number.isSafeInteger(storedSeed) && storedSeed >= 0 ? storedSeed : randomInt(0, 2 ** 32));
    if (!latest) initial = initialCheckpoint(config, federation.inputDim as number, fingerprint, seed);
    const paramCount = latest ? latest.params.length : (initial as Checkpoint).params.length;

    // The hub exists before the engine it reports to: refusals before the engine exists have no round to count in.
    let rejectionSink: RejectionSink | null = null;
    let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
      res.writeHead(503).end();
    };
    const made = makeServer(config, (req, res) => handler(req, res));
    server = made.server;
    const hubOptions: ConstructorParameters<typeof SocketHub>[0] = {
      server,
      store,
      paramCount,
      schemaFingerprint: fingerprint === UNCHECKED_SCHEMA ? null : fingerprint,
      logger: log.child({ subsystem: 'socket-hub' }),
      maxConnections: config.server.maxConnections,
      messagesPerSecond: config.server.perConnectionMessagesPerSecond,
      requireClientCert: config.server.requireClientCert,
      onRejected: (r) => rejectionSink?.(r.site, r.round, r.code),
    };
    if (opts.chunkValues !== undefined) hubOptions.chunkValues = opts.chunkValues;
    if (config.server.maxMessageBytes !== undefined) hubOptions.maxMessageBytes = config.server.maxMessageBytes;
    const socketHub = new SocketHub(hubOptions);
    hub = socketHub;
    const engineOptions: ConstructorParameters<typeof RoundEngine>[0] = {
      store,
      hub: socketHub,
      config: engineConfigFrom(config, seed),
      logger: log.child({ subsystem: 'round-engine' }),
    };
    if (opts.clock) engineOptions.clock = opts.clock;
    const engine = new RoundEngine(engineOptions);
    rejectionSink = (site, round, code) => engine.recordRejection(site, round, code);

    const runner = new RoundRunner({ engine, logger: log.child({ subsystem: 'rounds' }), online: () => socketHub.online().length, minOnline: engine.sitesToStart });
    const startedAt = new Date();
    const backend = createAdminBackend({
      engine,
      store,
      hub: socketHub,
      runner,
      coordinatorVersion: coordinatorVersion(),
      startedAt,
      settings: { rounds: redactConfig(config)['rounds'], aggregator: config.aggregator, optimizer: config.optimizer, limits: socketHub.limits },
    });
    const admin = createAdminHandler({ token: config.adminToken, backend, logger: log.child({ subsystem: 'admin' }) });
    // /metrics, the dashboard at /admin/ and the round history sit in front of the admin API.
    const observability = attachObservability({ engine, hub: socketHub, adminToken: config.adminToken, logger: log.child({ subsystem: 'admin' }), next: admin });
    handler = observability.handler;

    const port = await listen(server, config.server.port, config.server.host);
    const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
    const url = `${made.tls ? 'https' : 'http'}://${host}:${port}`;
    log.info({ url, port, tls: made.tls, mutualTls: config.server.requireClientCert, limits: socketHub.limits }, 'coordinator listening; sites wait until the state is restored');

    // Site traffic is refused (NOT_READY) until the engine has restored the committed state.
    await pausePoint('restore');
    const restored = await engine.init(initial);
    socketHub.activate({
      welcome: () => {
        const s = engine.status();
        return { currentVersion: s.version ?? 0, round: s.roundInFlight?.round ?? null, released: s.released };
      },
      release: async (version) => {
        const cp = engine.checkpoint();
        const source = cp && cp.version === version ? cp : await store.loadVersion(version);
        return { spec: source.spec, manifest: source.manifest, params: source.params };
      },
    });
    log.info({ version: restored.version, nextRound: restored.nextRound, restored: restored.restored }, 'coordinator ready');
    if (config.rounds.continuous) runner.startContinuous(config.rounds.maxRounds);

    const srv = server;
    let closing: Promise<void> | null = null;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        engine.close();
        observability.metrics.close();
        await runner.stop();
        srv.closeIdleConnections();
        await socketHub.close();
        srv.closeAllConnections();
        await store.close();
        log.info('coordinator stopped');
      })());
    return { url, port, engine, store, hub: socketHub, runner, metrics: observability.metrics, close };
  } catch (e) {
    if (hub) await hub.close().catch(() => undefined);
    else if (server) server.close();
    server?.closeAllConnections();
    await store.close().catch(() => undefined);
    if (!isFedmetaError(e)) log.error({ err: e }, 'the coordinator failed to start');
    throw e;
  }
}

/**
 * Updates refused by the transport (oversize, undecodable, NaN, wrong length) never reach the engine's submit;
 * the engine counts them in the round's record through this.
 */
type RejectionSink = (site: string, round: number | null, code: ErrorCode) => void;
