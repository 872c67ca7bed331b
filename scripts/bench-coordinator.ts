// The coordinator under load: N light simulated sites (real socket.io clients spread over a few child processes,
// answering every round offer with a precomputed update) against one coordinator on loopback, for N = 100, 300
// and 1,000 sites and a 50,000-parameter model by default. Per N, a fresh coordinator process runs a few rounds
// and reports:
// - round overhead: from the last update the engine accepted to the new version committed (aggregation, the
//   optimizer step, the durable checkpoint write);
// - wire ratio: bytes the coordinator read from its sockets while collecting, per update, over 4 x parameters;
// - aggregation throughput: float32 update bytes aggregated (with the optimizer step) per second;
// - the coordinator process's peak RSS;
// - a reference measured in the same run: one float64 accumulation pass over the same number of float32
//   updates in this process (the least any aggregation must do), and the coordinator's aggregation time over it.
// Prints a table with the commit and the machine; `--json` adds one JSON object on the last line.
// Usage: node --conditions=fedmeta-source --import tsx scripts/bench-coordinator.ts [--sites=100,300,1000]
//        [--params=50000] [--rounds=3] [--procs=2] [--json]
import { execSync, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket as NetSocket } from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { io as ioClient, type Socket } from 'socket.io-client';
import { PROTOCOL_VERSION, createLogger, decodeMessageOf, encodeMessage } from '../packages/shared/src/index.js';
import type { ClientToServerEvents, HelloMessage, ServerToClientEvents } from '../packages/shared/src/index.js';
import { loadCoordinatorConfig } from '../packages/coordinator/src/config.js';
import { startCoordinator } from '../packages/coordinator/src/serve.js';
import { FileStateStore } from '../packages/coordinator/src/state/file-store.js';
import { CREDENTIAL_PREFIX, hashSecret } from '../packages/coordinator/src/state/registry.js';
import { updateMessages } from '../packages/site-agent/src/uplink.js';

const SCRIPT = fileURLToPath(import.meta.url);
/** Input width of the benchmark model; one hidden layer is sized so that the model has about --params values. */
const INPUT_DIM = 100;

function arg(name: string, fallback: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? fallback : hit.slice(name.length + 3);
}

interface SiteCredential {
  name: string;
  credential: string;
}

interface RoundMetrics {
  round: number;
  sampled: number;
  accepted: number;
  collectS: number;
  overheadS: number;
  /** CPU time the coordinator process spent in the overhead window: what a quiet machine would take as wall time. */
  overheadCpuS: number;
  aggregateMs: number;
  commitMs: number;
  wireBytes: number;
}

type ToCoordinator = { type: 'run'; sites: number; rounds: number } | { type: 'stop' };
type FromCoordinator =
  | { type: 'ready'; port: number; params: number }
  | { type: 'round'; metrics: RoundMetrics }
  | { type: 'done'; peakRssMb: number }
  | { type: 'error'; message: string };
type ToAgents = { type: 'start'; url: string; sites: SiteCredential[]; params: number } | { type: 'stop' };
type FromAgents = { type: 'connected'; count: number } | { type: 'error'; message: string };

// ------------------------------------------------------------------------------------------------ coordinator

function coordinatorConfig(dataDir: string, hidden: number, sites: number) {
  return loadCoordinatorConfig({
    env: {},
    flags: {
      'server.host': '127.0.0.1',
      'server.port': 0,
      'server.allowInsecureHttp': true,
      'server.maxConnections': sites + 100,
      dataDir,
      'model.inputDim': INPUT_DIM,
      'model.hidden': [hidden],
      'rounds.sampleFraction': 1,
      'rounds.minSites': sites,
      'rounds.quorum': sites,
      'rounds.deadlineSeconds': 600,
      'rounds.algorithm': 'fomaml',
      aggregator: 'mean',
      optimizer: { kind: 'adam', lr: 0.001 },
      seed: 1,
      logLevel: 'warn',
    },
  });
}

