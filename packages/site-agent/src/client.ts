import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { io, type Socket } from 'socket.io-client';
import {
  CHUNK_VALUES,
  acquireLock,
  ErrorCode,
  PROTOCOL_VERSION,
  decodeMessageOf,
  isFedmetaError,
  manifestSize,
  validateMessage,
  encodeMessage,
  FedmetaError,
} from '@fedmeta/shared';
import type {
  AckMessage,
  DirLock,
  ClientToServerEvents,
  FeatureSchema,
  HelloMessage,
  Logger,
  ParamManifest,
  SecAggServerWire,
  SecAggSiteWire,
  SecAggUpdateFields,
  ServerToClientEvents,
  SiteAuth,
  WelcomeMessage,
} from '@fedmeta/shared';
import { credentialPath, type AgentConfig } from './config.js';
import { writeModelFile } from './model-file.js';
import { RoundWorker } from './rounds.js';
import type { SiteData } from './site-data.js';
import { SitePrivacyLedger, ledgerPath } from './privacy-ledger.js';
import { modelPath, readCredentialFile, storeCredential } from './state.js';
import type { ComputedUpdate } from './trainer.js';
import { ParamsTransfers } from './transfers.js';
import { sendUpdate } from './uplink.js';
import { AGENT_VERSION } from './version.js';
import { refusalAdvice, isRetryable, readRefusal } from './refusal.js';

/**
 * The site agent's connection to the coordinator: handshake and enrollment, round offers in and updates out,
 * released versions cached for `detect`, and reconnection. socket.io's manager reconnects (exponential backoff
 * with jitter) when the link drops; a refusal at the handshake is retried by the agent itself with the same
 * backoff when it is temporary (the coordinator restoring its state) and ends the agent when it is not.
 */
export interface SiteAgentOptions {
  config: AgentConfig;
  schema: FeatureSchema;
  schemaFingerprint: string;
  /** The site's data, or a loader called before the first round and again after `dataChanged()`. */
  data: SiteData | (() => Promise<SiteData>);
  siteSeed: number;
  logger: Logger;
  /** Called with every final verdict on an update (tests). */
  onAnswered?: (u: ComputedUpdate, ack: AckMessage) => void;
  /** Called when an update has been computed, with the seconds that took (the agent's metrics). */
  onComputed?: (u: ComputedUpdate, seconds: number) => void;
  /** The site's privacy ledger; default: the one in <stateDir>, opened by start(). */
  ledger?: SitePrivacyLedger;
  /**
   * The lock on <stateDir> that the caller already holds (and releases); default: start() takes it and stop()
   * releases it, so that a second agent on the same state directory is refused with STATE_LOCKED.
   */
  stateLock?: DirLock;
}

export type AgentStop = { reason: 'stopped' } | { reason: 'refused'; code: string; message: string };

type AgentSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

const SECAGG_SERVER_EVENTS = ['secagg-keys', 'secagg-delivery', 'secagg-survivors', 'secagg-confirmations'] as const;

export class SiteAgent {
  readonly done: Promise<AgentStop>;
  private finish!: (s: AgentStop) => void;
  private socket: AgentSocket | undefined;
  private auth: SiteAuth | undefined;
  private readonly log: Logger;
  private readonly transfers = new ParamsTransfers();
  private readonly worker: RoundWorker;
  private data: Promise<SiteData> | undefined;
  private retries = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private unreachableLogged = 0;
  private cachedRelease: number | undefined;
  /** The message size the coordinator announced in this connection's welcome; updates are chunked to fit it. */
  private wireLimits: Pick<WelcomeMessage, 'chunkValues' | 'maxMessageBytes'> | undefined;
  private ledger: SitePrivacyLedger | undefined;
  private ledgerLoad: Promise<SitePrivacyLedger> | undefined;
  /** The state directory's lock when start() took it. */
  private ownLock: DirLock | undefined;
  /** Settles once the agent has stopped: no round in progress, the lock it took released. */
  private closed: Promise<void> = Promise.resolve();

