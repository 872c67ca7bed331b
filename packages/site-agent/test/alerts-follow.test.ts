import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { initRuntime } from '@fedmeta/shared';
import type { EcsAlert } from '../src/alerts/ecs.js';
import { openDetectIo } from '../src/alerts/detect-wiring.js';
import { csvRecords } from '../src/follow/csv-records.js';
import { runDetect } from '../src/detect.js';
import type { ModelFile } from '../src/model-file.js';
import { ADAPT, detectModel, schema, shotsFile } from './alerts-fixtures.js';
import { captureLogger, csv, header, rowsOf, tempDir, waitFor } from './fixtures.js';

let model: ModelFile;
let shots: string;

before(async () => {
  await initRuntime();
  const dir = tempDir({ after: () => undefined });
  model = await detectModel(dir);
  shots = shotsFile(dir);
});

function alertsIn(file: string): EcsAlert[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as EcsAlert);
}

test('--follow scores flows as they are appended, across a partial line, a rotation and a truncation, and stops cleanly', async (t) => {
  const dir = tempDir(t);
  const flows = join(dir, 'flows.csv');
  const alerts = join(dir, 'alerts.json');
  const attacks = rowsOf('DoS Hulk', 40, 40);
  writeFileSync(flows, csv([...rowsOf('BENIGN', 5, 40), ...attacks.slice(0, 10)]));
  const log = captureLogger();
  const io = await openDetectIo({ input: flows, follow: true, alertsTo: `file:${alerts}`, site: 'branch-porto', logger: log.logger, signals: false, idleFlushMs: 50 });
  t.after(() => io.close());
  assert.equal(io.idleFlushMs, 50);
  const running = runDetect({
    model,
    shots,
    input: io.input,
    output: new PassThrough(),
    alerts: io.alerts,
    onBatch: io.onBatch,
    idleFlushMs: 50,
    schema,
    watch: false,
    logger: log.logger,
    ...ADAPT,
  });
  await waitFor(() => alertsIn(alerts).length >= 8, 10_000, 'alerts on the first flows');

  // Appended in two writes that split a line: the flow is scored once it is whole, and promptly.
  const line = attacks[10]!;
  const cut = Math.floor(line.length / 2);
  const before1 = alertsIn(alerts).length;
  appendFileSync(flows, line.slice(0, cut));
  await new Promise((r) => setTimeout(r, 150));
  const t0 = Date.now();
  appendFileSync(flows, `${line.slice(cut)}\n${attacks.slice(11, 20).join('\n')}\n`);
  await waitFor(() => alertsIn(alerts).length >= before1 + 8, 5000, 'alerts on appended flows');
  const latencyMs = Date.now() - t0;
  assert.ok(latencyMs < 3000, `appended flows are scored within seconds (${latencyMs} ms)`);

  // Rotation: the collector renames the file away and starts a new one (with its own header).
  const before2 = alertsIn(alerts).length;
  renameSync(flows, `${flows}.1`);
  writeFileSync(flows, csv(attacks.slice(20, 30)));
  await waitFor(() => alertsIn(alerts).length >= before2 + 8, 8000, 'alerts from the new file');

  // Truncation in place (copytruncate), then new rows with the header again.
  const before3 = alertsIn(alerts).length;
  writeFileSync(flows, '');
  await new Promise((r) => setTimeout(r, 400));
  appendFileSync(flows, csv(attacks.slice(30, 40)));
  await waitFor(() => alertsIn(alerts).length >= before3 + 8, 8000, 'alerts after the truncation');

  io.stop();
  const summary = await running;
  assert.equal(summary.scored, 5 + 40, 'every flow was scored once: rows before and after the rotation, none twice');
  assert.equal(summary.skipped, 0, 'the header of a new file is not read as a row');
  const got = alertsIn(alerts);
  assert.equal(got.length, summary.flagged);
  assert.ok(got.every((a) => a.observer.name === 'branch-porto' && a.event.kind === 'alert'));
  assert.ok(log.text().includes('alerts are written as ECS JSON'));
});

test('stdin is live input too: a trickle of flows is scored without waiting for a full batch', async (t) => {
  const dir = tempDir(t);
  const alerts = join(dir, 'alerts.json');
  const stdin = new PassThrough();
  const log = captureLogger();
  const io = await openDetectIo({ input: '-', follow: false, alertsTo: `file:${alerts}`, site: 'branch-porto', logger: log.logger, signals: false, stdin, idleFlushMs: 50 });
  t.after(() => io.close());
  const running = runDetect({ model, shots, input: io.input, output: new PassThrough(), alerts: io.alerts, idleFlushMs: io.idleFlushMs, batchSize: 1024, schema, watch: false, logger: log.logger, ...ADAPT });
  stdin.write(`${header()}\n${rowsOf('DoS Hulk', 5, 60).join('\n')}\n`);
  await waitFor(() => alertsIn(alerts).length >= 4, 10_000, 'alerts before the batch is full or the input ends');
  stdin.end(`${rowsOf('DoS Hulk', 5, 70).join('\n')}\n`);
  const summary = await running;
  assert.equal(summary.scored, 10);
});

async function records(chunks: (string | Buffer)[], skipped: { n: number } = { n: 0 }): Promise<string[][]> {
  const out: string[][] = [];
  for await (const r of csvRecords(Readable.from(chunks), { maxRecordBytes: 64, onSkip: () => skipped.n++ })) out.push(r);
  return out;
}

test('the flow reader: quoted fields, "" escapes, line breaks in quotes, CRLF, a BOM, and chunks cut anywhere', async () => {
  const text = '\uFEFFa,b,c\r\n1,"x, y",3\r\n\r\n"say ""hi""",2,"multi\nline"\n4,ab"c,"q"tail\n5,6,7';
  const expected = [['a', 'b', 'c'], ['1', 'x, y', '3'], ['say "hi"', '2', 'multi\nline'], ['4', 'ab"c', 'qtail'], ['5', '6', '7']];
  assert.deepEqual(await records([text]), expected);
  const bytes = Buffer.from(text);
  // Every split point, including inside the BOM and inside the quoted line break.
  for (let cut = 1; cut < bytes.length; cut++) {
    assert.deepEqual(await records([bytes.subarray(0, cut), bytes.subarray(cut)]), expected, `cut at ${cut}`);
  }
  // A quote that never closes swallows at most maxRecordBytes, is skipped, and reading goes on.
  const skipped = { n: 0 };
  assert.deepEqual(await records([`1,2\n"open,${'z'.repeat(80)}\n3,4\n5,6`], skipped), [['1', '2'], ['3', '4'], ['5', '6']]);
  assert.equal(skipped.n, 1);
  // Short of the limit, an open quote takes the following lines into its field, as CSV says.
  assert.deepEqual(await records(['1,2\n"open,z\n3,4']), [['1', '2']]);
});
