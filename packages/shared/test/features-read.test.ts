import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { ErrorCode, isFedmetaError } from '../src/errors.js';
import { featureDim, featureNames, hashCategory, loadFlowTable, readFlows, rowIds, SKIP_REASONS } from '../src/features/index.js';
import { TOY_HEADER, textStream, toySchema } from './features-fixtures.js';

const GOOD = [
  '10.0.0.1,t1,100,0.5,tcp,http,normal',
  '10.0.0.2,t2,-3,2,udp,dns,dos',
  '10.0.0.3,t3,0,1e3,icmp,,scan',
];
const BAD = [
  '10.0.0.4,t4,100,0.5,tcp,http', // field-count (too few)
  '10.0.0.5,t5,100,0.5,tcp,http,normal,extra', // field-count (too many)
  '10.0.0.6,t6,lots,0.5,tcp,http,normal', // non-numeric
  '10.0.0.7,t7,NaN,0.5,tcp,http,dos', // nan
  '10.0.0.8,t8,Infinity,0.5,tcp,http,dos', // infinite
  '10.0.0.9,t9,100,-inf,tcp,http,dos', // infinite
  '10.0.0.10,t10,100,0.5,tcp,http,worm', // unknown-label
  '10.0.0.11,t11,100,0.5,tcp,http,', // empty-label
  '10.0.0.12,t12,,0.5,tcp,http,normal', // empty-value
  '10.0.0.13,t13,100,1e39,tcp,http,normal', // out-of-range for float32 without a transform
];

test('bad rows are skipped and counted by reason; good rows are encoded as the schema says', async () => {
  const text = [TOY_HEADER, GOOD[0], BAD[0], BAD[1], GOOD[1], ...BAD.slice(2), GOOD[2]].join('\r\n') + '\r\n';
  const t = await loadFlowTable(textStream(text), toySchema, { keepIds: true });
  assert.equal(t.report.rowsRead, GOOD.length + BAD.length);
  assert.equal(t.report.rowsKept, 3);
  assert.equal(t.n, 3);
  assert.deepEqual(
    Object.fromEntries(SKIP_REASONS.filter((r) => t.report.skipped[r] > 0).map((r) => [r, t.report.skipped[r]])),
    { 'field-count': 2, 'non-numeric': 1, nan: 1, infinite: 2, 'unknown-label': 1, 'empty-label': 1, 'empty-value': 1, 'out-of-range': 1 },
  );
  assert.equal(t.report.firstSkippedRow['field-count'], 2);
  assert.equal(t.report.firstSkippedRow['unknown-label'], 9);

  assert.equal(t.dim, featureDim(toySchema));
  assert.equal(t.dim, 2 + 3 + 4);
  assert.deepEqual(featureNames(toySchema).slice(0, 5), ['bytes', 'ratio', 'proto=tcp', 'proto=udp', 'proto=<other>']);
  const row = (i: number): number[] => Array.from(t.x.subarray(i * t.dim, (i + 1) * t.dim));
  const [r0, r1, r2] = [row(0), row(1), row(2)];
  // bytes: signed log1p; ratio: no transform.
  assert.ok(Math.abs(r0[0]! - Math.log1p(100)) < 1e-6);
  assert.ok(Math.abs(r1[0]! + Math.log1p(3)) < 1e-6);
  assert.equal(r2[0], 0);
  assert.deepEqual([r0[1], r1[1], r2[1]], [0.5, 2, 1000]);
  // proto one-hot with an "other" slot for icmp.
  assert.deepEqual(r0.slice(2, 5), [1, 0, 0]);
  assert.deepEqual(r1.slice(2, 5), [0, 1, 0]);
  assert.deepEqual(r2.slice(2, 5), [0, 0, 1]);
  // app hashed into one of 4 buckets.
  assert.equal(r0.slice(5).reduce((a, b) => a + b, 0), 1);
  assert.equal(r0[5 + hashCategory('http', 4)], 1);
  assert.equal(r2[5 + hashCategory('', 4)], 1);

  assert.deepEqual(Array.from(t.labels), [0, 1, 1]);
  assert.deepEqual(t.families, ['dos', 'normal', 'scan']);
  assert.deepEqual(Array.from(t.family), [1, 0, 2]);
  assert.deepEqual(t.report.byFamily, { dos: 1, normal: 1, scan: 1 });
  assert.deepEqual(rowIds(t, 1), { src_ip: '10.0.0.2', ts: 't2' });
});

