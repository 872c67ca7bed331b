// The unauthenticated peer: it speaks WebSocket, engine.io and socket.io by hand. Most of what it sends are
// socket.io CONNECT packets with mutated hello messages, several per connection, each answered by a coded refusal;
// the rest are things that must cost it the connection: broken frames, lying length headers, packets before any
// namespace is joined, binary attachments it never finishes.
import { frame, RawWs } from './raw-ws.js';
import { HelloFuzzer, prng, randomBytes } from './fuzz.js';
import { add } from './site-client.js';

export interface UnauthTally {
  sent: number;
  byKind: Record<string, number>;
  /** CONNECT refusals (socket.io's CONNECT_ERROR), by the code the coordinator put in them. */
  refused: Record<string, number>;
  connections: number;
  /** Upgrades the server did not accept (the connection cap). */
  upgradesRefused: number;
  /** Connections the server closed after a message that must cost the peer its connection. */
  closedByServer: number;
  /** Of those fatal messages, the ones after which the server kept the connection (a truncated frame awaits its end). */
  leftOpen: number;
  /** The kinds of those. */
  leftOpenByKind: Record<string, number>;
}

export const newUnauthTally = (): UnauthTally => ({ sent: 0, byKind: {}, refused: {}, connections: 0, upgradesRefused: 0, closedByServer: 0, leftOpen: 0, leftOpenByKind: {} });

/** Messages after which the peer has no business staying connected. */
function fatal(rnd: () => number, maxFrameBytes: number): { kind: string; bytes: Uint8Array } {
  const pick = Math.floor(rnd() * 15);
  const sio = (s: string): Uint8Array => frame(Buffer.from(s, 'utf8'), { opcode: 1 });
  switch (pick) {
    case 0:
      return { kind: 'ws: 2^63-1 length header', bytes: frame(randomBytes(8, rnd), { opcode: 2, claimLength: 2n ** 63n - 1n }) };
    case 1:
      return { kind: 'ws: frame over the size limit', bytes: frame(randomBytes(64, rnd), { opcode: 2, claimLength: maxFrameBytes + 1 + Math.floor(rnd() * 1e6) }) };
    case 2:
      return { kind: 'ws: truncated frame', bytes: frame(randomBytes(10, rnd), { opcode: 1, claimLength: 1000 }).subarray(0, 12) };
    case 3:
      return { kind: 'ws: unmasked client frame', bytes: frame(Buffer.from('40{}'), { opcode: 1, mask: false }) };
    case 4:
      return { kind: 'ws: reserved bits set', bytes: frame(Buffer.from('40{}'), { opcode: 1, rsv: 1 + Math.floor(rnd() * 7) }) };
    case 5:
      return { kind: 'ws: undefined opcode', bytes: frame(randomBytes(4, rnd), { opcode: [3, 4, 5, 6, 7, 11, 12, 13, 14, 15][Math.floor(rnd() * 10)] as number }) };
    case 6:
      return { kind: 'ws: control frame too long', bytes: frame(randomBytes(200, rnd), { opcode: 9 }) };
    case 7:
      return { kind: 'ws: invalid UTF-8 text', bytes: frame(Uint8Array.from([0x34, 0x30, 0xff, 0xfe, 0xc3]), { opcode: 1 }) };
    case 8:
      return { kind: 'engine.io: unknown packet type', bytes: sio(`9${'z'.repeat(Math.floor(rnd() * 64))}`) };
    case 9:
      return { kind: 'socket.io: event before CONNECT', bytes: sio('42["update",{"round":1}]') };
    case 10:
      return { kind: 'socket.io: malformed packet', bytes: sio(['4Z{', '42[', '4/,{', '41-', '45x-[]', '40["x"]'][Math.floor(rnd() * 6)] as string) };
    case 11:
      return { kind: 'socket.io: too many attachments', bytes: sio(`45${11 + Math.floor(rnd() * 1e6)}-["update",{"_placeholder":true,"num":0}]`) };
    case 12:
      return { kind: 'socket.io: CONNECT payload not an object', bytes: sio(`40${['null', '[]', '"hello"', '{"x":'][Math.floor(rnd() * 4)] as string}`) };
    case 13:
      // Announces two attachments and sends the first: a decoder that waited would keep it in memory.
      return {
        kind: 'socket.io: attachments announced and withheld',
        bytes: Buffer.concat([sio(`452-["update",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), frame(randomBytes(4096, rnd), { opcode: 2 })]),
      };
    default:
      return { kind: 'socket.io: binary frame out of turn', bytes: frame(randomBytes(1 + Math.floor(rnd() * 512), rnd), { opcode: 2 }) };
  }
}

/**
 * Sends `count` messages as an unauthenticated peer, impersonating `valid.site` without its credential.
 * `maxFrameBytes` is the coordinator's maxHttpBufferSize.
 */
export async function fuzzUnauthenticated(
  port: number,
  count: number,
  seed: number,
  valid: { site: string; schemaFingerprint: string },
  maxFrameBytes: number,
): Promise<UnauthTally> {
  const t = newUnauthTally();
  const hellos = new HelloFuzzer(seed, valid);
  const rnd = prng(seed ^ 0x5bd1e995);
  const WINDOW = 16;
  let ws: RawWs | null = null;
  // Per connection: handshakes awaiting their refusal, and handshakes sent.
  let state = { outstanding: 0, sent: 0 };
  while (t.sent < count) {
    if (ws === null || !ws.isOpen) {
      ws?.destroy();
      ws = await RawWs.open(port);
      t.connections++;
      if (ws === null) {
        t.upgradesRefused++;
        continue;
      }
      const mine = { outstanding: 0, sent: 0 };
      state = mine;
      ws.onText = (text) => {
        if (!text.startsWith('44')) return;
        mine.outstanding--;
        try {
          const body = JSON.parse(text.slice(2)) as { data?: { code?: string }; message?: string };
          add(t.refused, body.data?.code ?? `socket.io: ${body.message ?? 'refused'}`);
        } catch {
          add(t.refused, 'unreadable refusal');
        }
      };
    }
    const conn: RawWs = ws;
    // About 40 handshakes per connection, then something that should end it.
    const st = state;
    if (st.sent < 40 || rnd() < 0.9) {
      if (st.outstanding >= WINDOW) {
        await conn.until(() => st.outstanding < WINDOW || !conn.isOpen, 5000);
        if (st.outstanding >= WINDOW && conn.isOpen) conn.destroy();
        continue;
      }
      const h = hellos.next();
      conn.text(`40${h.json}`);
      st.outstanding++;
      st.sent++;
      t.sent++;
      add(t.byKind, h.kind);
      continue;
    }
    const f = fatal(rnd, maxFrameBytes);
    conn.send(f.bytes);
    t.sent++;
    add(t.byKind, f.kind);
    // A truncated frame is awaited by the server (until its heartbeat gives up on the peer): no point waiting here.
    const closed = await conn.until(() => !conn.isOpen, f.kind === 'ws: truncated frame' ? 20 : 2000);
    if (closed) t.closedByServer++;
    else {
      t.leftOpen++;
      add(t.leftOpenByKind, f.kind);
      conn.destroy();
    }
  }
  ws?.destroy();
  return t;
}
