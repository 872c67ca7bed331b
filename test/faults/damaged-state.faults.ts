// Damaged state on disk. The newest checkpoint truncated or with one bit flipped: the coordinator process still
// starts, on the previous good version, and its log says so. Every checkpoint damaged: it refuses to start, with a
// non-zero exit and a message that says what to do, instead of silently beginning a new federation. Many more
// cuts and flips are checked through FileStateStore itself, which is what the coordinator opens.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, featureDim, initialOptimizerState, resolveSchema, schemaFingerprint } from '@fedmeta/shared';
import { FileStateStore, digestState, initialCheckpoint, loadCoordinatorConfig, type Checkpoint } from '@fedmeta/coordinator';
import { cleanEnv } from '../helpers/children.js';
import { COORDINATOR_BIN, ROOT } from '../helpers/federation.js';
import { Federation, isMsg } from './helpers/federation.js';
import type { Proc } from './helpers/proc.js';
import { recordRow } from './helpers/report.js';
import { snapshotState, type StateSnapshot } from './helpers/state.js';

const LATEST = 3;
let fed: Federation;
/** What each version holds, digested, as committed. */
const good = new Map<number, StateSnapshot['digest']>();

const checkpointFile = (dir: string, v: number): string => join(dir, `checkpoint-${String(v).padStart(12, '0')}.fmck`);

function flipBit(file: string, byte: number, bit: number): void {
  const b = readFileSync(file);
  const at = ((byte % b.length) + b.length) % b.length;
  b[at] = (b[at] as number) ^ (1 << bit);
  writeFileSync(file, b);
}

/** Deterministic positions spread over a file: header, body, tail. */
function positions(length: number, count: number): number[] {
  const out = [0, 7, 16, 31, length - 1];
  for (let i = 0; out.length < count; i++) out.push(Math.floor(((i * 0.618_033_988_75) % 1) * length));
  return out.slice(0, count);
}

before(async () => {
  fed = await Federation.create({ name: 'damaged', sites: ['office-a', 'office-b'] });
  const config = loadCoordinatorConfig({ file: fed.configFile, env: {}, flags: {} });
  const schema = await resolveSchema('cicflowmeter');
  let cp: Checkpoint = initialCheckpoint(config, featureDim(schema), schemaFingerprint(schema), 11);
  const store = new FileStateStore(fed.dataDir);
  await store.open();
  try {
    for (let v = 0; v <= LATEST; v++) {
      if (v > 0) {
        // A plausible history: parameters moved, the optimizer a step further.
        const params = cp.params.map((x, i) => x + 0.001 * Math.sin(v * 31 + i));
        const optimizer = { ...initialOptimizerState('adam', params.length), step: v };
        cp = { ...cp, version: v, nextRound: v, params, optimizer };
      }
      await store.commit(cp);
    }
  } finally {
    await store.close();
  }
  for (let v = 0; v <= LATEST; v++) {
    const s = new FileStateStore(fed.dataDir);
    await s.open();
    const c = await s.loadVersion(v);
    await s.close();
    good.set(v, digestState(v, c.params, c.optimizer));
  }
});

after(async () => {
  await fed?.close();
});

function copy(label: string): string {
  return fed.copyState(label);
}

test('a truncated or bit-flipped newest checkpoint: FileStateStore detects every cut and flip and falls back to the previous version', { timeout: 60_000 }, async () => {
  const file = checkpointFile(fed.dataDir, LATEST);
  const length = readFileSync(file).length;
  const cuts = [0, 1, 8, 15, 16, 17, Math.floor(length / 3), Math.floor(length / 2), length - 4, length - 1];
  const flips = positions(length, 30);
  let detected = 0;
  let trials = 0;
  const damage: [string, (f: string) => void][] = [
    ...cuts.map((n): [string, (f: string) => void] => [`cut to ${n} bytes`, (f) => truncateSync(f, n)]),
    ...flips.map((p, i): [string, (f: string) => void] => [`bit ${i % 8} of byte ${p} flipped`, (f) => flipBit(f, p, i % 8)]),
  ];
  for (const [what, hurt] of damage) {
    const dir = copy(`store-${trials}`);
    hurt(checkpointFile(dir, LATEST));
    trials++;
    const snap = await snapshotState(dir);
    assert.equal(snap.version, LATEST - 1, `${what}: fell back to the previous version`);
    assert.equal(snap.report.status, 'fell-back', what);
    assert.deepEqual(snap.digest, good.get(LATEST - 1), `${what}: the previous version, bit for bit`);
    assert.equal(snap.report.skipped[0]?.version, LATEST);
    assert.ok(readdirSync(join(dir, 'quarantine')).length === 1, `${what}: the damaged file is set aside`);
    detected++;
  }
  recordRow({
    scenario: 'damaged state (store)',
    injected: `${cuts.length} truncations and ${flips.length} single-bit flips of the newest checkpoint`,
    held: `${detected}/${trials} detected by checksum or header; fell back to version ${LATEST - 1}, digest-equal`,
    figures: `checkpoint of ${length} bytes; damaged file quarantined every time`,
  });
});

