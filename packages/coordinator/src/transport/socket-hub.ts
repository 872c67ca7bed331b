import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { Server } from 'socket.io';
import type { Socket } from 'socket.io';
import { Decoder, Encoder } from 'socket.io-parser';
import { chunkCount, chunkRange, decodeMessageOf, encodeMessage, ErrorCode, FedmetaError, isFedmetaError, PROTOCOL_LIMITS, PROTOCOL_VERSION, sameRoundId } from '@fedmeta/shared';
import type {
  AckMessage,
  ClientToServerEvents,
  ErrorMessage,
  SecAggMaskedWire,
  SecAggSiteWire,
  ServerToClientEvents,
  WelcomeMessage,
  WireError,
} from '@fedmeta/shared';
import type { Logger } from 'pino';
import type { PresenceHandler, RoundOffer, SecAggHandler, SecAggToSite, SiteHub, SiteUpdate, UpdateAck, UpdateHandler } from '../engine/hub.js';
import type { StateStore } from '../state/store.js';
import { admit, connectError, peerTls } from './handshake.js';
import { UpdateReceiver } from './inbound.js';
import type { Reply, Verdict } from './inbound.js';
import { wireLimits } from './limits.js';
import type { WireLimits } from './limits.js';
import { encodeOffer, encodeRelease, sendTransfer } from './outbound.js';
import type { EncodedTransfer, Emitter, ReleasedModel } from './outbound.js';
import { TokenBucket } from './rate-limit.js';

/** What the hub asks the coordinator for once it is ready: the state a joining site is told, and released models. */
export interface HubSource {
  welcome(): { currentVersion: number; round: number | null; released: number | null };
  release(version: number): Promise<ReleasedModel>;
}

export interface SocketHubOptions {
  server: HttpServer | HttpsServer;
  store: StateStore;
  /** Length of the federation's parameter vector: every update must have it, and message limits follow from it. */
  paramCount: number;
  /** The federation's feature-schema fingerprint; null when there is none to check. */
  schemaFingerprint: string | null;
  logger: Logger;
  maxConnections?: number;
  messagesPerSecond?: number;
  chunkValues?: number;
  maxMessageBytes?: number;
  requireClientCert?: boolean;
  /** How long a chunked update may take from header to last chunk (default 10 minutes). */
  transferTimeoutMs?: number;
  /** Called for each update refused before it reached the engine (size, decoding, schema, rate). */
  onRejected?: (event: { site: string; round: number | null; code: ErrorCode }) => void;
}

interface SocketData {
  site: string;
  agentVersion: string;
  credential?: string;
  identity?: Uint8Array;
}

type HubSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
type HubServer = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

/**
 * socket.io's packet decoder keeps up to 10 binary attachments of a packet in memory until the packet is
 * complete, before anything has checked who sent them: an unauthenticated peer could pin nine frames of
 * maxHttpBufferSize on every connection it opens. Every event of this protocol carries one attachment at most,
 * so a packet that announces more is refused and its connection closed at once.
 */
class OneAttachmentDecoder extends Decoder {
  constructor() {
    super({ maxAttachments: 1 });
  }
}
const PARSER = { Encoder, Decoder: OneAttachmentDecoder };

const ALL_SITES = 'sites';
const roomOf = (site: string): string => `site:${site}`;
const SECAGG_EVENTS = ['secagg-shares', 'secagg-masked', 'secagg-confirm', 'secagg-unmask'] as const;
const UPDATE_EVENTS: ReadonlySet<unknown> = new Set(['update', 'update-chunk', ...SECAGG_EVENTS]);

function wire(code: ErrorCode, message: string): WireError {
  return new FedmetaError(code, message).toWire();
}

/**
 * The round engine's SiteHub over socket.io. Sites are admitted by middleware before any handler sees their
 * socket; every message is binary (encodeMessage), size-checked and validated; offers and releases go out
 * through rooms, so a shared adapter can carry them between coordinator replicas.
 */
