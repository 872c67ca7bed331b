// The --rounds mode of bench-secagg: real rounds over loopback with and without secure aggregation (see there).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io as ioClient } from 'socket.io-client';
import type { Socket } from 'socket.io-client';
import { createLogger, decodeMessage, encodeMessage, PROTOCOL_VERSION } from '../packages/shared/src/index.js';
import type { ClientToServerEvents, HelloMessage, RoundOfferMessage, SecAggServerWire, ServerToClientEvents, UpdateMessage, WelcomeMessage } from '../packages/shared/src/index.js';
import { addSite, loadCoordinatorConfig, startCoordinator } from '../packages/coordinator/src/index.js';
import type { RunningCoordinator } from '../packages/coordinator/src/index.js';
import { SecAggParticipant } from '../packages/site-agent/src/secagg.js';

type SiteSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

function arg(name: string, fallback: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? fallback : hit.slice(name.length + 3);
}

const decode = (b: Uint8Array) => decodeMessage(b, { maxBytes: 1 << 30 });

/**
 * A site as light as it gets: the gradient of ||p - target||², then (on a secure round) the agent's own
 * SecAggParticipant for the phases. Counts the bytes of every message it sends and receives.
 */
class LightSite {
  sent = 0;
  received = 0;
  private participant: SecAggParticipant | null = null;
  private credential = '';
  private chunkValues = 1 << 18;

  constructor(
    readonly socket: SiteSocket,
    private readonly target: number,
  ) {
    const count = (event: string, handler: (bytes: Uint8Array) => void) =>
      (socket as unknown as Socket).on(event, (payload: Uint8Array) => {
        this.received += payload.byteLength;
        handler(payload);
      });
    count('welcome', (b) => {
      const w = decode(b) as WelcomeMessage;
      if (w.credential) this.credential = w.credential;
      this.chunkValues = w.chunkValues;
    });
    count('round-offer', (b) => void this.answer(decode(b) as RoundOfferMessage));
    for (const e of ['secagg-keys', 'secagg-delivery', 'secagg-survivors', 'secagg-confirmations']) {
      count(e, (b) => void this.phase(decode(b) as SecAggServerWire));
    }
  }

  private async emit(event: string, msg: Parameters<typeof encodeMessage>[0]): Promise<void> {
    const bytes = encodeMessage(msg);
    this.sent += bytes.byteLength;
    const reply = (await (this.socket as unknown as Socket).timeout(120_000).emitWithAck(event, bytes)) as Uint8Array;
    this.received += reply.byteLength;
  }

  private async answer(o: RoundOfferMessage): Promise<void> {
    const p = o.params as Float32Array;
    const update = new Float32Array(p.length);
    for (let i = 0; i < p.length; i++) update[i] = 2 * ((p[i] as number) - this.target);
    const msg: UpdateMessage = {
      type: 'update',
      round: o.round,
      version: o.version,
      counts: { episodes: 1, examples: 50 },
      metrics: { supportLoss: 1, queryLoss: 1 },
      update,
      chunks: 0,
      secagg: null,
      privacy: null,
    };
    if (o.secagg) {
      this.participant = new SecAggParticipant(o.round, o.secagg, this.credential, update, 50);
      msg.update = null;
      msg.secagg = this.participant.advertise();
    }
    await this.emit('update', msg);
  }

  private async phase(m: SecAggServerWire): Promise<void> {
    const p = this.participant;
    if (!p || !p.owns(m)) return;
    for (const reply of p.answer(m, this.chunkValues)) await this.emit(reply.type, reply);
  }
}

export interface RoundRow {
  sites: number;
  secure: boolean;
  degree: number | 'all';
  round_ms: number;
  sent_bytes: number;
  received_bytes: number;
}