  constructor(private readonly opts: SiteAgentOptions) {
    this.log = opts.logger.child({ site: opts.config.site });
    this.done = new Promise((resolve) => (this.finish = resolve));
    this.worker = new RoundWorker({
      logger: this.log,
      train: { siteSeed: opts.siteSeed, schemaName: opts.schema.name },
      data: () => this.siteData(),
      send: (u, secagg) => this.send(u, secagg),
      sendSecAgg: (msgs) => this.sendSecAgg(msgs),
      credential: () => (this.auth?.kind === 'credential' ? this.auth.credential : undefined),
      ledger: () => this.privacyLedger(),
      chunkValues: () => this.wireLimits?.chunkValues ?? CHUNK_VALUES,
      ...(opts.onAnswered ? { onAnswered: opts.onAnswered } : {}),
      ...(opts.onComputed ? { onComputed: opts.onComputed } : {}),
    });
  }

  /** Takes the state directory's lock, resolves the credential (or enrollment token) and opens the connection. */
  async start(): Promise<void> {
    const c = this.opts.config;
    if (this.opts.stateLock === undefined) {
      // Two agents on one state directory would each spend from their own copy of the privacy ledger: the second
      // is refused before it reads anything there.
      await mkdir(c.stateDir, { recursive: true, mode: 0o700 });
      this.ownLock = await acquireLock(c.stateDir, { role: 'agent' });
      // stop() while the lock was being taken found nothing to release yet.
      if (this.stopped) return this.releaseLock();
    }
    try {
      await this.connect();
    } catch (e) {
      await this.releaseLock();
      throw e;
    }
  }

  private async connect(): Promise<void> {
    const c = this.opts.config;
    if (this.stopped) return;
    const stored = c.credential ?? (await readCredentialFile(credentialPath(c)));
    if (stored !== undefined) this.auth = { kind: 'credential', credential: stored };
    else if (c.enrollmentToken !== undefined) this.auth = { kind: 'enroll', token: c.enrollmentToken };
    else {
      throw new FedmetaError(
        ErrorCode.CONFIG,
        `no credential at ${credentialPath(c)} and no enrollmentToken: give the token printed by \`fedmeta-coordinator sites add ${c.site}\` (FEDMETA_AGENT_ENROLLMENT_TOKEN)`,
      );
    }
    validateMessage(this.hello());
    // A damaged ledger stops the agent before it can answer a round.
    const spent = (await this.privacyLedger()).report();
    this.log.info({ epsilon: spent.epsilon, epsilonBudget: spent.maxEpsilon, delta: spent.delta, charges: spent.charges }, 'privacy ledger loaded');
    if (c.activation !== undefined) {
      this.log.warn('the activation setting is ignored: the model, activation included, comes from the coordinator with every round; remove it from the configuration');
    }
    const socket: AgentSocket = io(new URL(c.coordinatorUrl).origin, {
      transports: ['websocket'],
      autoConnect: false,
      forceNew: true,
      auth: (cb) => cb(this.hello()),
      reconnection: true,
      reconnectionDelay: c.reconnect.initialDelayMs,
      reconnectionDelayMax: c.reconnect.maxDelayMs,
      randomizationFactor: 0.5,
      rejectUnauthorized: c.tls.rejectUnauthorized,
      ...(c.tls.ca !== undefined ? { ca: readPem(c.tls.ca, 'tls.ca') } : {}),
      ...(c.tls.cert !== undefined ? { cert: readPem(c.tls.cert, 'tls.cert') } : {}),
      ...(c.tls.key !== undefined ? { key: readPem(c.tls.key, 'tls.key') } : {}),
    });
    this.socket = socket;
    this.wire(socket);
    this.log.info({ url: new URL(c.coordinatorUrl).origin, auth: this.auth.kind }, 'connecting to the coordinator');
    socket.connect();
  }

  /** Marks the site's data as changed; it is reloaded before the next round. */
  dataChanged(): void {
    if (typeof this.opts.data === 'function') this.data = undefined;
  }