export class SocketHub implements SiteHub {
  readonly io: HubServer;
  readonly limits: WireLimits;
  private readonly log: Logger;
  private readonly opts: SocketHubOptions;
  private source: HubSource | null = null;
  private readonly sockets = new Map<string, HubSocket>();
  private readonly updateHandlers: UpdateHandler[] = [];
  private readonly presenceHandlers: PresenceHandler[] = [];
  private readonly rejected: Record<string, number> = {};
  /** Connections refused at admission, by code: what an unauthenticated or misconfigured peer was told. */
  private readonly refused: Record<string, number> = {};
  private readonly pendingReply = new Map<string, Reply>();
  private readonly offers = new WeakMap<RoundOffer, EncodedTransfer>();
  /** Encoded params-chunk messages by parameter vector: shared by the per-site offers of a secure round. */
  private readonly offerChunks = new WeakMap<Float32Array, Uint8Array[]>();
  private readonly secAggHandlers: SecAggHandler[] = [];
  /** Identity public keys of the connected sites, from their registry records at admission. */
  private readonly identities = new Map<string, Uint8Array>();
  private lastRelease: { version: number; transfer: EncodedTransfer } | null = null;
  /** The round each site was last offered: what an unreadable message is taken to be about, in logs and acks. */
  private readonly offeredRound = new Map<string, number>();
  /** When each site last connected or disconnected, in this run; kept in memory so that reconnect storms cost no writes. */
  private readonly seen = new Map<string, string>();
  private readonly burst: number;

  constructor(opts: SocketHubOptions) {
    this.opts = opts;
    this.log = opts.logger;
    const limitOpts: { chunkValues?: number; maxMessageBytes?: number } = {};
    if (opts.chunkValues !== undefined) limitOpts.chunkValues = opts.chunkValues;
    if (opts.maxMessageBytes !== undefined) limitOpts.maxMessageBytes = opts.maxMessageBytes;
    this.limits = wireLimits(opts.paramCount, limitOpts);
    const rate = opts.messagesPerSecond ?? 20;
    // A chunked update is one burst of chunks: let it through in one go at any rate setting.
    this.burst = Math.max(2 * rate, chunkCount(opts.paramCount, this.limits.chunkValues) + 2);
    const hardCap = (opts.maxConnections ?? 2000) + 256;
    this.io = new Server(opts.server, {
      maxHttpBufferSize: this.limits.maxHttpBufferSize,
      serveClient: false,
      parser: PARSER,
      connectTimeout: 15_000,
      // Connection state recovery stays off: it would readmit a socket without running the admission middleware.
      // Half-open handshakes are capped here; admitted sites are capped (with a coded refusal) in the middleware.
      allowRequest: (_req, cb) => cb(null, this.io.engine.clientsCount < hardCap),
    });
    this.io.use((socket, next) => {
      void this.admitSocket(socket, next);
    });
    this.io.on('connection', (socket) => this.attach(socket));
  }

  /** Opens the hub to sites; until then every connection is refused with NOT_READY. */
  activate(source: HubSource): void {
    this.source = source;
  }

  get ready(): boolean {
    return this.source !== null;
  }

  // ------------------------------------------------------------------------------------------ SiteHub

  online(): string[] {
    return [...this.sockets.keys()].sort();
  }

  sendOffer(site: string, offer: RoundOffer): void {
    let t = this.offers.get(offer);
    if (!t) {
      // The engine hands every sampled site the same offer object (on a secure round, the same parameters): encode them once.
      t = encodeOffer(offer, this.limits.chunkValues, this.offerChunks.get(offer.params));
      this.offers.set(offer, t);
      this.offerChunks.set(offer.params, t.chunks);
    }
    sendTransfer(this.emitter(roomOf(site)), t);
    this.offeredRound.set(site, offer.round);
    this.log.debug({ site, round: offer.round, bytes: t.bytes, chunks: t.chunks.length }, 'round offer sent');
  }

