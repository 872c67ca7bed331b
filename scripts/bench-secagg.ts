// Cost of secure aggregation against sending updates in the clear: bytes each site sends and receives (every
// secure-aggregation message encoded with msgpack, as the transport would) over the 4 x params bytes of a
// plaintext float32 update, and compute time per site and at the server, for whole simulated rounds.
// Default rows: 10 and 100 sites with all pairs, 100 and 1,024 sites with a neighbourhood of 32 (SecAgg+),
// at 50,000 parameters; all pairs at 1,024 sites is extrapolated linearly from 10 and 100 (marked '*').
// Usage: node --conditions=fedmeta-source --import tsx scripts/bench-secagg.ts [--dim=50000] [--rows=10:all:0,100:all:10] [--json]
//   a row is sites:degree:dropout-percent (degree 'all' for all pairs); dropouts happen after key sharing.
// With --rounds: real rounds instead of simulated ones. A coordinator (startCoordinator) on 127.0.0.1 port 0 and
// light socket.io sites in this process (quadratic updates, so that no training hides the cost; the agent's own
// secure-aggregation code), with and without secure aggregation: round wall time (mean of --repeat rounds after
// one warm-up) and bytes each site sent and received (encoded messages). Every party shares this process and
// its cores, so the wall time includes all sites' computation.
//   [--rounds] [--sites=10,50] [--dim=50000] [--repeat=2] [--degree=0] [--json]
import { execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, totalmem } from 'node:os';
import { Packr } from 'msgpackr';
import { roundTable } from './bench-secagg-rounds.js';
import { generateIdentity, simulateSecAggRound } from '../packages/shared/src/secagg/index.js';
import type { SecAggConfig, SecAggDropPhase, SecAggServerMessage, SecAggSiteMessage } from '../packages/shared/src/secagg/index.js';

function arg(name: string, fallback: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? fallback : hit.slice(name.length + 3);
}

const dim = Number(arg('dim', '50000'));
const roundsMode = process.argv.includes('--rounds');
const json = process.argv.includes('--json');
const rows = arg('rows', '10:all:0,10:all:10,10:all:30,100:all:0,100:all:10,100:32:10,1024:32:0,1024:32:10')
  .split(',')
  .map((r) => {
    const [n, degree, drop] = r.split(':');
    return { n: Number(n), degree: degree === 'all' ? undefined : Number(degree), dropPct: Number(drop ?? 0) };
  });

const packr = new Packr({ useRecords: false });
const plainBytes = 4 * dim;

/** Bonawitz et al.'s choice for the malicious setting, t > 2/3 of the holders of each site's shares. */
function thresholdFor(holders: number): number {
  return Math.floor((2 * holders) / 3) + 1;
}

/** Every k-th site (spread over the roster) drops after sharing its keys. */
function dropouts(n: number, pct: number): Map<number, SecAggDropPhase> {
  const count = Math.floor((n * pct) / 100);
  const drop = new Map<number, SecAggDropPhase>();
  for (let i = 0; i < count; i++) drop.set(1 + Math.floor((i * n) / count), 'mask');
  return drop;
}

interface Row {
  sites: number;
  degree: number | 'all';
  threshold: number;
  dropout_pct: number;
  sent_bytes: number;
  received_bytes: number;
  sent_expansion: number;
  total_expansion: number;
  client_ms_mean: number;
  client_ms_max: number;
  server_ms: number;
  extrapolated?: true;
}

function run(n: number, degree: number | undefined, dropPct: number): Row {
  const identities = Array.from({ length: n }, () => generateIdentity());
  const holders = degree === undefined || degree >= n - 1 ? n : degree + 1;
  const threshold = thresholdFor(holders);
  const config: SecAggConfig = {
    roundId: new Uint8Array(randomBytes(32)),
    identities: identities.map((i) => i.publicKey),
    threshold,
    dim,
    clipNorm: 1,
    ...(degree === undefined ? {} : { degree }),
  };
  const vector = Float32Array.from({ length: dim }, (_, i) => Math.sin(i) / Math.sqrt(dim));
  const sent = new Array<number>(n).fill(0);
  const received = new Array<number>(n).fill(0);
  const intercept = <M extends SecAggSiteMessage | SecAggServerMessage>(direction: 'to-server' | 'to-site', site: number, m: M): M => {
    const bytes = packr.pack(m).length;
    if (direction === 'to-server') sent[site - 1] = (sent[site - 1] as number) + bytes;
    else received[site - 1] = (received[site - 1] as number) + bytes;
    return m;
  };
  const drop = dropouts(n, dropPct);
  const r = simulateSecAggRound(config, {
    seeds: identities.map((i) => i.privateKey),
    inputs: identities.map(() => ({ vector })),
    drop,
    intercept,
  });
  // Per-site figures are over the sites that stayed to the end (the dropped ones sent less).
  const stayed = r.result.contributors.map((s) => s - 1);
  const mean = (xs: number[]): number => stayed.reduce((a, i) => a + (xs[i] as number), 0) / stayed.length;
  const clientMs = stayed.map((i) => r.clientMs[i] as number);
  return {
    sites: n,
    degree: degree === undefined || degree >= n - 1 ? 'all' : degree,
    threshold,
    dropout_pct: dropPct,
    sent_bytes: Math.round(mean(sent)),
    received_bytes: Math.round(mean(received)),
    sent_expansion: mean(sent) / plainBytes,
    total_expansion: (mean(sent) + mean(received)) / plainBytes,
    client_ms_mean: clientMs.reduce((a, b) => a + b, 0) / clientMs.length,
    client_ms_max: Math.max(...clientMs),
    server_ms: r.serverMs,
  };
}

