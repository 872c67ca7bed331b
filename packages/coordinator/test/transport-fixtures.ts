import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { io as ioClient } from 'socket.io-client';
import type { Socket as ClientSocket } from 'socket.io-client';
import {
  ChunkAssembler,
  chunkVector,
  decodeMessage,
  encodeMessage,
  PROTOCOL_VERSION,
} from '@fedmeta/shared';
import type {
  AckMessage,
  ClientToServerEvents,
  HelloMessage,
  RoundOfferMessage,
  ServerToClientEvents,
  UpdateMessage,
  WelcomeMessage,
  WireError,
} from '@fedmeta/shared';
import { loadCoordinatorConfig } from '../src/config.js';
import type { CoordinatorConfig } from '../src/config.js';
import { startCoordinator } from '../src/serve.js';
import type { RunningCoordinator } from '../src/serve.js';

export type SiteSocket = ClientSocket<ServerToClientEvents, ClientToServerEvents>;

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fedmeta-transport-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface CapturedLog {
  logger: Logger;
  text: () => string;
  lines: () => Record<string, unknown>[];
}

export function captureLogger(level = 'debug'): CapturedLog {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const text = () => chunks.join('');
  return {
    logger: pino({ level }, stream),
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** A loopback configuration: plain HTTP, port 0, a small model, fast rounds. */
export function testConfig(dataDir: string, flags: Record<string, unknown> = {}): CoordinatorConfig {
  return loadCoordinatorConfig({
    env: {},
    flags: {
      'server.host': '127.0.0.1',
      'server.port': 0,
      'server.allowInsecureHttp': true,
      dataDir,
      adminToken: ADMIN_TOKEN,
      'model.inputDim': 7,
      'model.hidden': [],
      'rounds.minSites': 3,
      'rounds.quorum': 3,
      'rounds.deadlineSeconds': 5,
      'rounds.algorithm': 'reptile',
      optimizer: { kind: 'sgd', lr: 0.5 },
      seed: 7,
      ...flags,
    },
  });
}

export async function startTest(
  t: { after: (fn: () => Promise<void>) => void },
  opts: { flags?: Record<string, unknown>; chunkValues?: number; dir?: string } = {},
): Promise<{ c: RunningCoordinator; log: CapturedLog; dir: string; config: CoordinatorConfig }> {
  const dir = opts.dir ?? (await tempDir(t));
  const config = testConfig(dir, opts.flags);
  const log = captureLogger();
  const startOpts: Parameters<typeof startCoordinator>[1] = { logger: log.logger };
  if (opts.chunkValues !== undefined) startOpts.chunkValues = opts.chunkValues;
  const c = await startCoordinator(config, startOpts);
  t.after(() => c.close());
  return { c, log, dir, config };
}

export function hello(site: string, auth: HelloMessage['auth'], over: Partial<HelloMessage> = {}): HelloMessage {
  return { type: 'hello', protocolVersion: PROTOCOL_VERSION, site, schemaFingerprint: 'none', agentVersion: 'test/1', auth, ...over };
}

export interface Connected {
  socket: SiteSocket;
  welcome: WelcomeMessage;
}

const decode = (bytes: Uint8Array) => decodeMessage(bytes, { maxBytes: 64 << 20 });

/** Connects with the given handshake; resolves with the welcome, or rejects with the connect_error's data. */
export function connect(
  url: string,
  auth: unknown,
  t?: { after: (fn: () => void) => void },
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {},
): Promise<Connected> {
  const socket: SiteSocket = ioClient(url, {
    auth: auth as Record<string, unknown>,
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    // socket.io-client passes these TLS options on to the WebSocket in Node; its types only list strings.
    ...((tls.ca ? { ...tls, rejectUnauthorized: true } : {}) as Record<string, never>),
  });
  t?.after(() => socket.disconnect());
  return new Promise((resolve, reject) => {
    socket.once('welcome', (payload) => resolve({ socket, welcome: decode(payload) as WelcomeMessage }));
    socket.once('connect_error', (err) => {
      socket.disconnect();
      reject((err as Error & { data?: WireError }).data ?? err);
    });
  });
}

/** Receives round offers, reassembling chunked parameters. */
export function onOffers(socket: SiteSocket, handler: (offer: RoundOfferMessage, params: Float32Array) => void): void {
  let pending: { offer: RoundOfferMessage; assembler: ChunkAssembler } | null = null;
  socket.on('round-offer', (payload) => {
    const offer = decode(payload) as RoundOfferMessage;
    if (offer.params) handler(offer, offer.params);
    else pending = { offer, assembler: new ChunkAssembler({ total: offer.manifest.reduce((n, e) => n + e.shape.reduce((a, b) => a * b, 1), 0), count: offer.chunks }) };
  });
  socket.on('params-chunk', (payload) => {
    const chunk = decode(payload);
    if (!pending || chunk.type !== 'params-chunk' || chunk.version !== pending.offer.version) return;
    if (pending.assembler.add(chunk)) {
      const { offer, assembler } = pending;
      pending = null;
      handler(offer, assembler.result());
    }
  });
}

export function quadraticUpdate(offer: RoundOfferMessage, params: Float32Array, target: number, examples = 50): UpdateMessage {
  const update = new Float32Array(params.length);
  let loss = 0;
  for (let i = 0; i < params.length; i++) {
    const d = (params[i] as number) - target;
    update[i] = 2 * d;
    loss += d * d;
  }
  return {
    type: 'update',
    round: offer.round,
    version: offer.version,
    counts: { episodes: offer.task.episodes, examples },
    metrics: { supportLoss: loss, queryLoss: loss, valF1: 0.5 },
    update,
    chunks: 0,
    secagg: null,
    privacy: null,
  };
}

export async function sendUpdate(socket: SiteSocket, msg: UpdateMessage | Uint8Array, timeoutMs = 4000): Promise<AckMessage> {
  const bytes = msg instanceof Uint8Array ? msg : encodeMessage(msg);
  const reply = await socket.timeout(timeoutMs).emitWithAck('update', bytes);
  return decode(reply) as AckMessage;
}

/** Sends an update as a header and `chunkValues`-sized chunks; returns every acknowledgement in order. */
export async function sendChunked(socket: SiteSocket, msg: UpdateMessage, chunkValues: number): Promise<AckMessage[]> {
  const vector = msg.update as Float32Array;
  const parts = chunkVector(vector, chunkValues);
  const acks = [await sendUpdate(socket, { ...msg, update: null, chunks: parts.length })];
  for (let index = 0; index < parts.length; index++) {
    const bytes = encodeMessage({ type: 'update-chunk', round: msg.round, index, count: parts.length, values: parts[index] as Float32Array });
    acks.push(decode(await socket.timeout(4000).emitWithAck('update-chunk', bytes)) as AckMessage);
  }
  return acks;
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor(check: () => boolean, ms = 4000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}
