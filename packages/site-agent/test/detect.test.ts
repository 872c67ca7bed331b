import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { StatsAccumulator, builtinSchema, initParams, initRuntime, loadFlowTable, schemaFingerprint } from '@fedmeta/shared';
import type { ModelSpec } from '@fedmeta/shared';
import { runDetect } from '../src/detect.js';
import { MODEL_FILE_FORMAT, readModelFile, writeModelFile, type ModelFile } from '../src/model-file.js';
import { captureLogger, csv, header, labelOf, rowsOf, tempDir, waitFor, writeText } from './fixtures.js';

const schema = builtinSchema('cicflowmeter');
const spec: ModelSpec = { inputDim: 85, hidden: [32], activation: 'relu', task: { kind: 'binary' } };
let model: ModelFile;
let dir: string;
/** Input rows, disjoint from the shots: 40 benign and 40 DoS Hulk flows. */
const inputRows = (): string[] => [...rowsOf('BENIGN', 40, 30), ...rowsOf('DoS Hulk', 40, 30)];
const ADAPT = { steps: 30, lr: 0.1 };

before(async () => {
  await initRuntime();
  dir = tempDir({ after: () => undefined });
  // Statistics of a site's traffic, as the agent stores them with a cached release.
  const site = await loadFlowTable(writeText(dir, 'site.csv', csv([...rowsOf('BENIGN', 60, 80), ...rowsOf('DoS Hulk', 20, 80)])), schema);
  const p = initParams(spec, 21);
  model = {
    format: MODEL_FILE_FORMAT,
    formatVersion: 1,
    version: 6,
    spec,
    manifest: p.manifest,
    params: p.values,
    schemaFingerprint: schemaFingerprint(schema),
    stats: StatsAccumulator.forSchema(schema).addTable(site).finalize(),
    createdAt: new Date().toISOString(),
  };
});

function collect(): { stream: PassThrough; lines: () => Array<Record<string, unknown>> } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString('utf8')));
  return { stream, lines: () => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

test('detect writes one JSON line per flagged flow with score, threshold, version and the ids, and flags attacks far more than benign flows', async () => {
  const file = join(dir, 'model.fmodel');
  await writeModelFile(file, model);
  const loaded = await readModelFile(file);
  assert.deepEqual(loaded.params, model.params);
  const shots = writeText(dir, 'shots.csv', csv([...rowsOf('BENIGN', 20), ...rowsOf('DoS Hulk', 20)]));
  const rows = inputRows();
  const input = join(dir, 'input.csv.gz');
  writeFileSync(input, gzipSync(csv(rows)));
  const out = collect();
  const log = captureLogger();
  const summary = await runDetect({ model: loaded, shots, input, output: out.stream, schema, watch: false, logger: log.logger, ...ADAPT });

  const lines = out.lines();
  assert.equal(summary.scored, 80);
  assert.equal(summary.flagged, lines.length);
  let attacks = 0;
  let benign = 0;
  for (const l of lines) {
    assert.deepEqual(Object.keys(l).sort(), ['ids', 'modelVersion', 'row', 'score', 'threshold']);
    assert.equal(l['modelVersion'], 6);
    assert.ok((l['score'] as number) >= (l['threshold'] as number));
    const ids = l['ids'] as Record<string, string>;
    assert.deepEqual(Object.keys(ids), ['id', 'Flow ID', 'Src IP', 'Src Port', 'Dst IP', 'Dst Port', 'Timestamp']);
    const line = rows[(l['row'] as number) - 1]!;
    assert.equal(ids['Src IP'], line.split(',')[2], 'the ids are those of the flagged row');
    if (labelOf(line) === 'BENIGN') benign++;
    else attacks++;
  }
  assert.ok(attacks >= 32, `flagged ${attacks} of 40 attacks`);
  assert.ok(benign <= 8, `flagged ${benign} of 40 benign flows`);
  assert.match(log.text(), /flows\/s/);
  assert.ok(summary.flowsPerSecond > 0);
});

test('unlabelled traffic from a stream is scored: the label column is not needed', async () => {
  const shots = writeText(dir, 'shots2.csv', csv([...rowsOf('BENIGN', 10), ...rowsOf('DoS Hulk', 10)]));
  // Drop Label and Attempted Category, as a live export would have them.
  const strip = (l: string) => l.split(',').slice(0, -2).join(',');
  const text = [strip(header()), ...inputRows().map(strip)].join('\n') + '\n';
  const out = collect();
  const summary = await runDetect({ model, shots, input: Readable.from([Buffer.from(text)]), output: out.stream, schema, watch: false, logger: captureLogger().logger, ...ADAPT });
  assert.equal(summary.scored, 80);
  assert.ok(out.lines().filter((l) => (l['row'] as number) > 40).length >= 32);
});

test('when an analyst adds labelled flows to the shots file, detect re-adapts without a restart', async () => {
  const shots = writeText(dir, 'shots3.csv', csv([...rowsOf('BENIGN', 10), ...rowsOf('Portscan', 3)]));
  const input = new PassThrough();
  const out = collect();
  const log = captureLogger();
  const running = runDetect({ model, shots, input, output: out.stream, schema, logger: log.logger, debounceMs: 50, batchSize: 8, ...ADAPT });
  const rows = inputRows();
  input.write(`${header()}\n${rows.slice(0, 20).join('\n')}\n`);
  await waitFor(() => log.text().includes('adapted model version 6'), 10_000, 'the first adaptation');
  writeFileSync(shots, csv([...rowsOf('BENIGN', 10), ...rowsOf('Portscan', 3), ...rowsOf('DoS Hulk', 10)]));
  await waitFor(() => log.text().includes('re-adapted'), 10_000, 'the re-adaptation');
  const line = log.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => String(l['msg']).startsWith('re-adapted'))!;
  assert.equal(line['attack'], 13, 'the new shots were used');
  input.end(`${rows.slice(20).join('\n')}\n`);
  const summary = await running;
  assert.equal(summary.readapts, 1);
  assert.equal(summary.scored, 80);
  assert.equal(summary.threshold, line['threshold']);
  // Flows after the re-adaptation carry the new threshold.
  const late = out.lines().filter((l) => (l['row'] as number) > 60);
  assert.ok(late.length > 0 && late.every((l) => l['threshold'] === line['threshold']));
});

test('fedmeta-agent detect runs from its launcher, reads stdin and reports flows/s on stderr', async () => {
  const file = join(dir, 'cli.fmodel');
  await writeModelFile(file, model);
  const shots = writeText(dir, 'shots4.csv', csv([...rowsOf('BENIGN', 10), ...rowsOf('DoS Hulk', 10)]));
  const bin = fileURLToPath(new URL('../bin/fedmeta-agent', import.meta.url));
  const child = spawn(process.execPath, [bin, 'detect', '--model', file, '--shots', shots, '--input', '-', '--steps', '30', '--lr', '0.1', '--no-watch'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(csv(inputRows()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, stderr);
  const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  // The command line writes ECS alert documents (see alerts-ecs.test.ts for their fields).
  assert.ok(lines.length >= 32 && lines.every((l) => typeof (l['fedmeta'] as { score?: unknown } | undefined)?.score === 'number'));
  assert.match(stderr, /scored 80 flows in .* flows\/s/);
});
