// Throughput of the coordinator's aggregators on synthetic rounds: 100, 300 and 1,000 sites x 50,000
// parameters by default. Prints a table of MB/s (float32 input read per second) with the commit and the
// machine; `--json` adds one JSON object on the last line.
// Usage: node --conditions=fedmeta-source --import tsx scripts/bench-aggregate.ts [--sites=100,300,1000] [--dim=50000] [--json]
import { execSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { aggregate } from '../packages/shared/src/aggregate/index.js';
import type { AggregatorConfig, WeightedUpdate } from '../packages/shared/src/aggregate/index.js';

function arg(name: string, fallback: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? fallback : hit.slice(name.length + 3);
}

const sitesList = arg('sites', '100,300,1000').split(',').map(Number);
const dim = Number(arg('dim', '50000'));
const json = process.argv.includes('--json');

/** Honest-looking updates: a shared direction plus per-site noise, from a fixed seed. */
function makeUpdates(n: number): WeightedUpdate[] {
  let s = 0x9e3779b9;
  const rand = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296 - 0.5;
  };
  const common = Float32Array.from({ length: dim }, () => rand() * 0.02);
  return Array.from({ length: n }, (_, i) => {
    const v = new Float32Array(dim);
    for (let j = 0; j < dim; j++) v[j] = common[j]! + rand() * 0.01;
    return { vector: v, weight: 50 + (i % 7) * 10 };
  });
}

/** Each row: name, config for n sites, and how the cost grows with n (Multi-Krum compares all pairs). */
function configs(n: number): [string, AggregatorConfig, 1 | 2][] {
  const tenth = Math.floor(n / 10);
  return [
    ['mean', { kind: 'mean' }, 1],
    ['norm-clip', { kind: 'norm-clip', maxNorm: 1 }, 1],
    ['centered-clipping (3 passes)', { kind: 'centered-clipping', tau: 0.5 }, 1],
    ['median', { kind: 'median' }, 1],
    ['trimmed-mean (trim n/10)', { kind: 'trimmed-mean', trim: tenth }, 1],
    ['multi-krum (f n/10)', { kind: 'multi-krum', f: tenth }, 2],
  ];
}

/*
 * Keeps the whole script under a minute on a busy machine: a cell whose time, extrapolated from the
 * previous site count, would pass CELL_BUDGET_S runs on a prefix of the coordinates instead. Every
 * aggregator's cost is linear in the number of coordinates, so MB/s carries over; the ms column then shows
 * the time scaled to the full length, marked with '*'.
 */
const CELL_BUDGET_S = 25;

/** Repeats a fast aggregator until 0.3 s have passed (at most 5 runs); heavy ones run once. */
function time(fn: () => void): number {
  let runs = 0;
  const t0 = performance.now();
  let elapsed = 0;
  do {
    fn();
    runs++;
    elapsed = performance.now() - t0;
  } while (elapsed < 300 && runs < 5);
  return elapsed / runs / 1000;
}

let commit = 'unknown';
try {
  commit = execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
} catch {
  // not a git checkout: the table still prints
}
const cpu = cpus();
console.log(`fedmeta bench-aggregate  commit ${commit}  node ${process.version}`);
console.log(`machine: ${cpu[0]?.model ?? 'unknown cpu'} x ${cpu.length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`);
console.log(`parameters per update: ${dim}\n`);

const started = performance.now();
const all = makeUpdates(Math.max(...sitesList));
const results: { aggregator: string; sites: number; seconds: number; mb_per_s: number; measured_coordinates?: number }[] = [];
const header = `${'aggregator'.padEnd(30)}${sitesList.map((n) => `${n} sites`.padStart(22)).join('')}`;
console.log(header);
console.log('-'.repeat(header.length));
let scaled = false;
for (const [row] of configs(1)) {
  const cells: string[] = [];
  let previous: { n: number; seconds: number } | undefined;
  for (const n of sitesList) {
    const [, config, growth] = configs(n).find(([name]) => name === row)!;
    const estimate = previous === undefined ? 0 : previous.seconds * (n / previous.n) ** growth;
    const length = estimate > CELL_BUDGET_S ? Math.max(1000, Math.floor((dim * CELL_BUDGET_S) / estimate)) : dim;
    const updates = all.slice(0, n).map((u) => (length === dim ? u : { vector: u.vector.subarray(0, length), weight: u.weight }));
    const measured = time(() => aggregate(config, updates));
    const seconds = (measured * dim) / length;
    const mbPerS = (n * dim * 4) / 1e6 / seconds;
    results.push({ aggregator: row, sites: n, seconds, mb_per_s: mbPerS, ...(length === dim ? {} : { measured_coordinates: length }) });
    const mark = length === dim ? ' ' : '*';
    scaled ||= length !== dim;
    cells.push(`${mbPerS.toFixed(0)} MB/s ${(seconds * 1000).toFixed(0).padStart(6)} ms${mark}`.padStart(22));
    previous = { n, seconds };
  }
  console.log(`${row.padEnd(30)}${cells.join('')}`);
}
if (scaled) console.log(`* measured on a prefix of the coordinates to stay within ${CELL_BUDGET_S} s; time scaled to ${dim}`);
const total = (performance.now() - started) / 1000;
console.log(`\nwhole script: ${total.toFixed(1)} s (including ${((Math.max(...sitesList) * dim * 4) / 1e6).toFixed(0)} MB of synthetic updates)`);
if (json) console.log(JSON.stringify({ commit, dim, seconds_total: total, results }));