test('a file without the columns the schema needs is refused, naming them', async () => {
  const text = 'src_ip,ts,ratio,app,label\n1.2.3.4,t,1,x,normal\n';
  await assert.rejects(loadFlowTable(textStream(text), toySchema), (e: unknown) => {
    assert.ok(isFedmetaError(e, ErrorCode.MISSING_COLUMNS));
    assert.match(e.message, /"bytes"/);
    assert.match(e.message, /"proto"/);
    assert.doesNotMatch(e.message, /"ratio"/);
    return true;
  });
  // Identifier columns are needed only when the caller keeps them.
  const noIds = 'bytes,ratio,proto,app,label\n1,1,tcp,x,normal\n';
  assert.equal((await loadFlowTable(textStream(noIds), toySchema)).n, 1);
  await assert.rejects(loadFlowTable(textStream(noIds), toySchema, { keepIds: true }), (e: unknown) => {
    assert.ok(isFedmetaError(e, ErrorCode.MISSING_COLUMNS));
    assert.match(e.message, /"src_ip", "ts"/);
    return true;
  });
});

test('messages about bad data never carry row values', async () => {
  const secret = '203.0.113.77';
  const text = `src_ip,bytes\n${secret},1\n`;
  await assert.rejects(loadFlowTable(textStream(text), toySchema), (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.ok(!e.message.includes(secret));
    return true;
  });
  const onlyBad = `${TOY_HEADER}\n${secret},t,oops,1,tcp,x,normal\n`;
  await assert.rejects(loadFlowTable(textStream(onlyBad), toySchema), (e: unknown) => {
    assert.ok(isFedmetaError(e, ErrorCode.NO_ROWS));
    assert.ok(!e.message.includes(secret) && !e.message.includes('oops'));
    return true;
  });
});