async function coordinatorRole(): Promise<void> {
  const dataDir = arg('data-dir', '');
  const hidden = Number(arg('hidden', '0'));
  const sites = Number(arg('n', '0'));
  const send = (m: FromCoordinator): void => void process.send?.(m);
  const running = await startCoordinator(coordinatorConfig(dataDir, hidden, sites), { logger: createLogger('bench-coordinator', { level: 'error' }) });
  // Bytes the coordinator reads from the sites, counted on the TCP sockets themselves: frames, headers and all.
  const sockets = new Set<NetSocket>();
  running.hub.io.httpServer.on('connection', (s: NetSocket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const bytesRead = (): number => {
    let n = 0;
    for (const s of sockets) n += s.bytesRead;
    return n;
  };
  const engine = running.engine;
  let roundStart = 0;
  let bytesAtStart = 0;
  let lastAccepted = 0;
  let lastCpu = process.cpuUsage();
  let accepted = 0;
  engine.on('round-started', () => {
    roundStart = performance.now();
    bytesAtStart = bytesRead();
    accepted = 0;
  });
  engine.on('update-accepted', () => {
    lastAccepted = performance.now();
    lastCpu = process.cpuUsage();
    accepted++;
  });
  engine.on('round-committed', ({ record, timings }) => {
    const committedAt = performance.now();
    const cpu = process.cpuUsage(lastCpu);
    send({
      type: 'round',
      metrics: {
        round: record.round,
        sampled: record.sampled.length,
        accepted: record.accepted,
        collectS: (lastAccepted - roundStart) / 1000,
        overheadS: (committedAt - lastAccepted) / 1000,
        overheadCpuS: (cpu.user + cpu.system) / 1e6,
        aggregateMs: timings.aggregateMs,
        commitMs: timings.commitMs,
        wireBytes: (bytesRead() - bytesAtStart) / Math.max(1, accepted),
      },
    });
  });
  process.on('message', (m: ToCoordinator) => {
    void (async () => {
      if (m.type === 'stop') {
        await running.close();
        process.exit(0);
      }
      try {
        while (running.hub.online().length < m.sites) await new Promise((r) => setTimeout(r, 50));
        await engine.runRounds(m.rounds);
        send({ type: 'done', peakRssMb: process.resourceUsage().maxRSS / 1024 });
      } catch (e) {
        send({ type: 'error', message: e instanceof Error ? e.message : String(e) });
      }
    })();
  });
  send({ type: 'ready', port: running.port, params: engine.params().length });
}

// ------------------------------------------------------------------------------------------------ agents

/**
 * Light sites: each answers an offer with the same precomputed update, encoded once per round for all the
 * sites of this process, at the chunk size the coordinator's welcome announced.
 */
function agentsRole(): void {
  const send = (m: FromAgents): void => void process.send?.(m);
  const sockets: Socket<ServerToClientEvents, ClientToServerEvents>[] = [];
  process.on('message', (m: ToAgents) => {
    if (m.type === 'stop') {
      for (const s of sockets) s.disconnect();
      setTimeout(() => process.exit(0), 100);
      return;
    }
    const update = new Float32Array(m.params);
    for (let i = 0; i < update.length; i++) update[i] = Math.sin(i * 12.9898 + process.pid) * 1e-3;
    const encoded = new Map<string, Uint8Array[]>();
    const messagesFor = (round: number, version: number, chunkValues: number): Uint8Array[] => {
      const key = `${round}/${version}/${chunkValues}`;
      let out = encoded.get(key);
      if (!out) {
        const u = { round, version, update, counts: { episodes: 4, examples: 120 }, metrics: { supportLoss: 0.6, queryLoss: 0.4, valF1: 0.8 } };
        const { header, chunks } = updateMessages(u, chunkValues);
        out = [encodeMessage(header), ...chunks.map((c) => encodeMessage(c))];
        encoded.clear();
        encoded.set(key, out);
      }
      return out;
    };
    let welcomed = 0;
    const limits = { maxBytes: 4 * m.params + (1 << 20) };
    const connectOne = (site: SiteCredential): void => {
      const hello: HelloMessage = {
        type: 'hello',
        protocolVersion: PROTOCOL_VERSION,
        site: site.name,
        schemaFingerprint: 'bench',
        agentVersion: 'bench/1',
        auth: { kind: 'credential', credential: site.credential },
      };
      const s: Socket<ServerToClientEvents, ClientToServerEvents> = ioClient(m.url, {
        transports: ['websocket'],
        forceNew: true,
        auth: hello as unknown as Record<string, unknown>,
        reconnectionDelay: 200,
      });
      sockets.push(s);
      let chunkValues = m.params;
      s.on('welcome', (payload) => {
        chunkValues = decodeMessageOf('welcome', payload, limits).chunkValues;
        if (++welcomed === m.sites.length) send({ type: 'connected', count: welcomed });
      });
      s.on('round-offer', (payload) => {
        const offer = decodeMessageOf('round-offer', payload, limits);
        void (async () => {
          const [head, ...chunks] = messagesFor(offer.round, offer.version, chunkValues);
          await s.timeout(600_000).emitWithAck('update', head as Uint8Array);
          for (const c of chunks) await s.timeout(600_000).emitWithAck('update-chunk', c);
        })().catch((e: unknown) => send({ type: 'error', message: `${site.name}: ${e instanceof Error ? e.message : String(e)}` }));
      });
      s.on('connect_error', (e) => send({ type: 'error', message: `${site.name}: ${e.message}` }));
    };
    // Connections in small batches: a thousand simultaneous handshakes would only measure the accept queue.
    void (async () => {
      for (let i = 0; i < m.sites.length; i += 25) {
        for (const site of m.sites.slice(i, i + 25)) connectOne(site);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
  });
}

// ------------------------------------------------------------------------------------------------ driver

function child<T>(args: string[]): { proc: ChildProcess; next: (pred: (m: T) => boolean) => Promise<T>; messages: T[] } {
  const proc = fork(SCRIPT, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const messages: T[] = [];
  const waiters: { pred: (m: T) => boolean; resolve: (m: T) => void }[] = [];
  proc.on('message', (m: T) => {
    const err = m as unknown as { type: string; message?: string };
    if (err.type === 'error') {
      process.stderr.write(`bench: ${err.message}\n`);
      return;
    }
    messages.push(m);
    for (const w of [...waiters]) {
      if (w.pred(m)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  const next = (pred: (m: T) => boolean): Promise<T> =>
    new Promise((resolve, reject) => {
      const seen = messages.find(pred);
      if (seen) return resolve(seen);
      waiters.push({ pred, resolve });
      proc.once('exit', (code) => reject(new Error(`a benchmark process exited (${String(code)}) early`)));
    });
  return { proc, next, messages };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

async function registerSites(dataDir: string, n: number): Promise<SiteCredential[]> {
  const store = new FileStateStore(dataDir);
  await store.open();
  const out: SiteCredential[] = [];
  try {
    const now = new Date().toISOString();
    for (let i = 0; i < n; i++) {
      const name = `site-${String(i).padStart(5, '0')}`;
      const credential = `${CREDENTIAL_PREFIX}${randomBytes(32).toString('base64url')}`;
      await store.putSite({ name, createdAt: now, enrollmentTokenHash: null, credentialHash: hashSecret(credential), revoked: false, lastSeen: null, enrolledAt: now });
      out.push({ name, credential });
    }
  } finally {
    await store.close();
  }
  return out;
}

interface Result {
  sites: number;
  params: number;
  round_overhead_s: number;
  wire_ratio: number;
  aggregate_mb_per_s: number;
  peak_rss_mb: number;
}

async function driver(): Promise<void> {
  const sitesList = arg('sites', '100,300,1000').split(',').map(Number);
  const target = Number(arg('params', '50000'));
  const rounds = Number(arg('rounds', '3'));
  const procs = Number(arg('procs', '2'));
  const json = process.argv.includes('--json');
  const hidden = Math.max(1, Math.round((target - 1) / (INPUT_DIM + 2)));

  let commit = 'unknown';
  try {
    commit = execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    if (execSync('git status --porcelain', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() !== '') commit += '+changes';
  } catch {
    // not a git checkout: the table still prints
  }
  const cpu = cpus();
  const machine = `${cpu[0]?.model ?? 'unknown cpu'} x ${cpu.length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`;
  console.log(`fedmeta bench-coordinator  commit ${commit}`);
  console.log(`machine: ${machine}; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);

  const dir = mkdtempSync(join(tmpdir(), 'fedmeta-bench-coordinator-'));
  const started = performance.now();
  const results: Result[] = [];
  const rows: string[] = [];
  try {
    const t0 = performance.now();
    const credentials = await registerSites(join(dir, 'state'), Math.max(...sitesList));
    console.log(`registered ${credentials.length} sites in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${procs} client processes; ${rounds} rounds per size (median shown, worst in brackets)\n`);
    for (const n of sitesList) {
      const coord = child<FromCoordinator>(['--role=coordinator', `--data-dir=${join(dir, 'state')}`, `--hidden=${hidden}`, `--n=${n}`]);
      const agents: ReturnType<typeof child<FromAgents>>[] = [];
      try {
        const ready = (await coord.next((m) => m.type === 'ready')) as Extract<FromCoordinator, { type: 'ready' }>;
        const url = `http://127.0.0.1:${ready.port}`;
        const k = Math.min(procs, n);
        for (let p = 0; p < k; p++) {
          const mine = credentials.slice(0, n).filter((_, i) => i % k === p);
          const a = child<FromAgents>(['--role=agents']);
          a.proc.send({ type: 'start', url, sites: mine, params: ready.params } satisfies ToAgents);
          agents.push(a);
        }
        const tc = performance.now();
        await Promise.all(agents.map((a) => a.next((m) => m.type === 'connected')));
        process.stderr.write(`${n} sites connected in ${((performance.now() - tc) / 1000).toFixed(1)} s\n`);
        coord.proc.send({ type: 'run', sites: n, rounds } satisfies ToCoordinator);
        const done = (await coord.next((m) => m.type === 'done')) as Extract<FromCoordinator, { type: 'done' }>;
        const metrics = coord.messages.filter((m): m is Extract<FromCoordinator, { type: 'round' }> => m.type === 'round').map((m) => m.metrics);
        if (metrics.some((r) => r.accepted !== n || r.sampled !== n)) throw new Error(`a round of ${n} sites did not take every update`);
        const overhead = metrics.map((r) => r.overheadS);
        const agg = metrics.map((r) => (n * ready.params * 4) / 1e6 / (r.aggregateMs / 1000));
        const wire = metrics.map((r) => r.wireBytes / (4 * ready.params));
        const result: Result = {
          sites: n,
          params: ready.params,
          round_overhead_s: round3(median(overhead)),
          wire_ratio: round5(median(wire)),
          aggregate_mb_per_s: Math.round(median(agg)),
          peak_rss_mb: Math.round(done.peakRssMb),
        };
        results.push(result);
        const pool = Array.from({ length: Math.min(n, 256) }, () => Float32Array.from({ length: ready.params }, () => Math.random() - 0.5));
        const refMs = referenceSumMs(pool, n);
        const collect = median(metrics.map((r) => r.collectS));
        const commitMs = median(metrics.map((r) => r.commitMs));
        rows.push(
          [
            String(n).padStart(6),
            String(ready.params).padStart(8),
            `${result.round_overhead_s.toFixed(3)} (${Math.max(...overhead).toFixed(3)})`.padStart(17),
            median(metrics.map((r) => r.overheadCpuS)).toFixed(3).padStart(8),
            `${median(metrics.map((r) => r.aggregateMs)).toFixed(0)}`.padStart(8),
            `${commitMs.toFixed(0)}`.padStart(8),
            result.wire_ratio.toFixed(4).padStart(8),
            String(result.aggregate_mb_per_s).padStart(9),
            refMs.toFixed(0).padStart(7),
            (median(metrics.map((r) => r.aggregateMs)) / refMs).toFixed(2).padStart(8),
            String(result.peak_rss_mb).padStart(8),
            collect.toFixed(2).padStart(9),
          ].join(' '),
        );
      } finally {
        for (const a of agents) a.proc.send({ type: 'stop' } satisfies ToAgents);
        coord.proc.send({ type: 'stop' } satisfies ToCoordinator);
        await Promise.all([coord, ...agents].map((c) => new Promise((r) => (c.proc.exitCode !== null ? r(null) : c.proc.once('exit', r)))));
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`${'sites'.padStart(6)} ${'params'.padStart(8)} ${'overhead s'.padStart(17)} ${'cpu s'.padStart(8)} ${'agg ms'.padStart(8)} ${'write ms'.padStart(8)} ${'wire'.padStart(8)} ${'agg MB/s'.padStart(9)} ${'ref ms'.padStart(7)} ${'agg/ref'.padStart(8)} ${'RSS MB'.padStart(8)} ${'collect s'.padStart(9)}`);
  console.log('-'.repeat(118));
  for (const r of rows) console.log(r);
  console.log(
    '\noverhead: last update accepted -> new version committed (wall time), and the coordinator\'s CPU time in it (cpu);' +
      '\nagg/write: aggregation with the optimizer step, and the checkpoint write (wall time);' +
      '\nwire: bytes read from the sockets while collecting, per update, over 4 x params; RSS: the coordinator process at its peak;' +
      '\nref: one float64 accumulation pass over the same number of float32 updates, measured in this run; agg/ref: aggregation over it;' +
      '\ncollect: round start -> last update accepted (offers out, updates in), for context.',
  );
  console.log(`whole script: ${((performance.now() - started) / 1000).toFixed(1)} s; load average now ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
  if (json) console.log(JSON.stringify({ results }));
}

/**
 * The reference for aggregation: one pass that adds n float32 vectors of `dim` values into a float64
 * accumulator, best of three, in milliseconds. Vectors are reused from `pool` so that the pass reads memory.
 */
function referenceSumMs(pool: Float32Array[], n: number): number {
  const dim = (pool[0] as Float32Array).length;
  let best = Infinity;
  for (let rep = 0; rep < 3; rep++) {
    const acc = new Float64Array(dim);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const v = pool[i % pool.length] as Float32Array;
      for (let j = 0; j < dim; j++) acc[j]! += v[j]!;
    }
    best = Math.min(best, performance.now() - t0);
    if (!Number.isFinite(acc[0]!)) throw new Error('reference sum is not finite');
  }
  return best;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function round5(x: number): number {
  return Math.round(x * 100_000) / 100_000;
}

const role = arg('role', 'driver');
if (role === 'coordinator') await coordinatorRole();
else if (role === 'agents') agentsRole();
else await driver();