  sendAck(site: string, ack: UpdateAck): void {
    const reply = this.pendingReply.get(site);
    if (!reply) {
      this.log.debug({ site, round: ack.round }, 'no update awaits this acknowledgement; dropped');
      return;
    }
    this.pendingReply.delete(site);
    const v: Verdict = { round: ack.round, accepted: ack.accepted, fromEngine: true };
    if (ack.error) v.error = ack.error;
    reply(v);
  }

  broadcastRelease(version: number): void {
    void this.releaseTransfer(version).then(
      (t) => sendTransfer(this.emitter(ALL_SITES), t),
      (e: unknown) => this.log.error({ err: e, version }, 'could not send the release to the sites'),
    );
  }

  onUpdate(handler: UpdateHandler): void {
    this.updateHandlers.push(handler);
  }

  onPresence(handler: PresenceHandler): void {
    this.presenceHandlers.push(handler);
  }

  identity(site: string): Uint8Array | null {
    const id = this.identities.get(site);
    return id ? id.slice() : null;
  }

  sendSecAgg(site: string, msg: SecAggToSite): void {
    let bytes: Uint8Array;
    try {
      bytes = encodeMessage(msg);
    } catch (e) {
      this.log.error({ err: e, site, type: msg.type }, 'could not encode a secure-aggregation message');
      return;
    }
    this.io.to(roomOf(site)).emit(msg.type, bytes);
    this.log.debug({ site, round: msg.round, type: msg.type, bytes: bytes.byteLength }, 'secure-aggregation message sent');
  }

  onSecAgg(handler: SecAggHandler): void {
    this.secAggHandlers.push(handler);
  }

  // ------------------------------------------------------------------------------------------ operations

  /** ISO time a site last connected or disconnected since the coordinator started, if it did. */
  lastSeen(site: string): string | null {
    return this.seen.get(site) ?? null;
  }

  /** Refusals by code since start: at connection's end (size, decoding, rate) and the engine's (stale, duplicate). */
  rejectionCounts(): Record<string, number> {
    return { ...this.rejected };
  }

  /** Connections refused at admission since start, by code (unauthenticated, wrong schema, not ready, full). */
  connectionRefusals(): Record<string, number> {
    return { ...this.refused };
  }

  /** Tells a site why and closes its connection (after a revocation, say). */
  disconnectSite(site: string, error?: WireError): boolean {
    const s = this.sockets.get(site);
    if (!s) return false;
    if (error) {
      const msg: ErrorMessage = { type: 'error', code: error.code, message: error.message.slice(0, PROTOCOL_LIMITS.errorMessageChars) };
      s.emit('error', encodeMessage(msg));
    }
    s.disconnect(true);
    return true;
  }

  async close(): Promise<void> {
    this.source = null;
    for (const s of this.sockets.values()) s.disconnect(true);
    await new Promise<void>((resolve) => {
      void this.io.close(() => resolve());
    });
  }

  // ------------------------------------------------------------------------------------------ admission

  private async admitSocket(socket: HubSocket, next: (err?: Error) => void): Promise<void> {
    const max = this.opts.maxConnections ?? 2000;
    try {
      if (!this.source) {
        throw new FedmetaError(ErrorCode.NOT_READY, 'the coordinator is restoring its state; the agent retries shortly');
      }
      const claimed = (socket.handshake.auth as { site?: unknown } | undefined)?.site;
      const replacing = typeof claimed === 'string' && this.sockets.has(claimed);
      if (this.sockets.size >= max && !replacing) {
        throw new FedmetaError(ErrorCode.RATE_LIMITED, `the coordinator serves at most ${max} sites at once; the agent retries later`);
      }
      const a = await admit(socket.handshake.auth, peerTls(socket.request.socket), {
        store: this.opts.store,
        schemaFingerprint: this.opts.schemaFingerprint,
        requireClientCert: this.opts.requireClientCert ?? false,
      });
      if (!this.source) throw new FedmetaError(ErrorCode.NOT_READY, 'the coordinator is shutting down; the agent retries');
      socket.data = { site: a.site, agentVersion: a.agentVersion, identity: a.identity, ...(a.credential ? { credential: a.credential } : {}) };
      next();
    } catch (e) {
      const err = connectError(e);
      const code = (err.data as WireError).code;
      this.refused[code] = (this.refused[code] ?? 0) + 1;
      if (!isFedmetaError(e)) this.log.error({ err: e }, 'admission failed unexpectedly');
      this.log.info({ code, transport: socket.conn.transport.name }, 'connection refused');
      next(err);
    }
  }

