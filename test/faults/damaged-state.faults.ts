// Damaged state on disk. The newest checkpoint truncated or with one bit flipped: the coordinator process still
// starts, on the previous good version, and its log says so. A directory it cannot trust (every checkpoint damaged,
// the checkpoints gone from under their manifest, the site registry damaged): it refuses to start, with a non-zero
// exit and a message that says what to do, instead of silently beginning a new federation. Many more
// cuts and flips are checked through FileStateStore itself, which is what the coordinator opens.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, featureDim, initialOptimizerState, resolveSchema, schemaFingerprint } from '@fedmeta/shared';
import { FileStateStore, digestState, initialCheckpoint, loadCoordinatorConfig, type Checkpoint } from '@fedmeta/coordinator';
import { cleanEnv, type Child } from '../helpers/children.js';
import { COORDINATOR_BIN, ROOT } from '../helpers/federation.js';
import { Federation, isMsg } from './helpers/federation.js';
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

test('the coordinator process starts on the previous good checkpoint and says so; on a directory it cannot trust it exits non-zero with a clear message', { timeout: 120_000 }, async () => {
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
  // Two more directories that cannot be trusted: the manifest records a federation whose checkpoint files are
  // gone, and a site registry (which has no older copy) with one bit flipped.
  const emptied = copy('proc-gone');
  for (let v = 0; v <= LATEST; v++) rmSync(checkpointFile(emptied, v));
  const registry = copy('proc-sites');
  flipBit(join(registry, 'sites.fmst'), 24, 5);

  const procs = [
    ['truncated', cut],
    ['bit-flipped', flipped],
    ['all damaged', ruined],
    ['checkpoints gone', emptied],
    ['site registry damaged', registry],
  ].map(([label, dir]) => fed.group.start(`coordinator (${label})`, coordinatorArgs(dir as string), { env: cleanEnv(), cwd: ROOT }));
  const [c1, c2, c3, c4, c5] = procs as [Child, Child, Child, Child, Child];

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
  const refusals: [Child, RegExp, RegExp][] = [
    [c3, /no checkpoint in .* verifies/, /restore the directory from a backup/],
    [c4, new RegExp(`held a federation, but its manifest records version ${LATEST} but no checkpoint file is left`), /restore the directory from a backup/],
    [c5, /the site registry .*sites\.fmst is damaged/, /restore it from a backup/],
  ];
  const codes: (number | null)[] = [];
  for (const [c, why, todo] of refusals) {
    const exit = await c.exited;
    codes.push(exit.code);
    assert.ok(exit.code !== null && exit.code !== 0, `${c.name}: it refuses to start (exit ${JSON.stringify(exit)})`);
    assert.equal(exit.signal, null);
    const text = c.err.join('\n');
    assert.match(text, new RegExp(ErrorCode.STATE_CORRUPT), c.name);
    assert.match(text, why, c.name);
    assert.match(text, todo, `${c.name}: the message says what to do`);
    assert.ok(!c.logs.some((l) => l['msg'] === 'coordinator ready' || l['msg'] === 'initialised the federation state'), `${c.name}: it did not start a new federation`);
  }
  assert.equal(readdirSync(ruined).filter((n) => n.endsWith('.fmck')).length, LATEST + 1, 'every file is left for the operator');
  assert.equal(readdirSync(emptied).filter((n) => n.endsWith('.fmck')).length, 0, 'no fresh checkpoint was written over the lost federation');
  await Promise.all([c1.exited, c2.exited]);
  recordRow({
    scenario: 'damaged state (process)',
    injected: 'newest checkpoint truncated; newest bit-flipped; untrusted directories: every checkpoint damaged, checkpoints deleted under a manifest, site registry bit-flipped',
    held: `started on version ${LATEST - 1} and logged FELL BACK (2/2); untrusted: ${refusals.length}/${refusals.length} refused (exit ${codes.join(', ')}, ${ErrorCode.STATE_CORRUPT}, what to do), no fresh start`,
    figures: `5 coordinator processes; ${LATEST + 1} files left untouched when nothing verifies`,
  });
});

/** A coordinator on `dataDir`, on a port of its own (the configuration's port 0). */
function coordinatorArgs(dataDir: string): string[] {
  return [COORDINATOR_BIN, 'serve', '--config', fed.configFile, '--dataDir', dataDir];
}
