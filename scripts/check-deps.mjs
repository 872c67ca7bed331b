#!/usr/bin/env node
// Dependency check, run in CI. Two parts:
//  1. Version floors: every copy of socket.io, engine.io, socket.io-parser, ws and msgpackr that package-lock.json
//     installs, nested copies included, must be at or above the release that fixed the advisories known against
//     it (denial of service through crafted packets, oversized headers, prototype pollution in decoding).
//  2. `npm audit --omit=dev --audit-level=high --json`, under a time limit: a high or critical advisory in the
//     production dependencies fails the check. Where the audit service cannot be reached or gives no report
//     (no network, a proxy, a registry mirror without the audit endpoint), it says so and the floor check alone
//     decides.
// Usage: node scripts/check-deps.mjs [--lock package-lock.json] [--no-audit] [--audit-timeout-ms 60000]
// Exit status: 0 when both parts pass (or the audit is unavailable), 1 when either finds a problem, 2 on bad usage.
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The lowest acceptable version of each package. */
export const FLOORS = Object.freeze({
  'socket.io': '4.6.2',
  'engine.io': '6.4.2',
  'socket.io-parser': '4.2.3',
  ws: '8.17.1',
  msgpackr: '1.10.1',
});

const SEMVER = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

/** [major, minor, patch, prerelease identifiers] of a semver string, or null when it is not one. */
export function parseVersion(v) {
  const m = SEMVER.exec(String(v).trim());
  if (!m) return null;
  return [Number(m[1]), Number(m[2]), Number(m[3]), m[4] === undefined ? [] : m[4].split('.')];
}

function comparePre(a, b) {
  // A release ranks above its pre-releases; identifiers compare numerically when both are numbers.
  if (a.length === 0 || b.length === 0) return a.length === b.length ? 0 : a.length === 0 ? 1 : -1;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    if (nx && ny) {
      if (Number(x) !== Number(y)) return Number(x) < Number(y) ? -1 : 1;
    } else if (nx !== ny) {
      return nx ? -1 : 1;
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}

/** -1, 0 or 1 by semver precedence; throws on a string that is not a version. */
export function compareVersions(a, b) {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (!x || !y) throw new Error(`not a version: ${!x ? a : b}`);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  return comparePre(x[3], y[3]);
}

/** Every installed package of a lock file: { name, version, path }. Lock file versions 1, 2 and 3. */
export function lockedPackages(lock) {
  const out = [];
  if (lock && typeof lock.packages === 'object' && lock.packages !== null) {
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (path === '' || !entry || typeof entry !== 'object' || entry.link) continue;
      const at = path.lastIndexOf('node_modules/');
      if (at === -1) continue;
      const name = typeof entry.name === 'string' ? entry.name : path.slice(at + 'node_modules/'.length);
      if (typeof entry.version === 'string') out.push({ name, version: entry.version, path });
    }
    return out;
  }
  // Lock file version 1: a tree of "dependencies".
  const walk = (deps, prefix) => {
    for (const [name, entry] of Object.entries(deps ?? {})) {
      if (!entry || typeof entry !== 'object') continue;
      const path = `${prefix}node_modules/${name}`;
      if (typeof entry.version === 'string') out.push({ name, version: entry.version, path });
      walk(entry.dependencies, `${path}/`);
    }
  };
  walk(lock?.dependencies, '');
  return out;
}

/** Copies below their floor, and what was checked. A version that does not parse is a problem too. */
export function checkFloors(lock, floors = FLOORS) {
  const problems = [];
  const checked = [];
  for (const p of lockedPackages(lock)) {
    const floor = floors[p.name];
    if (floor === undefined) continue;
    checked.push(p);
    if (!parseVersion(p.version)) {
      problems.push(`${p.path}: version "${p.version}" is not a release version; pin ${p.name} >= ${floor}`);
    } else if (compareVersions(p.version, floor) < 0) {
      problems.push(`${p.path}: ${p.name} ${p.version} is below ${floor}; update it (npm update ${p.name}, or an "overrides" entry for a nested copy)`);
    }
  }
  return { problems, checked };
}

/**
 * Runs npm audit on the production dependencies. Resolves { status: 'passed' | 'failed' | 'unavailable', ... }:
 * 'unavailable' when npm gave no audit report in time (no network, an endpoint that refuses, a timeout).
 */
