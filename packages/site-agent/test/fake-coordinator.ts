// A stand-in coordinator for the agent's tests: a real socket.io server on a loopback port that speaks the
// protocol (binary messages, coded refusals at the handshake) and records every byte an agent sends.
import { createServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Server, type Socket } from 'socket.io';
import {
  PROTOCOL_VERSION,
  chunkVector,
  decodeMessage,
  encodeMessage,
  initParams,
  maxMessageBytes,
  type AckMessage,
  type ClientToServerEvents,
  type ErrorCode,
  type FlatParams,
  type HelloMessage,
  type ModelSpec,
  type RoundTask,
  type ServerToClientEvents,
  type UpdateChunkMessage,
  type UpdateMessage,
} from '@fedmeta/shared';

// tanh rather than the agent's usual relu: the agent must build the network the coordinator names.
export const SMALL_SPEC: ModelSpec = { inputDim: 85, hidden: [16], activation: 'tanh', task: { kind: 'binary' } };
export const SMALL_TASK: RoundTask = { algorithm: 'fomaml', innerSteps: 2, innerLr: 0.05, shots: 4, queryShots: 6, episodes: 2, seed: 11 };

type HubSocket = Socket<ClientToServerEvents, ServerToClientEvents>;

export interface Received {
  event: 'update' | 'update-chunk';
  msg: UpdateMessage | UpdateChunkMessage;
}

export interface FakeOptions {
  port?: number;
  /** A coded refusal for a handshake, or null to admit it. */
  refuse?: (hello: HelloMessage, attempt: number) => { code: ErrorCode; message: string } | null;
  /** Credential handed out in the welcome of an enrolling site. */
  credential?: string;
  /** Whether to acknowledge updates (false: keep them unanswered, as a coordinator killed mid-round). */
  ack?: boolean;
  /** Serve HTTPS with this PEM certificate and key. */
  tls?: { cert: string; key: string };
  /** Values per update message the welcome announces (default: the whole model in one message). */
  chunkValues?: number;
}

export class FakeCoordinator {
  readonly http: HttpServer;
  readonly io: Server<ClientToServerEvents, ServerToClientEvents>;
  /** Every handshake `auth` object, as received. */
  readonly handshakes: unknown[] = [];
  /** Every engine.io packet payload a client sent (text frames and binary attachments), in order. */
  readonly rawFrames: Array<string | Buffer> = [];
  readonly received: Received[] = [];
  readonly sockets: HubSocket[] = [];
  params: FlatParams = initParams(SMALL_SPEC, 3);
  private attempts = 0;

  constructor(private readonly opts: FakeOptions = {}) {
    this.http = opts.tls ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }) : createServer();
    this.io = new Server(this.http, { maxHttpBufferSize: 4 * 1024 * 1024 });
    this.io.engine.on('connection', (conn: { on: (e: string, f: (p: { data?: unknown }) => void) => void }) => {
      conn.on('packet', (p) => {
        if (typeof p.data === 'string' || Buffer.isBuffer(p.data)) this.rawFrames.push(p.data);
      });
    });
    this.io.use((socket, next) => {
      this.handshakes.push(socket.handshake.auth);
      const refusal = this.opts.refuse?.(socket.handshake.auth as HelloMessage, this.attempts++) ?? null;
      if (refusal === null) return next();
      const err = new Error(`${refusal.code}: ${refusal.message}`) as Error & { data?: unknown };
      err.data = { code: refusal.code, message: `${refusal.code}: ${refusal.message}` };
      next(err);
    });
    this.io.on('connection', (socket) => {
      this.sockets.push(socket);
      const hello = socket.handshake.auth as HelloMessage;
      const enrolling = hello.auth.kind === 'enroll';
      socket.emit(
        'welcome',
        encodeMessage({
          type: 'welcome',
          protocolVersion: PROTOCOL_VERSION,
          site: hello.site,
          currentVersion: 0,
          round: null,
          released: null,
          chunkValues: this.chunkValues,
          maxMessageBytes: maxMessageBytes(this.params.values.length, this.chunkValues),
          ...(enrolling && this.opts.credential !== undefined ? { credential: this.opts.credential } : {}),
        }),
      );
      const on = (event: 'update' | 'update-chunk') => (payload: Uint8Array, ack: (reply: Uint8Array) => void) => {
        const msg = decodeMessage(payload, { maxBytes: 4 * 1024 * 1024, accept: [event] }) as UpdateMessage | UpdateChunkMessage;
        this.received.push({ event, msg });
        if (this.opts.ack === false) return;
        const reply: AckMessage = { type: 'ack', round: msg.round, accepted: true };
        ack(encodeMessage(reply));
      };
      socket.on('update', on('update'));
      socket.on('update-chunk', on('update-chunk'));
    });
  }

  get chunkValues(): number {
    return this.opts.chunkValues ?? this.params.values.length;
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.http.listen(this.opts.port ?? 0, '127.0.0.1', resolve));
    return (this.http.address() as AddressInfo).port;
  }

  get url(): string {
    return `${this.opts.tls ? 'https' : 'http'}://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  /** Offers a round to every connected site: parameters inline, or in `chunks` params-chunk messages. */
  offer(round: number, opts: { chunks?: number; version?: number; task?: RoundTask } = {}): void {
    const version = opts.version ?? 0;
    const chunks = opts.chunks ?? 0;
    const pieces = chunks > 0 ? chunkVector(this.params.values, Math.ceil(this.params.values.length / chunks)) : [];
    this.io.emit(
      'round-offer',
      encodeMessage({
        type: 'round-offer',
        round,
        version,
        task: opts.task ?? SMALL_TASK,
        spec: SMALL_SPEC,
        manifest: this.params.manifest,
        params: chunks > 0 ? null : this.params.values,
        chunks: pieces.length,
        deadline: Date.now() + 60_000,
      }),
    );
    pieces.forEach((values, index) =>
      this.io.emit('params-chunk', encodeMessage({ type: 'params-chunk', version, index, count: pieces.length, values: values.slice() })),
    );
  }

  release(version: number): void {
    this.io.emit('release', encodeMessage({ type: 'release', version, spec: SMALL_SPEC, manifest: this.params.manifest, params: this.params.values, chunks: 0 }));
  }

  updates(): UpdateMessage[] {
    return this.received.filter((r) => r.event === 'update').map((r) => r.msg as UpdateMessage);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.disconnect(true);
    await new Promise<void>((resolve) => this.io.close(() => resolve()));
  }
}
