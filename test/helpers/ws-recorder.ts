// A TCP proxy on loopback that records every byte a WebSocket client sends to the server behind it and decodes
// it: the HTTP upgrade request, then the client's frames, unmasked (a client masks every frame with a random key,
// so the raw bytes could hide anything) and reassembled from fragments. What the server sends back is forwarded
// and only scanned for a negotiated compression, which would make the recorded payloads unreadable.
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface RecordedFrame {
  /** 1 text, 2 binary, 8 close, 9 ping, 10 pong. */
  opcode: number;
  payload: Buffer;
}

export interface RecordedConnection {
  /** The HTTP request head the client sent before switching protocols. */
  request: string;
  /** The server's response head. */
  response: string;
  frames: RecordedFrame[];
  /** Frames with a reserved bit set (compressed or otherwise transformed): must stay 0 for the record to be complete. */
  transformed: number;
  /** Bytes that did not parse as frames (a truncated last frame when the connection dropped). */
  leftover: number;
}

const HEAD_END = Buffer.from('\r\n\r\n');

class FrameParser {
  private buf = Buffer.alloc(0);
  private headDone = false;
  private fragments: { opcode: number; parts: Buffer[] } | null = null;

  constructor(private readonly rec: RecordedConnection) {}

  push(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    if (!this.headDone) {
      const at = this.buf.indexOf(HEAD_END);
      if (at === -1) return;
      this.rec.request = this.buf.subarray(0, at).toString('latin1');
      this.buf = this.buf.subarray(at + HEAD_END.length);
      this.headDone = true;
    }
    for (;;) {
      const frame = this.next();
      if (frame === null) break;
    }
    this.rec.leftover = this.buf.length;
  }

  private next(): true | null {
    const b = this.buf;
    if (b.length < 2) return null;
    const fin = (b[0]! & 0x80) !== 0;
    if ((b[0]! & 0x70) !== 0) this.rec.transformed++;
    const opcode = b[0]! & 0x0f;
    const masked = (b[1]! & 0x80) !== 0;
    let len = b[1]! & 0x7f;
    let at = 2;
    if (len === 126) {
      if (b.length < 4) return null;
      len = b.readUInt16BE(2);
      at = 4;
    } else if (len === 127) {
      if (b.length < 10) return null;
      len = Number(b.readBigUInt64BE(2));
      at = 10;
    }
    const maskAt = at;
    if (masked) at += 4;
    if (b.length < at + len) return null;
    const payload = Buffer.from(b.subarray(at, at + len));
    if (masked) for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ b[maskAt + (i % 4)]!;
    this.buf = b.subarray(at + len);
    if (opcode >= 8) {
      this.rec.frames.push({ opcode, payload });
    } else if (opcode === 0 && this.fragments !== null) {
      this.fragments.parts.push(payload);
    } else {
      this.fragments = { opcode, parts: [payload] };
    }
    if (fin && opcode < 8 && this.fragments !== null) {
      this.rec.frames.push({ opcode: this.fragments.opcode, payload: Buffer.concat(this.fragments.parts) });
      this.fragments = null;
    }
    return true;
  }
}

export class RecordingProxy {
  readonly connections: RecordedConnection[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((client) => this.relay(client));
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  private relay(client: Socket): void {
    const rec: RecordedConnection = { request: '', response: '', frames: [], transformed: 0, leftover: 0 };
    this.connections.push(rec);
    const parser = new FrameParser(rec);
    const upstream = connect(this.target.port, this.target.host);
    this.sockets.add(client);
    this.sockets.add(upstream);
    let responseHead = Buffer.alloc(0);
    client.on('data', (d: Buffer) => {
      parser.push(d);
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (rec.response === '') {
        responseHead = Buffer.concat([responseHead, d]);
        const at = responseHead.indexOf(HEAD_END);
        if (at !== -1) rec.response = responseHead.subarray(0, at).toString('latin1');
      }
      client.write(d);
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('close', end);
      s.on('error', end);
    }
  }

  /** Every data frame (text or binary) of every connection, in order. */
  dataFrames(): RecordedFrame[] {
    return this.connections.flatMap((c) => c.frames.filter((f) => f.opcode === 1 || f.opcode === 2));
  }

  /** Everything the client sent, as it means it: request heads and unmasked payloads. */
  plainBytes(): Buffer {
    return Buffer.concat(this.connections.flatMap((c) => [Buffer.from(c.request, 'latin1'), ...c.frames.map((f) => f.payload)]));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