  private attach(socket: HubSocket): void {
    const { site, agentVersion, credential, identity } = socket.data;
    const log = this.log.child({ site });
    const old = this.sockets.get(site);
    if (old && old !== socket) {
      // One connection per site: the newer one wins (an agent that reconnected before its old socket timed out).
      log.info('a new connection replaces the site\'s previous one');
      old.disconnect(true);
    }
    this.sockets.set(site, socket);
    if (identity) this.identities.set(site, identity);
    else this.identities.delete(site);
    this.seen.set(site, new Date().toISOString());
    void socket.join([ALL_SITES, roomOf(site)]);

    const bucket = new TokenBucket(this.opts.messagesPerSecond ?? 20, this.burst);
    const receiver = new UpdateReceiver({
      paramCount: this.opts.paramCount,
      maxMessageBytes: this.limits.maxMessageBytes,
      transferTimeoutMs: this.opts.transferTimeoutMs ?? 600_000,
      deliver: (update, reply) => this.deliver(site, update, reply, log),
    });
    socket.use((packet, next) => {
      if (bucket.take()) return next();
      const ack = packet[packet.length - 1];
      if (UPDATE_EVENTS.has(packet[0])) {
        this.replier(site, ack, log)({
          round: -1,
          accepted: false,
          error: wire(ErrorCode.RATE_LIMITED, 'this site sends messages faster than the coordinator allows; the agent slows down and resends'),
        });
      }
      // Not calling next drops the packet.
    });
    socket.on('update', (payload, ack) => receiver.onUpdate(payload, this.replier(site, ack, log)));
    socket.on('update-chunk', (payload, ack) => receiver.onChunk(payload, this.replier(site, ack, log)));
    const masked = new MaskedAssembler(this.opts.paramCount, this.opts.transferTimeoutMs ?? 600_000);
    for (const event of SECAGG_EVENTS) {
      socket.on(event, (payload, ack) => this.onSecAggMessage(site, event, payload, this.replier(site, ack, log), masked));
    }
    socket.on('error', (err) => log.warn({ err }, 'socket error'));
    socket.on('disconnect', (reason) => {
      receiver.close();
      masked.drop();
      this.seen.set(site, new Date().toISOString());
      if (this.sockets.get(site) === socket) {
        this.sockets.delete(site);
        this.identities.delete(site);
        this.pendingReply.delete(site);
        this.offeredRound.delete(site);
        this.announce(site, false);
      }
      log.info({ reason }, 'site disconnected');
    });

    const src = this.source;
    const w = src ? src.welcome() : { currentVersion: 0, round: null, released: null };
    const welcome: WelcomeMessage = {
      type: 'welcome',
      protocolVersion: PROTOCOL_VERSION,
      site,
      currentVersion: w.currentVersion,
      round: w.round,
      released: w.released,
      // The site chunks its updates at this size; a vector never exceeds the model, so neither does a chunk.
      chunkValues: Math.min(this.limits.chunkValues, this.opts.paramCount),
      maxMessageBytes: this.limits.maxMessageBytes,
    };
    if (credential) welcome.credential = credential;
    socket.emit('welcome', encodeMessage(welcome));
    // The credential leaves memory with the welcome message; nothing keeps it.
    socket.data = { site, agentVersion };
    log.info({ agentVersion, enrolled: credential !== undefined, transport: socket.conn.transport.name }, 'site connected');
    if (w.released !== null) {
      const released = w.released;
      void this.releaseTransfer(released).then(
        (t) => {
          if (socket.connected) sendTransfer(this.emitter(socket), t);
        },
        (e: unknown) => log.error({ err: e, version: released }, 'could not send the current release'),
      );
    }
    this.announce(site, true);
  }