async function federation(n: number, dim: number, secure: boolean, degree: number): Promise<{ c: RunningCoordinator; sites: LightSite[]; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'fedmeta-bench-secagg-'));
  const config = loadCoordinatorConfig({
    env: {},
    flags: {
      'server.host': '127.0.0.1',
      'server.port': 0,
      'server.allowInsecureHttp': true,
      'server.maxConnections': n + 10,
      'server.perConnectionMessagesPerSecond': 1000,
      dataDir: join(dir, 'state'),
      'model.inputDim': dim - 1,
      'model.hidden': [],
      rounds: { algorithm: 'reptile', innerSteps: 1, innerLr: 0.05, shots: 1, queryShots: 1, episodes: 1, sampleFraction: 1, minSites: n, quorum: n, deadlineSeconds: 300, continuous: false },
      optimizer: { kind: 'sgd', lr: 0.1 },
      seed: 5,
      privacy: {
        secureAggregation: { enabled: secure, threshold: 0.6, degree, clipNorm: 10 * Math.sqrt(dim), maxWeight: 100, phaseSeconds: 300 },
        dp: { mode: 'off', clipNorm: 1, noiseMultiplier: 1, delta: 1e-5, epsilonBudget: 10 },
      },
      logLevel: 'silent',
    },
  });
  const c = await startCoordinator(config, { logger: createLogger('bench', { level: 'silent' }) });
  const sites: LightSite[] = [];
  for (let i = 0; i < n; i++) {
    const name = `site-${String(i).padStart(3, '0')}`;
    const { token } = await addSite(c.store, name);
    const hello: HelloMessage = { type: 'hello', protocolVersion: PROTOCOL_VERSION, site: name, schemaFingerprint: 'none', agentVersion: 'bench/1', auth: { kind: 'enroll', token } };
    const socket: SiteSocket = ioClient(c.url, { auth: hello as unknown as Record<string, unknown>, transports: ['websocket'], reconnection: false, forceNew: true });
    const site = new LightSite(socket, (i % 7) / 7);
    await new Promise<void>((resolve, reject) => {
      socket.once('welcome', () => resolve());
      socket.once('connect_error', reject);
    });
    sites.push(site);
  }
  return { c, sites, dir };
}

async function measure(n: number, dim: number, secure: boolean, degree: number, repeat: number): Promise<RoundRow> {
  const { c, sites, dir } = await federation(n, dim, secure, degree);
  try {
    await c.engine.runRound(); // warm-up: connections, code paths, the first encodings
    for (const s of sites) {
      s.sent = 0;
      s.received = 0;
    }
    const t0 = performance.now();
    for (let r = 0; r < repeat; r++) {
      const record = await c.engine.runRound();
      if (record.status !== 'committed' || record.accepted !== n) throw new Error(`round ${record.round} did not commit with every site: ${record.reason ?? record.status}`);
    }
    const ms = (performance.now() - t0) / repeat;
    const mean = (f: (s: LightSite) => number) => sites.reduce((a, s) => a + f(s), 0) / sites.length / repeat;
    return { sites: n, secure, degree: degree === 0 || degree >= n - 1 ? 'all' : degree, round_ms: ms, sent_bytes: mean((s) => s.sent), received_bytes: mean((s) => s.received) };
  } finally {
    for (const s of sites) s.socket.disconnect();
    await c.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function roundTable(): Promise<RoundRow[]> {
  const dim = Number(arg('dim', '50000'));
  const repeat = Number(arg('repeat', '2'));
  const degree = Number(arg('degree', '0'));
  const counts = arg('sites', '10,50').split(',').map(Number);
  console.log(`real rounds over loopback: ${dim} parameters, one process for the coordinator and every site; mean of ${repeat} rounds after a warm-up\n`);
  const header = 'sites  secagg  degree  round ms  sent/site KiB  recv/site KiB  round x plain  sent x plain';
  console.log(header);
  console.log('-'.repeat(header.length));
  const rows: RoundRow[] = [];
  for (const n of counts) {
    const plain = await measure(n, dim, false, 0, repeat);
    const secure = await measure(n, dim, true, degree, repeat);
    for (const r of [plain, secure]) {
      rows.push(r);
      console.log(
        `${String(r.sites).padStart(5)}  ${(r.secure ? 'on' : 'off').padStart(6)}  ${String(r.secure ? r.degree : '-').padStart(6)}  ${r.round_ms.toFixed(0).padStart(8)}  ` +
          `${(r.sent_bytes / 1024).toFixed(1).padStart(13)}  ${(r.received_bytes / 1024).toFixed(1).padStart(13)}  ` +
          `${(r.round_ms / plain.round_ms).toFixed(2).padStart(13)}  ${(r.sent_bytes / plain.sent_bytes).toFixed(3).padStart(12)}`,
      );
    }
  }
  if (process.argv.includes('--json')) console.log(JSON.stringify({ dim, repeat, rounds: rows }));
  return rows;
}
