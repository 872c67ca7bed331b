import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isFedmetaError } from '../src/errors.js';
import { emptyReport, mergeTables } from '../src/features/index.js';
import type { FlowTable } from '../src/features/index.js';

function table(families: string[], rows: [number, number, number][], fingerprint = 'fp'): FlowTable {
  const report = emptyReport();
  report.rowsRead = rows.length + 1;
  report.rowsKept = rows.length;
  report.skipped['non-numeric'] = 1;
  for (const [, , f] of rows) report.byFamily[families[f]!] = (report.byFamily[families[f]!] ?? 0) + 1;
  return {
    x: Float32Array.from(rows.map(([v]) => v)),
    labels: Int32Array.from(rows.map(([, l]) => l)),
    family: Int32Array.from(rows.map(([, , f]) => f)),
    families,
    n: rows.length,
    dim: 1,
    fingerprint,
    report,
  };
}

test('merging tables re-indexes families by name and adds up their reports', () => {
  const a = table(['BENIGN', 'DDoS'], [[1, 0, 0], [2, 1, 1]]);
  const b = table(['BENIGN', 'Bot'], [[3, 1, 1], [4, 0, 0]]);
  const m = mergeTables([a, b]);
  assert.deepEqual(m.families, ['BENIGN', 'Bot', 'DDoS']);
  assert.deepEqual([...m.x], [1, 2, 3, 4]);
  assert.deepEqual([...m.labels], [0, 1, 1, 0]);
  assert.deepEqual([...m.family].map((i) => m.families[i]), ['BENIGN', 'DDoS', 'Bot', 'BENIGN']);
  assert.equal(m.report.rowsKept, 4);
  assert.equal(m.report.rowsRead, 6);
  assert.equal(m.report.skipped['non-numeric'], 2, 'bad rows of every file are counted');
  assert.deepEqual(m.report.byFamily, { BENIGN: 2, DDoS: 1, Bot: 1 });
});

test('tables read with different schemas, or none at all, are refused with a code', () => {
  assert.throws(() => mergeTables([table(['x'], [[1, 0, 0]]), table(['x'], [[1, 0, 0]], 'other')]), (e) => isFedmetaError(e, ErrorCode.SHAPE));
  assert.throws(() => mergeTables([]), (e) => isFedmetaError(e, ErrorCode.NO_ROWS));
});