  // ------------------------------------------------------------------------------------------ updates

  private deliver(site: string, update: SiteUpdate, reply: Reply, log: Logger): void {
    if (this.updateHandlers.length === 0 || !this.source) {
      reply({ round: update.round, accepted: false, error: wire(ErrorCode.NOT_READY, 'the coordinator is not taking updates yet; the agent retries') });
      return;
    }
    this.pendingReply.set(site, reply);
    try {
      for (const h of this.updateHandlers) h(site, update);
    } catch (e) {
      log.child({ round: update.round }).error({ err: e }, 'an update handler threw');
    } finally {
      if (this.pendingReply.get(site) === reply) {
        this.pendingReply.delete(site);
        reply({ round: update.round, accepted: false, error: wire(ErrorCode.NOT_READY, 'the coordinator did not take the update; the agent resends it') });
      }
    }
  }

  /**
   * A secure-aggregation message: decoded and validated against the model's size, a masked update gathered
   * from its pieces, then judged by the engine, whose verdict is the acknowledgement.
   */
  private onSecAggMessage(site: string, event: (typeof SECAGG_EVENTS)[number], payload: unknown, reply: Reply, masked: MaskedAssembler): void {
    let msg: SecAggSiteWire;
    let chunk: number | undefined;
    try {
      msg = decodeMessageOf(event, payload as Uint8Array, { maxBytes: this.limits.maxMessageBytes, expectedLength: () => this.opts.paramCount }) as SecAggSiteWire;
      if (msg.type === 'secagg-masked') {
        chunk = msg.index;
        const whole = masked.add(msg);
        if (whole === null) {
          reply({ round: msg.round, accepted: true, chunk });
          return;
        }
        msg = whole;
      }
    } catch (e) {
      masked.drop();
      reply({ round: -1, accepted: false, error: isFedmetaError(e) ? e.toWire() : wire(ErrorCode.DECODE, 'the message could not be processed; the agent must send encodeMessage() bytes'), ...(chunk === undefined ? {} : { chunk }) });
      return;
    }
    const handler = this.secAggHandlers[0];
    if (!handler || !this.source) {
      reply({ round: msg.round, accepted: false, error: wire(ErrorCode.NOT_READY, 'the coordinator is not taking secure-aggregation messages yet') });
      return;
    }
    let verdict: UpdateAck;
    try {
      verdict = handler(site, msg);
    } catch (e) {
      this.log.child({ site, round: msg.round }).error({ err: e }, 'a secure-aggregation handler threw');
      verdict = { round: msg.round, accepted: false, error: wire(ErrorCode.NOT_READY, 'the coordinator could not take the message') };
    }
    const v: Verdict = { round: verdict.round, accepted: verdict.accepted, fromEngine: true, ...(chunk === undefined ? {} : { chunk }) };
    if (verdict.error) v.error = verdict.error;
    reply(v);
  }