  /** ε spent by this site's records and its budget, once the ledger is loaded (the agent's metrics). */
  privacy(): { epsilon: number; epsilonBudget: number } | undefined {
    const r = this.ledger?.report();
    return r === undefined ? undefined : { epsilon: r.epsilon, epsilonBudget: r.maxEpsilon };
  }

  private privacyLedger(): Promise<SitePrivacyLedger> {
    if (this.ledgerLoad === undefined) {
      const given = this.opts.ledger;
      const loading = given !== undefined ? Promise.resolve(given) : SitePrivacyLedger.open(ledgerPath(this.opts.config.stateDir), this.opts.config.privacy);
      this.ledgerLoad = loading.then((l) => (this.ledger = l));
    }
    return this.ledgerLoad;
  }

  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  /** Ends the agent; resolves once no round is in progress and the state directory's lock is released. */
  async stop(): Promise<void> {
    this.end({ reason: 'stopped' });
    await this.closed;
  }

  private async releaseLock(): Promise<void> {
    const lock = this.ownLock;
    this.ownLock = undefined;
    await lock?.release().catch((e: unknown) => this.log.warn({ err: e, lock: lock.path }, 'could not remove the state directory lock'));
  }

  private end(s: AgentStop): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.transfers.reset('the agent stopped');
    this.socket?.close();
    this.closed = this.worker.settled().then(() => this.releaseLock());
    this.finish(s);
  }

  private hello(): HelloMessage {
    const c = this.opts.config;
    return {
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      site: c.site,
      schemaFingerprint: this.opts.schemaFingerprint,
      agentVersion: AGENT_VERSION,
      auth: this.auth!,
    };
  }

  private siteData(): Promise<SiteData> {
    const d = this.opts.data;
    if (typeof d !== 'function') return Promise.resolve(d);
    if (this.data === undefined) {
      const loading = d();
      // A failed load is retried at the next round rather than cached.
      loading.catch(() => {
        if (this.data === loading) this.data = undefined;
      });
      this.data = loading;
    }
    return this.data;
  }

  private limits(): { maxBytes: number } {
    return { maxBytes: this.opts.config.maxReceiveBytes };
  }

  private wire(socket: AgentSocket): void {
    socket.on('connect', () => {
      this.retries = 0;
      this.unreachableLogged = 0;
      this.log.info('connected to the coordinator');
    });
    socket.on('disconnect', (reason) => {
      this.transfers.reset('the connection dropped');
      this.wireLimits = undefined;
      if (this.stopped) return;
      this.log.warn({ reason }, 'disconnected from the coordinator; reconnecting');
      // The manager reconnects after a lost link, but not after the server closed the socket on purpose.
      if (!socket.active) this.retryLater();
    });
    socket.on('connect_error', (err) => this.onConnectError(err));
    socket.on('welcome', (payload) => this.guard('welcome', () => this.onWelcome(payload)));
    socket.on('round-offer', (payload) => this.guard('round-offer', () => this.onOffer(payload)));
    socket.on('params-chunk', (payload) =>
      this.guard('params-chunk', () => {
        const msg = decodeMessageOf('params-chunk', payload, { ...this.limits(), expectedLength: (m) => this.transfers.expectedTotal((m as { version: number }).version) });
        this.transfers.add(msg);
      }),
    );
    socket.on('release', (payload) => this.guard('release', () => this.onRelease(payload)));
    for (const type of SECAGG_SERVER_EVENTS) {
      socket.on(type, (payload) =>
        this.guard(type, () => this.worker.secagg(decodeMessageOf(type, payload, this.limits()) as SecAggServerWire)),
      );
    }
    socket.on('error', (payload) =>
      this.guard('error', () => {
        const msg = decodeMessageOf('error', payload, this.limits());
        this.log.warn({ code: msg.code }, `the coordinator reported: ${msg.message}`);
      }),
    );
  }

  /** Runs a message handler; a malformed message is logged by code and dropped, never fatal. */
  private guard(event: string, fn: () => void | Promise<void>): void {
    const onError = (e: unknown): void => {
      this.log.warn({ event, code: isFedmetaError(e) ? e.code : undefined }, `dropped a ${event} message from the coordinator: ${isFedmetaError(e) ? e.message : 'internal error'}`);
    };
    try {
      const r = fn();
      if (r instanceof Promise) r.catch(onError);
    } catch (e) {
      onError(e);
    }
  }

  private onConnectError(err: Error & { data?: unknown }): void {
    if (this.stopped) return;
    const refusal = readRefusal(err);
    if (refusal === null) {
      // A transport failure: the coordinator is down, restarting or unreachable. Logged at a falling rate.
      this.unreachableLogged++;
      if ((this.unreachableLogged & (this.unreachableLogged - 1)) === 0) {
        const cause = transportCause(err);
        this.log.warn({ attempts: this.unreachableLogged, code: cause.code }, `cannot reach the coordinator (${cause.text})${cause.hint}; retrying with backoff`);
      }
      if (this.socket !== undefined && !this.socket.active) this.retryLater();
      return;
    }
    const sentence = `the coordinator refused this site: ${refusal.code}: ${refusal.message}`;
    if (!isRetryable(refusal.code)) {
      this.log.error({ code: refusal.code }, `${sentence}. ${refusalAdvice(refusal.code, this.opts.config.site)}`);
      this.end({ reason: 'refused', code: refusal.code, message: refusal.message });
      return;
    }
    this.log.warn({ code: refusal.code }, `${sentence}; retrying with backoff`);
    this.retryLater();
  }

  /** Exponential backoff with ±50% jitter, capped, for reconnections socket.io does not schedule itself. */
  private retryLater(): void {
    if (this.stopped) return;
    const { initialDelayMs, maxDelayMs } = this.opts.config.reconnect;
    const base = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(this.retries, 30));
    const delay = Math.round(base * (0.5 + Math.random()));
    this.retries++;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (!this.stopped && this.socket !== undefined && !this.socket.connected && !this.socket.active) this.socket.connect();
    }, delay);
  }

  private async onWelcome(payload: Uint8Array): Promise<void> {
    const w = decodeMessageOf('welcome', payload, this.limits());
    if (w.site !== this.opts.config.site) {
      this.log.error('the coordinator welcomed another site name than this one; check the site setting');
    }
    // Before any await: the welcome describes the coordinator as of this connection, and offers that follow it
    // must not be judged against it.
    this.log.info(
      { version: w.currentVersion, round: w.round, released: w.released, chunkValues: w.chunkValues, maxMessageBytes: w.maxMessageBytes },
      'welcomed by the coordinator',
    );
    this.wireLimits = { chunkValues: w.chunkValues, maxMessageBytes: w.maxMessageBytes };
    this.worker.welcomed(w.round);
    if (w.credential !== undefined) {
      const file = credentialPath(this.opts.config);
      // The token is spent now: the credential is the site's only key, in memory first, then on disk.
      this.auth = { kind: 'credential', credential: w.credential };
      try {
        await storeCredential(file, w.credential);
        this.log.info({ file }, 'enrolled: the site credential was stored and replaces the enrollment token');
      } catch (e) {
        this.log.error(
          { file, code: (e as NodeJS.ErrnoException).code },
          'enrolled, but the credential could not be stored: keep this agent running (it holds the credential) and make the state directory writable, or the site will need a new enrollment token after a restart',
        );
      }
    }
  }

  private async params(version: number, manifest: ParamManifest, inline: Float32Array | null, chunks: number): Promise<Float32Array> {
    if (inline !== null) return inline;
    return this.transfers.expect(version, manifestSize(manifest), chunks);
  }

  private async onOffer(payload: Uint8Array): Promise<void> {
    const o = decodeMessageOf('round-offer', payload, this.limits());
    this.log.info({ round: o.round, version: o.version, algorithm: o.task.algorithm, episodes: o.task.episodes }, 'round offered');
    const params = await this.params(o.version, o.manifest, o.params, o.chunks);
    this.worker.offer({ round: o.round, version: o.version, task: o.task, spec: o.spec, manifest: o.manifest, params, deadline: o.deadline, ...(o.secagg ? { secagg: o.secagg } : {}) });
  }

  private async onRelease(payload: Uint8Array): Promise<void> {
    const r = decodeMessageOf('release', payload, this.limits());
    const params = await this.params(r.version, r.manifest, r.params, r.chunks);
    // The coordinator sends the current release on every connect: write it once.
    if (this.cachedRelease === r.version) return;
    const data = await this.siteData();
    const task = this.worker.lastTask;
    const model = {
      format: 'fedmeta-model' as const,
      formatVersion: 1 as const,
      version: r.version,
      spec: r.spec,
      manifest: r.manifest,
      params,
      schemaFingerprint: this.opts.schemaFingerprint,
      stats: data.stats,
      ...(task !== undefined ? { inner: { steps: task.innerSteps, lr: task.innerLr } } : {}),
      createdAt: new Date().toISOString(),
    };
    const dir = this.opts.config.stateDir;
    await writeModelFile(modelPath(dir, r.version), model);
    await writeModelFile(modelPath(dir), model);
    this.cachedRelease = r.version;
    this.log.info({ version: r.version, file: modelPath(dir) }, 'released version cached for detect');
  }

  private async send(u: ComputedUpdate, secagg?: SecAggUpdateFields): Promise<AckMessage> {
    const socket = this.socket;
    const limits = this.wireLimits;
    // Emits while disconnected would be buffered and replayed later; the re-offer after reconnecting is the resend path.
    if (socket === undefined || !socket.connected || limits === undefined) {
      throw new FedmetaError(ErrorCode.NOT_READY, 'not connected to the coordinator');
    }
    return sendUpdate(
      { timeout: (ms) => ({ emitWithAck: (event, bytes) => socket.timeout(ms).emitWithAck(event, bytes) }) },
      u,
      { ackTimeoutMs: this.opts.config.ackTimeoutMs, maxReceiveBytes: this.opts.config.maxReceiveBytes, ...limits, ...(secagg ? { secagg } : {}) },
    );
  }

  /** Sends secure-aggregation messages one after another, each acknowledged before the next; stops at a refusal. */
  private async sendSecAgg(msgs: SecAggSiteWire[]): Promise<AckMessage> {
    const socket = this.socket;
    if (socket === undefined || !socket.connected) throw new FedmetaError(ErrorCode.NOT_READY, 'not connected to the coordinator');
    let ack: AckMessage | undefined;
    for (const m of msgs) {
      const reply: unknown = await socket.timeout(this.opts.config.ackTimeoutMs).emitWithAck(m.type, encodeMessage(m));
      if (!(reply instanceof Uint8Array)) throw new FedmetaError(ErrorCode.DECODE, 'the coordinator acknowledged with something other than an encoded ack message');
      ack = decodeMessageOf('ack', reply, this.limits());
      if (!ack.accepted) break;
    }
    if (ack === undefined) throw new FedmetaError(ErrorCode.PRECONDITION, 'no secure-aggregation message to send');
    return ack;
  }
}

/**
 * What lies under socket.io's "websocket error": the socket or TLS error (refused, unreachable, a certificate
 * that does not verify), so that an operator sees which one it is.
 */
function transportCause(err: Error & { description?: unknown }): { text: string; code: string | undefined; hint: string } {
  const d = err.description as { message?: unknown; code?: unknown; error?: { message?: unknown; code?: unknown } } | undefined;
  const inner = d?.error ?? d;
  const message = typeof inner?.message === 'string' ? inner.message : err.message;
  const code = typeof inner?.code === 'string' ? inner.code : undefined;
  const text = message.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, 160);
  const tls = /CERT|SELF_SIGNED|TLS|SSL/i.test(code ?? '') || /certificate/i.test(message);
  return { text, code, hint: tls ? ': the coordinator\'s certificate does not verify; set tls.ca to the CA that signed it' : '' };
}

function readPem(path: string, key: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new FedmetaError(ErrorCode.CONFIG, `${key}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'}); check the path`);
  }
}
