// Throughput of `fedmeta-agent detect` on one core: flows read from a CSV file, encoded, standardised, scored by
// the detector and (for flagged flows) written as ECS alerts. The wasm backend runs single-threaded in Node, so
// the process uses one core; the CPU column shows it. Prints a table of flows/s per configuration; `--json`
// adds one JSON object on the last line.
// Usage: node --conditions=fedmeta-source --import tsx scripts/bench-detect.ts [--flows=100000] [--backend=wasm] [--json]
import { execSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { createLogger, builtinSchema, initParams, initRuntime, loadFlowTable, schemaFingerprint, StatsAccumulator } from '../packages/shared/src/index.js';
import type { BackendName, ModelSpec } from '../packages/shared/src/index.js';
import { openAlertSink } from '../packages/site-agent/src/alerts/sinks.js';
import { readInput } from '../packages/site-agent/src/detect-input.js';
import { runDetect } from '../packages/site-agent/src/detect.js';
import { MODEL_FILE_FORMAT } from '../packages/site-agent/src/model-file.js';
import type { ModelFile } from '../packages/site-agent/src/model-file.js';

function arg(name: string, fallback: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? fallback : hit.slice(name.length + 3);
}

const flows = Number(arg('flows', '50000'));
const backend = arg('backend', 'wasm') as BackendName;
const json = process.argv.includes('--json');
const schema = builtinSchema('cicflowmeter');
const sample = gunzipSync(readFileSync(new URL('../data/cic-ids2017/cic-ids2017-sample.csv.gz', import.meta.url))).toString('utf8').split('\n').filter((l) => l !== '');
const headerLine = sample[0]!;
const rows = sample.slice(1);

const dir = mkdtempSync(join(tmpdir(), 'fedmeta-bench-detect-'));
const input = join(dir, 'flows.csv');
const lines: string[] = [headerLine];
for (let i = 0; i < flows; i++) lines.push(rows[i % rows.length]!);
writeFileSync(input, `${lines.join('\n')}\n`);
const labelOf = (l: string): string => l.split(',').at(-2)!;
const shotRows = [...rows.filter((l) => labelOf(l) === 'BENIGN').slice(0, 10), ...rows.filter((l) => labelOf(l) !== 'BENIGN').slice(0, 10)];
const shots = join(dir, 'shots.csv');
writeFileSync(shots, `${headerLine}\n${shotRows.join('\n')}\n`);

const log = createLogger('bench', { level: 'silent' });
await initRuntime({ backend });

async function modelFor(spec: ModelSpec): Promise<ModelFile> {
  const table = await loadFlowTable(shots, schema);
  const p = initParams(spec, 1);
  return {
    format: MODEL_FILE_FORMAT,
    formatVersion: 1,
    version: 1,
    spec,
    manifest: p.manifest,
    params: p.values,
    schemaFingerprint: schemaFingerprint(schema),
    stats: StatsAccumulator.forSchema(schema).addTable(table).finalize(),
    createdAt: new Date().toISOString(),
  };
}

const nullSink = (): Writable => new Writable({ write: (_c, _e, cb) => cb() });

interface Row {
  name: string;
  flows: number;
  alerts: number;
  seconds: number;
  flowsPerSecond: number;
  cpu: number;
}

async function measure(name: string, fn: () => Promise<{ flows: number; alerts: number }>): Promise<Row> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu0);
  return { name, ...r, seconds, flowsPerSecond: Math.round(r.flows / seconds), cpu: (used.user + used.system) / 1e6 / seconds };
}

async function detect(spec: ModelSpec, threshold: number, batchSize: number, ecs: boolean): Promise<{ flows: number; alerts: number }> {
  const sink = ecs ? openAlertSink({ kind: 'stdout' }, { ecs: { site: 'bench', agentVersion: '0' }, stdout: nullSink(), logger: log }) : undefined;
  const s = await runDetect({
    model: await modelFor(spec),
    shots,
    input,
    output: nullSink(),
    ...(sink ? { alerts: sink } : {}),
    schema,
    threshold,
    batchSize,
    watch: false,
    logger: log,
  });
  return { flows: s.scored, alerts: s.flagged };
}

const big: ModelSpec = { inputDim: 85, hidden: [128, 64], activation: 'relu', task: { kind: 'binary' } };
const small: ModelSpec = { inputDim: 85, hidden: [32], activation: 'relu', task: { kind: 'binary' } };
const results: Row[] = [];
results.push(
  await measure('read + encode only (no model)', async () => {
    const r = readInput(input, schema, 1024);
    let n = 0;
    for await (const b of r.batches) n += b.n;
    return { flows: n, alerts: 0 };
  }),
);
results.push(await measure('85-128-64-1 relu, batch 1024, no alert', () => detect(big, 2, 1024, true)));
results.push(await measure('85-128-64-1 relu, batch 4096, no alert', () => detect(big, 2, 4096, true)));
results.push(await measure('85-128-64-1 relu, batch 1024, every flow an ECS alert', () => detect(big, 0, 1024, true)));
results.push(await measure('85-32-1 relu, batch 1024, no alert', () => detect(small, 2, 1024, true)));
rmSync(dir, { recursive: true, force: true });

let commit = 'unknown';
try {
  commit = execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
} catch {
  // Not a checkout.
}
console.log(`detect throughput, ${flows} CIC-IDS2017 flows from a CSV file, backend ${backend}, commit ${commit}, ${cpus()[0]?.model ?? 'cpu'} (${cpus().length} cores)`);
console.log('');
console.log(`${'configuration'.padEnd(56)} ${'flows'.padStart(8)} ${'alerts'.padStart(8)} ${'s'.padStart(7)} ${'flows/s'.padStart(9)} ${'cores'.padStart(6)}`);
for (const r of results) {
  console.log(`${r.name.padEnd(56)} ${String(r.flows).padStart(8)} ${String(r.alerts).padStart(8)} ${r.seconds.toFixed(2).padStart(7)} ${String(r.flowsPerSecond).padStart(9)} ${r.cpu.toFixed(2).padStart(6)}`);
}
if (json) console.log(JSON.stringify({ flows, backend, commit, results }));