  /** One reply per message: counts and logs a refusal, then answers through the acknowledgement when there is one. */
  private replier(site: string, ack: unknown, log: Logger): Reply {
    let done = false;
    return (v) => {
      if (done) return;
      done = true;
      const round = v.round >= 0 ? v.round : (this.offeredRound.get(site) ?? null);
      if (!v.accepted && v.error) {
        this.rejected[v.error.code] = (this.rejected[v.error.code] ?? 0) + 1;
        if (!v.fromEngine) {
          // The engine logs and counts what it judged; these never reached it.
          log.child(round === null ? {} : { round }).warn({ code: v.error.code }, 'message rejected');
          this.opts.onRejected?.({ site, round, code: v.error.code });
        }
      }
      if (typeof ack !== 'function') return;
      const msg: AckMessage = { type: 'ack', round: round ?? 0, accepted: v.accepted };
      if (v.chunk !== undefined) msg.chunk = v.chunk;
      if (v.error) msg.error = { code: v.error.code, message: v.error.message.slice(0, PROTOCOL_LIMITS.errorMessageChars) };
      try {
        (ack as (reply: Uint8Array) => void)(encodeMessage(msg));
      } catch (e) {
        log.error({ err: e }, 'could not send an acknowledgement');
      }
    };
  }

  // ------------------------------------------------------------------------------------------ helpers

  private announce(site: string, online: boolean): void {
    for (const h of this.presenceHandlers) {
      try {
        h(site, online);
      } catch (e) {
        this.log.error({ err: e, site }, 'a presence handler threw');
      }
    }
  }

  private async releaseTransfer(version: number): Promise<EncodedTransfer> {
    if (this.lastRelease?.version === version) return this.lastRelease.transfer;
    const src = this.source;
    if (!src) throw new FedmetaError(ErrorCode.NOT_READY, 'the hub is not active');
    const transfer = encodeRelease(version, await src.release(version), this.limits.chunkValues);
    this.lastRelease = { version, transfer };
    return transfer;
  }

  /** A room (through the adapter) or one socket, as something that sends our events. */
  private emitter(to: string | HubSocket): Emitter {
    const target = typeof to === 'string' ? this.io.to(to) : to;
    return { emit: (event, payload) => target.emit(event, payload) };
  }
}

/**
 * Gathers one site's masked update from its pieces (laid out over dim + 1 words, as the schema has checked),
 * for the engine, which takes it whole. A piece of another round, attempt, round id or piece count starts
 * over (so pieces of two issues of an attempt are never joined); a transfer left unfinished is dropped after
 * the timeout.
 */
class MaskedAssembler {
  private cur: {
    round: number;
    attempt: number;
    roundId: Uint8Array;
    count: number;
    bytes: Uint8Array;
    seen: Set<number>;
    timer: ReturnType<typeof setTimeout>;
  } | null = null;

  constructor(
    private readonly dim: number,
    private readonly timeoutMs: number,
  ) {}

  add(m: SecAggMaskedWire): SecAggMaskedWire | null {
    if (m.count === 1) {
      this.drop();
      return m;
    }
    let c = this.cur;
    if (c === null || c.round !== m.round || c.attempt !== m.attempt || !sameRoundId(m.roundId, c.roundId) || c.count !== m.count) {
      this.drop();
      const timer = setTimeout(() => this.drop(), this.timeoutMs);
      timer.unref();
      c = this.cur = { round: m.round, attempt: m.attempt, roundId: m.roundId, count: m.count, bytes: new Uint8Array(4 * (this.dim + 1)), seen: new Set(), timer };
    }
    if (c.seen.has(m.index)) throw new FedmetaError(ErrorCode.CHUNK, `masked piece ${m.index} arrived twice; resend the masked update from its first piece`);
    c.bytes.set(m.masked, 4 * chunkRange(this.dim + 1, m.count, m.index).start);
    c.seen.add(m.index);
    if (c.seen.size < c.count) return null;
    const whole: SecAggMaskedWire = { type: 'secagg-masked', round: m.round, attempt: m.attempt, roundId: m.roundId, site: m.site, index: 0, count: 1, masked: c.bytes };
    this.drop();
    return whole;
  }

  drop(): void {
    if (this.cur) clearTimeout(this.cur.timer);
    this.cur = null;
  }
}
