import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, isFedmetaError } from '@fedmeta/shared';
import { FileStateStore } from '../src/state/index.js';
import { checkpointFile, makeCheckpoint, tempDir } from './store-helpers.js';

const JOURNAL = 'round-journal.jsonl';

test('journal entries of the round in flight survive a restart, in order', async (t) => {
  const dir = await tempDir(t);
  const s = new FileStateStore(dir);
  await s.open();
  await s.commit(makeCheckpoint(1, { nextRound: 1 }));
  await s.appendJournal({ type: 'round-started', round: 1, sampled: ['a', 'b'] });
  await s.appendJournal({ type: 'update-accepted', round: 1, site: 'a' });
  await s.close();

  const again = new FileStateStore(dir);
  const report = await again.open();
  t.after(() => again.close());
  assert.equal(report.journalEntries, 2);
  assert.deepEqual(await again.readJournal(), [
    { type: 'round-started', round: 1, sampled: ['a', 'b'] },
    { type: 'update-accepted', round: 1, site: 'a' },
  ]);
  assert.equal((await readFile(join(dir, JOURNAL), 'utf8')).split('\n').length, 3, 'one JSON line per entry');
});

test('a torn last journal line is dropped and the next entry starts on a clean line', async (t) => {
  const dir = await tempDir(t);
  const s = new FileStateStore(dir);
  await s.open();
  await s.appendJournal({ n: 1 });
  await s.appendJournal({ n: 2 });
  await s.close();
  await appendFile(join(dir, JOURNAL), '{"n":3,"si');

  const again = new FileStateStore(dir);
  const report = await again.open();
  t.after(() => again.close());
  assert.equal(report.journalEntries, 2);
  assert.equal(report.journalDroppedTail, true);
  assert.match(report.message, /torn last entry/);
  await again.appendJournal({ n: 4 });
  assert.equal(await readFile(join(dir, JOURNAL), 'utf8'), '{"n":1}\n{"n":2}\n{"n":4}\n');
});

test('committing the next round clears the journal; a release of the same round keeps it', async (t) => {
  const dir = await tempDir(t);
  const s = new FileStateStore(dir);
  await s.open();
  t.after(() => s.close());
  await s.commit(makeCheckpoint(1, { nextRound: 1 }));
  await s.appendJournal({ round: 1, event: 'started' });
  await s.commit(makeCheckpoint(1, { nextRound: 1, released: [1] }));
  assert.equal((await s.readJournal()).length, 1, 'metadata-only commit keeps the round in flight');
  await s.commit(makeCheckpoint(2, { nextRound: 2, released: [1] }));
  assert.deepEqual(await s.readJournal(), []);
});

test('binary vectors are refused in the journal: they belong in checkpoints', async (t) => {
  const dir = await tempDir(t);
  const s = new FileStateStore(dir);
  await s.open();
  t.after(() => s.close());
  await assert.rejects(s.appendJournal({ update: new Float32Array(3) }), (e) => {
    assert.ok(isFedmetaError(e, ErrorCode.PRECONDITION));
    assert.match(e.message, /"update" is binary/);
    return true;
  });
  assert.deepEqual(await s.readJournal(), []);
});

test('after a fallback the journal of the lost round is discarded and the report says so', async (t) => {
  const dir = await tempDir(t);
  const s = new FileStateStore(dir);
  await s.open();
  await s.commit(makeCheckpoint(1, { nextRound: 1 }));
  await s.commit(makeCheckpoint(2, { nextRound: 2 }));
  await s.appendJournal({ round: 2, event: 'started' });
  await s.close();
  await truncate(checkpointFile(dir, 2), 100);

  const again = new FileStateStore(dir);
  const report = await again.open();
  t.after(() => again.close());
  assert.equal(report.status, 'fell-back');
  assert.equal(report.journalEntries, 0);
  assert.match(report.message, /discarded the journal/);
  assert.deepEqual(await again.readJournal(), []);
});
