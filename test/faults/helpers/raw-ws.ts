// A WebSocket client written on a bare TCP socket, for peers that no library would let one be: frames with any
// header (a 2^63 length, reserved bits, unmasked, a control frame too long), frames cut short, raw engine.io and
// socket.io packets before or without authentication. It parses what the server sends back only as far as the
// tests need: text and binary frames, and the close.
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';

export interface FrameOptions {
  /** 1 text, 2 binary, 0 continuation, 8 close, 9 ping, 10 pong, or an undefined opcode. */
  opcode: number;
  fin?: boolean;
  /** Reserved bits (0..7), which the server must refuse without a negotiated extension. */
  rsv?: number;
  /** Clients must mask; false sends the payload in clear, which the server must refuse. */
  mask?: boolean;
  /** A length to claim in the header instead of the payload's own. */
  claimLength?: bigint | number;
}

/** One WebSocket frame as bytes. */
export function frame(payload: Uint8Array, o: FrameOptions): Buffer {
  const len = o.claimLength !== undefined ? BigInt(o.claimLength) : BigInt(payload.length);
  const mask = o.mask ?? true;
  const head: number[] = [((o.fin ?? true) ? 0x80 : 0) | (((o.rsv ?? 0) & 7) << 4) | (o.opcode & 0x0f)];
  let ext = Buffer.alloc(0);
  if (len < 126n) head.push((mask ? 0x80 : 0) | Number(len));
  else if (len < 65536n) {
    head.push((mask ? 0x80 : 0) | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(Number(len));
  } else {
    head.push((mask ? 0x80 : 0) | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(BigInt.asUintN(64, len));
  }
  const body = Buffer.from(payload);
  if (!mask) return Buffer.concat([Buffer.from(head), ext, body]);
  const key = randomBytes(4);
  for (let i = 0; i < body.length; i++) body[i] = (body[i] as number) ^ (key[i % 4] as number);
  return Buffer.concat([Buffer.from(head), ext, key, body]);
}

export interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

export class RawWs {
  readonly frames: ServerFrame[] = [];
  /** Called with every text frame the server sends. */
  onText: ((text: string) => void) | null = null;
  readonly closed: Promise<void>;
  private buf = Buffer.alloc(0);
  private upgraded = false;
  private isClosed = false;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    this.closed = new Promise((resolve) => {
      const done = (): void => {
        this.isClosed = true;
        this.wake();
        resolve();
      };
      socket.once('close', done);
    });
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => this.onData(d));
  }

  /** A TCP connection, nothing sent yet. */
  static tcp(port: number): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1');
      s.setNoDelay(true);
      s.once('connect', () => resolve(new RawWs(s)));
      s.once('error', reject);
    });
  }

  /** A WebSocket to socket.io's engine, upgraded; resolves once the engine.io open packet has arrived, or null if refused. */
  static async open(port: number, timeoutMs = 5000): Promise<RawWs | null> {
    const ws = await RawWs.tcp(port).catch(() => null);
    if (!ws) return null;
    const key = randomBytes(16).toString('base64');
    ws.socket.write(
      'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    const ok = await ws.until(() => ws.frames.some((f) => f.opcode === 1 && f.payload[0] === 0x30), timeoutMs);
    if (!ok) {
      ws.destroy();
      return null;
    }
    return ws;
  }

  get isOpen(): boolean {
    return !this.isClosed && !this.socket.destroyed;
  }

  send(bytes: Uint8Array): void {
    if (this.isOpen) this.socket.write(bytes);
  }

  text(s: string): void {
    this.send(frame(Buffer.from(s, 'utf8'), { opcode: 1 }));
  }

  binary(b: Uint8Array): void {
    this.send(frame(b, { opcode: 2 }));
  }

  /** Text frames received so far, as strings. */
  texts(): string[] {
    return this.frames.filter((f) => f.opcode === 1).map((f) => f.payload.toString('utf8'));
  }

  /** Resolves true as soon as `cond` holds, false at the timeout or when the connection closes first. */
  until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (cond()) finish(true);
        else if (this.isClosed) finish(false);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      const finish = (v: boolean): void => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve(v);
      };
      this.waiters.push(check);
      check();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    if (!this.upgraded) {
      const at = this.buf.indexOf('\r\n\r\n');
      if (at === -1) return;
      const head = this.buf.subarray(0, at).toString('latin1');
      this.buf = this.buf.subarray(at + 4);
      if (!head.startsWith('HTTP/1.1 101')) {
        this.socket.destroy();
        return;
      }
      this.upgraded = true;
    }
    for (;;) {
      const b = this.buf;
      if (b.length < 2) break;
      const opcode = (b[0] as number) & 0x0f;
      let len = (b[1] as number) & 0x7f;
      let at = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        at = 10;
      }
      if (b.length < at + len) break;
      const payload = Buffer.from(b.subarray(at, at + len));
      this.frames.push({ opcode, payload });
      if (opcode === 1) this.onText?.(payload.toString('utf8'));
      this.buf = b.subarray(at + len);
      // Keep the engine alive the way a client must: answer its pings ("2") with pongs ("3").
      if (opcode === 1 && len === 1 && payload[0] === 0x32) this.text('3');
      // The server closes: echo the close frame, as a client must, and hang up.
      if (opcode === 8) {
        this.send(frame(payload.subarray(0, 2), { opcode: 8 }));
        this.socket.end();
        this.isClosed = true;
      }
    }
    // Only the latest frames matter to the tests; keep memory flat on long connections.
    if (this.frames.length > 512) this.frames.splice(0, this.frames.length - 256);
    this.wake();
  }
}