test('the coordinator process starts on the previous good checkpoint and says so; with every checkpoint damaged it exits non-zero with a clear message', { timeout: 120_000 }, async () => {
  const cut = copy('proc-cut');
  const f1 = checkpointFile(cut, LATEST);
  truncateSync(f1, Math.floor(readFileSync(f1).length / 2));
  const flipped = copy('proc-flip');
  const f2 = checkpointFile(flipped, LATEST);
  flipBit(f2, Math.floor(readFileSync(f2).length / 2), 3);
  const ruined = copy('proc-all');
  for (let v = 0; v <= LATEST; v++) {
    const f = checkpointFile(ruined, v);
    if (v % 2 === 0) truncateSync(f, Math.floor(readFileSync(f).length / 3));
    else flipBit(f, 40 + v, v);
  }

  const procs = [
    ['truncated', cut],
    ['bit-flipped', flipped],
    ['all damaged', ruined],
  ].map(([label, dir]) => fed.group.start(`coordinator (${label})`, coordinatorArgs(dir as string), { env: cleanEnv(), cwd: ROOT }));
  const [c1, c2, c3] = procs as [Proc, Proc, Proc];

  for (const [c, what] of [
    [c1, 'truncated'],
    [c2, 'bit-flipped'],
  ] as const) {
    const ready = await c.waitForLog((l) => l['msg'] === 'coordinator ready', 60_000, 'the restored state');
    assert.equal(ready['version'], LATEST - 1, `${what}: it runs on the previous version`);
    const said = c.logs.find(isMsg('FELL BACK'));
    assert.ok(said, `${what}: the log says it fell back`);
    assert.equal(said['level'], 40, 'as a warning');
    assert.match(said['msg'] as string, new RegExp(`FELL BACK to version ${LATEST - 1} .*version ${LATEST} `));
    c.signal('SIGTERM');
  }
  const exit = await c3.exited;
  assert.notEqual(exit.code, 0, 'it refuses to start');
  assert.equal(exit.signal, null);
  const text = c3.err.join('\n');
  assert.match(text, new RegExp(ErrorCode.STATE_CORRUPT));
  assert.match(text, /no checkpoint in .* verifies/);
  assert.match(text, /restore the directory from a backup/);
  assert.ok(!c3.logs.some((l) => l['msg'] === 'coordinator ready' || l['msg'] === 'initialised the federation state'), 'it did not start a new federation');
  assert.equal(readdirSync(ruined).filter((n) => n.endsWith('.fmck')).length, LATEST + 1, 'every file is left for the operator');
  await Promise.all([c1.exited, c2.exited]);
  recordRow({
    scenario: 'damaged state (process)',
    injected: 'newest checkpoint truncated; newest bit-flipped; every checkpoint damaged',
    held: `started on version ${LATEST - 1} and logged FELL BACK (2/2); all damaged: exit ${exit.code}, ${ErrorCode.STATE_CORRUPT}, no fresh start`,
    figures: `3 coordinator processes; ${LATEST + 1} files left untouched when nothing verifies`,
  });
});

/** A coordinator on `dataDir`, on a port of its own (the configuration's port 0). */
function coordinatorArgs(dataDir: string): string[] {
  return [COORDINATOR_BIN, 'serve', '--config', fed.configFile, '--dataDir', dataDir];
}