export function runAudit({ cwd, timeoutMs = 60_000, npm = process.platform === 'win32' ? 'npm.cmd' : 'npm' } = {}) {
  return new Promise((done) => {
    let out = '';
    let err = '';
    let settled = false;
    const finish = (r) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      done(r);
    };
    let child;
    try {
      child = spawn(npm, ['audit', '--omit=dev', '--audit-level=high', '--json'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      finish({ status: 'unavailable', reason: `npm could not be started (${e.code ?? e.message})` });
      return;
    }
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish({ status: 'unavailable', reason: `no answer within ${Math.round(timeoutMs / 1000)} s` });
    }, timeoutMs);
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => finish({ status: 'unavailable', reason: `npm could not be started (${e.code ?? e.message})` }));
    child.on('close', () => finish(readAudit(out, err)));
  });
}

/** Reads npm audit's JSON output. */
export function readAudit(stdout, stderr = '') {
  let report;
  try {
    report = JSON.parse(stdout);
  } catch {
    const line = stderr.split('\n').find((l) => /error|ENOTFOUND|EAI_AGAIN|ECONN|ETIMEDOUT/i.test(l)) ?? 'no JSON report';
    return { status: 'unavailable', reason: line.trim().slice(0, 200) };
  }
  const counts = report?.metadata?.vulnerabilities;
  if (!counts || typeof counts !== 'object') {
    const e = report?.error ?? {};
    const message = report?.message || e.summary || (report?.statusCode ? `HTTP ${report.statusCode}` : '');
    const reason = [e.code, message].filter((x) => x !== undefined && x !== '').join(': ');
    return { status: 'unavailable', reason: (reason || 'the report has no vulnerability counts').slice(0, 200) };
  }
  const high = Number(counts.high ?? 0);
  const critical = Number(counts.critical ?? 0);
  const names = Object.entries(report.vulnerabilities ?? {})
    .filter(([, v]) => v && (v.severity === 'high' || v.severity === 'critical'))
    .map(([name, v]) => `${name} (${v.severity}${v.range ? `, ${v.range}` : ''})`);
  return { status: high + critical > 0 ? 'failed' : 'passed', high, critical, total: Number(counts.total ?? 0), names };
}

function parseArgs(argv) {
  const o = { lock: null, audit: true, timeoutMs: 60_000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--lock') o.lock = argv[++i];
    else if (a === '--no-audit') o.audit = false;
    else if (a === '--audit-timeout-ms') o.timeoutMs = Number(argv[++i]);
    else throw new Error(`unknown argument ${a}`);
  }
  if (!(o.timeoutMs > 0)) throw new Error('--audit-timeout-ms needs a positive number');
  return o;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`check-deps: ${e.message}\nusage: node scripts/check-deps.mjs [--lock FILE] [--no-audit] [--audit-timeout-ms MS]\n`);
    return 2;
  }
  const root = fileURLToPath(new URL('..', import.meta.url));
  const lockFile = resolve(opts.lock ?? `${root}/package-lock.json`);
  let lock;
  try {
    lock = JSON.parse(readFileSync(lockFile, 'utf8'));
  } catch (e) {
    process.stderr.write(`check-deps: cannot read ${lockFile} (${e.code ?? e.message}); run npm install to create it\n`);
    return 1;
  }
  let failed = false;
  const { problems, checked } = checkFloors(lock);
  const summary = Object.keys(FLOORS)
    .map((n) => `${n} ${checked.filter((p) => p.name === n).map((p) => p.version).join('/') || '(not installed)'} >= ${FLOORS[n]}`)
    .join('; ');
  if (problems.length > 0) {
    failed = true;
    process.stdout.write(`version floors: FAILED\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
  } else {
    process.stdout.write(`version floors: ok (${checked.length} copies: ${summary})\n`);
  }
  if (!opts.audit) {
    process.stdout.write('npm audit: skipped (--no-audit)\n');
  } else {
    const a = await runAudit({ cwd: dirname(lockFile), timeoutMs: opts.timeoutMs });
    if (a.status === 'unavailable') {
      process.stdout.write(`npm audit: the audit service could not be used (${a.reason}); the version floors decide\n`);
    } else if (a.status === 'failed') {
      failed = true;
      process.stdout.write(`npm audit: FAILED: ${a.high} high and ${a.critical} critical advisories in production dependencies: ${a.names.join(', ')}\n`);
    } else {
      process.stdout.write(`npm audit: ok (no high or critical advisory; ${a.total} lower)\n`);
    }
  }
  return failed ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = await main();