test('.csv.gz files and gzip streams are read; a BOM, quotes and whitespace in the header are handled', async () => {
  const text = `\ufeff${TOY_HEADER.replace('bytes', ' bytes ')}\n"10.0.0.1","t,1",100,0.5,tcp,"a ""quoted"" app",normal\n`;
  const dir = await mkdtemp(join(tmpdir(), 'fedmeta-features-'));
  try {
    const path = join(dir, 'flows.csv.gz');
    await writeFile(path, gzipSync(Buffer.from(text)));
    const fromFile = await loadFlowTable(path, toySchema, { keepIds: true });
    assert.equal(fromFile.n, 1);
    assert.deepEqual(rowIds(fromFile, 0), { src_ip: '10.0.0.1', ts: 't,1' });
    const fromStream = await loadFlowTable(textStream(text, true), toySchema, { gzip: true });
    assert.deepEqual(fromStream.x, fromFile.x);
    // A plain CSV with a misleading .gz name is still read (the content decides).
    const plain = join(dir, 'plain.csv.gz');
    await writeFile(plain, text);
    assert.deepEqual((await loadFlowTable(plain, toySchema)).x, fromFile.x);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('unreadable files are refused with a data-file error', async () => {
  await assert.rejects(loadFlowTable('/nonexistent/flows.csv', toySchema), (e: unknown) => isFedmetaError(e, ErrorCode.DATA_FILE));
  const corrupt = Buffer.concat([gzipSync(Buffer.from(`${TOY_HEADER}\n`)).subarray(0, 12), Buffer.from('not gzip at all')]);
  await assert.rejects(loadFlowTable(Readable.from([corrupt]), toySchema, { gzip: true }), (e: unknown) =>
    isFedmetaError(e, ErrorCode.DATA_FILE),
  );
  await assert.rejects(loadFlowTable(textStream(''), toySchema), (e: unknown) => isFedmetaError(e, ErrorCode.NO_ROWS));
});

test('readFlows streams rows one by one with maxRows, filter, sampling and progress', async () => {
  const rows = Array.from({ length: 500 }, (_, i) => `10.0.0.1,t${i},${i},0.5,tcp,x,${i % 5 === 0 ? 'dos' : 'normal'}`);
  const text = [TOY_HEADER, ...rows].join('\n');

  const reader = readFlows(textStream(text), toySchema, { maxRows: 120 });
  let n = 0;
  for await (const r of reader) {
    assert.equal(r.x.length, featureDim(toySchema));
    n++;
  }
  assert.equal(n, 120);
  assert.equal(reader.report.rowsRead, 120);
  assert.equal(reader.report.truncated, true);

  const progress: number[] = [];
  const attacks = readFlows(textStream(text), toySchema, {
    filter: (r) => r.label === 1,
    onProgress: (p) => progress.push(p.rowsRead),
    progressEvery: 200,
  });
  const kept = [];
  for await (const r of attacks) kept.push(r);
  assert.equal(kept.length, 100);
  assert.ok(kept.every((r) => r.label === 1 && r.family === 'dos'));
  assert.equal(attacks.report.rowsFiltered, 400);
  assert.deepEqual(progress, [200, 400, 500]);
  // Each yielded row is its own copy.
  assert.notEqual(kept[0]!.x, kept[1]!.x);
  assert.ok(kept[0]!.x[0]! < kept[1]!.x[0]!);

  const sampled = async (seed: number): Promise<number[]> => {
    const out: number[] = [];
    for await (const r of readFlows(textStream(text), toySchema, { sampleRate: 0.2, seed })) out.push(r.row);
    return out;
  };
  const a = await sampled(7);
  assert.deepEqual(await sampled(7), a);
  assert.notDeepEqual(await sampled(8), a);
  assert.ok(a.length > 50 && a.length < 150, `about a fifth of the rows, got ${a.length}`);
});

test('maxPerFamily keeps a bounded, seeded, uniform sample of each family from a long stream', async () => {
  const total = 8_000;
  // Generated lazily: the whole text never exists in memory.
  function* lines(): Generator<string> {
    yield `${TOY_HEADER}\n`;
    for (let i = 0; i < total; i++) yield `10.0.0.1,t,${i},0.5,tcp,x,${i % 4 === 0 ? 'scan' : 'normal'}\n`;
  }
  const load = (seed: number) => loadFlowTable(Readable.from(lines()), toySchema, { maxPerFamily: 50, seed });
  const t = await load(1);
  assert.equal(t.n, 100);
  assert.deepEqual(t.report.byFamily, { normal: 50, scan: 50 });
  assert.equal(t.report.rowsRead, total);
  assert.equal(t.report.rowsFiltered, total - 100);
  // Rows come from the whole file, not its head: the mean original index is near the middle.
  let sum = 0;
  for (let i = 0; i < t.n; i++) sum += Math.expm1(t.x[i * t.dim]!);
  assert.ok(sum / t.n > total * 0.3 && sum / t.n < total * 0.7);
  assert.deepEqual((await load(1)).x, t.x);
  assert.notDeepEqual((await load(2)).x, t.x);
});

test('stray quotes stay text; a quote left open is counted or, if it would swallow the file, refused', async () => {
  const stray = [TOY_HEADER, '10.0.0.1,t1,1,0.5,tcp,x,normal', '10.0.0.2,"t2"junk,2,0.5,tcp,x,normal', '10.0.0.3,t3,3,0.5,tcp,x,dos'];
  const t = await loadFlowTable(textStream(stray.join('\n') + '\n'), toySchema, { keepIds: true });
  assert.equal(t.n, 3);
  assert.equal(rowIds(t, 1).ts, '"t2"junk');

  const openAtEnd = [...stray, '10.0.0.4,"t4,4,0.5,tcp,x,normal'];
  const t2 = await loadFlowTable(textStream(openAtEnd.join('\n') + '\n'), toySchema);
  assert.equal(t2.n, 3);
  assert.equal(t2.report.skipped.malformed, 1);
  assert.equal(t2.report.rowsRead, 4);

  const swallowing = [TOY_HEADER, '10.0.0.4,"t4,4,0.5,tcp,x,normal', ...Array.from({ length: 40_000 }, (_, i) => `10.0.0.5,t${i},5,0.5,tcp,x,normal`)];
  await assert.rejects(loadFlowTable(Readable.from([swallowing.join('\n')]), toySchema), (e: unknown) => {
    assert.ok(isFedmetaError(e, ErrorCode.DATA_FILE));
    assert.match(e.message, /data row 1\b/);
    return true;
  });
});