/**
 * Without dropouts the server's work is linear in n (one signature check, one masked vector and one self-mask
 * stream per site); each dropped site adds one mask stream per neighbour, so with a fixed dropout rate it grows
 * as α·n + β·n², fitted through the two rows.
 */
function serverModel(a: Row, b: Row, n: number): number {
  if (a.dropout_pct === 0) return (b.server_ms / b.sites) * n;
  const det = a.sites * b.sites * b.sites - b.sites * a.sites * a.sites;
  const alpha = (a.server_ms * b.sites * b.sites - b.server_ms * a.sites * a.sites) / det;
  const beta = (a.sites * b.server_ms - b.sites * a.server_ms) / det;
  return Math.max(0, alpha * n + beta * n * n);
}

/** Linear in n through two all-pairs rows with the same dropout rate (every per-site cost grows with n). */
function extrapolate(a: Row, b: Row, n: number): Row {
  const at = (x: number, y: number): number => x + ((y - x) * (n - a.sites)) / (b.sites - a.sites);
  const sent = at(a.sent_bytes, b.sent_bytes);
  const recv = at(a.received_bytes, b.received_bytes);
  return {
    sites: n,
    degree: 'all',
    threshold: thresholdFor(n),
    dropout_pct: a.dropout_pct,
    sent_bytes: Math.round(sent),
    received_bytes: Math.round(recv),
    sent_expansion: sent / plainBytes,
    total_expansion: (sent + recv) / plainBytes,
    client_ms_mean: at(a.client_ms_mean, b.client_ms_mean),
    client_ms_max: at(a.client_ms_max, b.client_ms_max),
    server_ms: serverModel(a, b, n),
    extrapolated: true,
  };
}

let commit = 'unknown';
try {
  commit = execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
} catch {
  // not a git checkout: the table still prints
}
const cpu = cpus();
console.log(`fedmeta bench-secagg  commit ${commit}  node ${process.version}`);
console.log(`machine: ${cpu[0]?.model ?? 'unknown cpu'} x ${cpu.length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`);

if (roundsMode) await roundTable();
else simulatedTable();

function simulatedTable(): void {
  console.log(`parameters per update: ${dim}; plaintext update ${(plainBytes / 1024).toFixed(1)} KiB (float32)\n`);

  // One small round first, so that the first row does not pay for compiling the code.
  run(5, undefined, 0);
  const started = performance.now();
  const results: Row[] = [];
  const header =
    'sites  degree  t    drop  sent/site KiB  recv/site KiB  sent x plain  (sent+recv) x plain  client ms mean / max  server ms';
  console.log(header);
  console.log('-'.repeat(header.length));
  const print = (r: Row): void => {
    const mark = r.extrapolated ? '*' : ' ';
    console.log(
      `${String(r.sites).padStart(5)}  ${String(r.degree).padStart(6)}  ${String(r.threshold).padEnd(4)} ${`${r.dropout_pct}%`.padStart(4)}  ` +
        `${(r.sent_bytes / 1024).toFixed(1).padStart(13)}  ${(r.received_bytes / 1024).toFixed(1).padStart(13)}  ` +
        `${r.sent_expansion.toFixed(3).padStart(12)}  ${r.total_expansion.toFixed(3).padStart(19)}  ` +
        `${`${r.client_ms_mean.toFixed(0)} / ${r.client_ms_max.toFixed(0)}`.padStart(20)}  ${r.server_ms.toFixed(0).padStart(9)}${mark}`,
    );
  };
  for (const { n, degree, dropPct } of rows) {
    const r = run(n, degree, dropPct);
    results.push(r);
    print(r);
  }
  // All pairs at 1,024 sites costs every site ~2,000 key agreements and 1,023 mask streams, and the simulation
  // runs all sites on one machine: extrapolated from the measured all-pairs rows instead.
  for (const pct of [0, 10]) {
    const small = results.find((r) => r.sites === 10 && r.degree === 'all' && r.dropout_pct === pct);
    const big = results.find((r) => r.sites === 100 && r.degree === 'all' && r.dropout_pct === pct);
    if (small && big && !results.some((r) => r.sites === 1024 && r.degree === 'all' && r.dropout_pct === pct)) {
      const e = extrapolate(small, big, 1024);
      results.push(e);
      print(e);
    }
  }
  console.log('* extrapolated from the 10- and 100-site all-pairs rows: bytes and client time linear in n, server time α·n + β·n² with dropouts');
  console.log('Bonawitz et al. (CCS 2017) report 1.73x expansion over sending in the clear for 2^10 users, 2^20-value vectors of 16-bit inputs.');
  const total = (performance.now() - started) / 1000;
  console.log(`\nwhole script: ${total.toFixed(1)} s`);
  if (json) console.log(JSON.stringify({ commit, dim, seconds_total: total, results }));
}
