// scripts/check-deps.mjs: the version comparison it rests on, the floor check over every copy a lock file installs
// (nested ones included), npm audit's report read as pass, fail or unavailable, and the script as CI runs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../helpers/federation.js';
import { recordRow } from './helpers/report.js';

interface CheckDeps {
  FLOORS: Record<string, string>;
  compareVersions(a: string, b: string): number;
  checkFloors(lock: unknown): { problems: string[]; checked: { name: string; version: string; path: string }[] };
  readAudit(stdout: string, stderr?: string): { status: 'passed' | 'failed' | 'unavailable'; high?: number; names?: string[]; reason?: string };
}

const SCRIPT = join(ROOT, 'scripts', 'check-deps.mjs');
const load = async (): Promise<CheckDeps> => (await import(pathToFileURL(SCRIPT).href)) as CheckDeps;

/** A lock file (version 3) holding the given packages at the given paths. */
function lockOf(entries: Record<string, string>): unknown {
  const packages: Record<string, unknown> = { '': { name: 'x', version: '1.0.0' } };
  for (const [path, version] of Object.entries(entries)) packages[path] = { version };
  return { name: 'x', lockfileVersion: 3, packages };
}

const SAFE = {
  'node_modules/socket.io': '4.8.4',
  'node_modules/engine.io': '6.6.4',
  'node_modules/socket.io-parser': '4.2.4',
  'node_modules/ws': '8.18.0',
  'node_modules/msgpackr': '1.11.2',
};

test('version comparison: semver precedence, pre-releases below their release', async () => {
  const { compareVersions } = await load();
  const cases: [string, string, number][] = [
    ['4.6.2', '4.6.2', 0],
    ['4.6.1', '4.6.2', -1],
    ['4.10.0', '4.6.2', 1],
    ['10.0.0', '9.99.99', 1],
    ['8.17.0', '8.17.1', -1],
    ['8.17.1-beta.1', '8.17.1', -1],
    ['8.17.1-alpha', '8.17.1-beta', -1],
    ['1.0.0-rc.2', '1.0.0-rc.10', -1],
    ['1.0.0-1', '1.0.0-alpha', -1],
    ['v1.10.1', '1.10.1', 0],
    ['1.10.1+build.5', '1.10.1', 0],
  ];
  for (const [a, b, want] of cases) {
    assert.equal(compareVersions(a, b), want, `${a} vs ${b}`);
    assert.equal(compareVersions(b, a), want === 0 ? 0 : -want, `${b} vs ${a}`);
  }
  assert.throws(() => compareVersions('latest', '1.0.0'));
});

test('floors: every copy in the lock counts, nested ones too; the real lock file passes', async () => {
  const { checkFloors, FLOORS } = await load();
  assert.deepEqual(checkFloors(lockOf(SAFE)).problems, []);
  const nested = checkFloors(lockOf({ ...SAFE, 'node_modules/engine.io-client/node_modules/ws': '8.17.0' }));
  assert.equal(nested.problems.length, 1);
  assert.match(nested.problems[0] as string, /engine\.io-client\/node_modules\/ws: ws 8\.17\.0 is below 8\.17\.1/);
  for (const [name, floor] of Object.entries(FLOORS)) {
    const [maj, min, patch] = floor.split('.').map(Number) as [number, number, number];
    const below = patch > 0 ? `${maj}.${min}.${patch - 1}` : `${maj}.${min - 1}.99`;
    const r = checkFloors(lockOf({ ...SAFE, [`node_modules/${name}`]: below }));
    assert.equal(r.problems.length, 1, `${name} ${below} is refused`);
    assert.equal(checkFloors(lockOf({ ...SAFE, [`node_modules/${name}`]: floor })).problems.length, 0, `${name} ${floor} is accepted`);
  }
  assert.equal(checkFloors(lockOf({ ...SAFE, 'node_modules/msgpackr': 'github:x/y' })).problems.length, 1, 'an unparseable version is refused');
  // Lock file version 1: a tree of dependencies.
  const v1 = { lockfileVersion: 1, dependencies: { 'socket.io': { version: '4.8.4', dependencies: { 'socket.io-parser': { version: '4.2.1' } } } } };
  assert.match(checkFloors(v1).problems.join('\n'), /node_modules\/socket\.io\/node_modules\/socket\.io-parser: socket\.io-parser 4\.2\.1/);
  const { readFileSync } = await import('node:fs');
  const real = checkFloors(JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')));
  assert.deepEqual(real.problems, []);
  assert.deepEqual([...new Set(real.checked.map((p) => p.name))].sort(), Object.keys(FLOORS).sort(), 'every floored package is in the lock');
});

test('npm audit: a report with a high advisory fails, a clean one passes, no report means unavailable', async () => {
  const { readAudit } = await load();
  const report = (high: number, critical = 0) =>
    JSON.stringify({
      auditReportVersion: 2,
      vulnerabilities: high > 0 ? { ws: { name: 'ws', severity: 'high', range: '<8.17.1' } } : {},
      metadata: { vulnerabilities: { info: 0, low: 1, moderate: 2, high, critical, total: 3 + high + critical } },
    });
  assert.deepEqual(readAudit(report(1)).status, 'failed');
  assert.deepEqual(readAudit(report(1)).names, ['ws (high, <8.17.1)']);
  assert.equal(readAudit(report(0, 1)).status, 'failed');
  assert.equal(readAudit(report(0)).status, 'passed');
  assert.equal(readAudit(JSON.stringify({ error: { code: 'ENOTFOUND', summary: 'request to https://registry.npmjs.org failed' } })).status, 'unavailable');
  assert.equal(readAudit(JSON.stringify({ message: '405 Method Not Allowed', statusCode: 405 })).status, 'unavailable');
  assert.equal(readAudit('', 'npm error code EAI_AGAIN').status, 'unavailable');
});

test('the script: a vulnerable nested copy fails CI; the real lock passes, with or without the audit service', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedmeta-deps-'));
  try {
    const bad = join(dir, 'package-lock.json');
    writeFileSync(bad, JSON.stringify(lockOf({ ...SAFE, 'node_modules/socket.io/node_modules/socket.io-parser': '4.2.2' })));
    const r1 = spawnSync(process.execPath, [SCRIPT, '--lock', bad, '--no-audit'], { encoding: 'utf8' });
    assert.equal(r1.status, 1, r1.stdout + r1.stderr);
    assert.match(r1.stdout, /version floors: FAILED/);
    assert.match(r1.stdout, /socket\.io-parser 4\.2\.2 is below 4\.2\.3/);

    const r2 = spawnSync(process.execPath, [SCRIPT, '--audit-timeout-ms', '30000'], { encoding: 'utf8', cwd: ROOT });
    assert.equal(r2.status, 0, r2.stdout + r2.stderr);
    assert.match(r2.stdout, /version floors: ok/);
    assert.match(r2.stdout, /npm audit: (ok|the audit service could not be used)/);
    const audit = /npm audit: (.*)/.exec(r2.stdout)?.[1] ?? '';
    recordRow({
      scenario: 'dependencies',
      injected: 'lock files with copies below the floors (top-level, nested, lock v1), audit reports with high/critical advisories',
      held: 'every copy below its floor refused, exit 1; high advisories fail; an unreachable audit leaves the floors to decide',
      figures: `real lock: floors ok; audit: ${audit.slice(0, 120)}`,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
