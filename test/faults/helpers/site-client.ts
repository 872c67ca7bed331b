// A site's socket.io connection driven by a test rather than by an agent: it enrolls, keeps its credential, follows
// the round offers (so that it knows which round is open) and sends whatever a generator gives it, as fast as the
// coordinator acknowledges, with a bounded number of messages in flight so that neither side buffers without end.
import { io as ioClient, type Socket } from 'socket.io-client';
import { PROTOCOL_VERSION, decodeMessage } from '@fedmeta/shared';
import type { FuzzContext, FuzzMessage } from './fuzz.js';

export interface Tally {
  sent: number;
  byKind: Record<string, number>;
  /** Messages the coordinator acknowledged as taken (an update accepted, a chunk taken, a header taken). */
  accepted: number;
  /** Refusals the coordinator acknowledged, by code. */
  refused: Record<string, number>;
  /** Messages that expected an acknowledgement and got none (the connection dropped, or the wait timed out). */
  noAck: number;
  /** Times the coordinator closed this connection. */
  cut: number;
}

export const newTally = (): Tally => ({ sent: 0, byKind: {}, accepted: 0, refused: {}, noAck: 0, cut: 0 });

export function add(into: Record<string, number>, key: string, n = 1): void {
  into[key] = (into[key] ?? 0) + n;
}

export const total = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);

export class SiteClient {
  readonly socket: Socket;
  readonly ctx: FuzzContext;
  private credential: string | null = null;
  private welcomed: (() => void) | null = null;
  disconnects = 0;

  private constructor(url: string, site: string, token: string, fingerprint: string, dim: number, credential: string | null) {
    this.credential = credential;
    this.ctx = { round: 0, version: 0, dim, chunkValues: dim, maxMessageBytes: 65_536 };
    const hello = () => ({
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      site,
      schemaFingerprint: fingerprint,
      agentVersion: 'faults/1',
      auth: this.credential ? { kind: 'credential', credential: this.credential } : { kind: 'enroll', token },
    });
    this.socket = ioClient(url, {
      auth: (cb) => cb(hello()),
      transports: ['websocket'],
      forceNew: true,
      reconnection: true,
      reconnectionDelay: 50,
      reconnectionDelayMax: 200,
    });
    const limits = { maxBytes: 64 << 20 };
    this.socket.on('welcome', (payload: Uint8Array) => {
      const w = decodeMessage(payload, { ...limits, accept: ['welcome'] });
      if (w.type !== 'welcome') return;
      if (w.credential) this.credential = w.credential;
      this.ctx.chunkValues = w.chunkValues;
      this.ctx.maxMessageBytes = w.maxMessageBytes;
      this.ctx.version = w.currentVersion;
      if (w.round !== null) this.ctx.round = w.round;
      this.welcomed?.();
    });
    this.socket.on('round-offer', (payload: Uint8Array) => {
      const o = decodeMessage(payload, { ...limits, accept: ['round-offer'] });
      if (o.type !== 'round-offer') return;
      this.ctx.round = o.round;
      this.ctx.version = o.version;
    });
    this.socket.on('disconnect', () => this.disconnects++);
  }

  /** Connects (enrolling with `token` the first time) and resolves once welcomed. */
  static async connect(url: string, site: string, token: string, fingerprint: string, dim: number, timeoutMs = 15_000, credential: string | null = null): Promise<SiteClient> {
    const c = new SiteClient(url, site, token, fingerprint, dim, credential);
    await c.untilWelcomed(timeoutMs);
    return c;
  }

  /** The credential received at enrollment, for a later connection of the same site. */
  get siteCredential(): string | null {
    return this.credential;
  }

  untilWelcomed(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no welcome from the coordinator')), timeoutMs);
      this.welcomed = () => {
        clearTimeout(timer);
        this.welcomed = null;
        resolve();
      };
    });
  }

  close(): void {
    this.socket.close();
  }

  /**
   * Sends what `next` gives until it returns null, keeping at most `window` acknowledged messages in flight;
   * when the coordinator cuts the connection, waits for the reconnection and the new welcome.
   */
  async send(next: () => FuzzMessage | null, tally: Tally, opts: { window?: number; ackTimeoutMs?: number } = {}): Promise<void> {
    const window = opts.window ?? 64;
    const ackTimeoutMs = opts.ackTimeoutMs ?? 10_000;
    let inflight = 0;
    let freed: (() => void) | null = null;
    const release = (): void => {
      inflight--;
      freed?.();
    };
    for (let i = 0; ; i++) {
      if (!this.socket.connected) {
        tally.cut++;
        const welcomed = this.untilWelcomed(30_000);
        // A socket the server closed on purpose is not reconnected by the manager.
        if (!this.socket.active) this.socket.connect();
        await welcomed;
        continue;
      }
      if (inflight >= window) {
        await new Promise<void>((r) => (freed = r));
        freed = null;
        continue;
      }
      const m = next();
      if (m === null) break;
      tally.sent++;
      add(tally.byKind, m.kind);
      if (!m.ack) {
        this.socket.emit(m.event, ...m.args);
      } else {
        inflight++;
        this.socket.timeout(ackTimeoutMs).emit(m.event, ...m.args, (err: Error | null, reply: unknown) => {
          release();
          if (err || !(reply instanceof Uint8Array)) {
            tally.noAck++;
            return;
          }
          const ack = decodeMessage(reply, { maxBytes: 1 << 20, accept: ['ack'] });
          if (ack.type !== 'ack') return;
          if (ack.accepted) tally.accepted++;
          else add(tally.refused, ack.error?.code ?? 'no code');
        });
      }
      // Let the coordinator (in this same process) and the acknowledgements run.
      if (i % 128 === 127) await new Promise((r) => setImmediate(r));
    }
    while (inflight > 0) {
      await new Promise<void>((r) => (freed = r));
      freed = null;
    }
  }
}
