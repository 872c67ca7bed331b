#!/usr/bin/env node
// Runs the fault-injection suite: every *.faults.ts under test/faults with node's own test runner, one file at a
// time (they start real coordinator and agent processes, and share two cores), then prints the table of what was
// injected and what held. The files are not *.test.ts, so `npm test` leaves them out.
// Usage: node scripts/run-faults.mjs [--profile suite|soak] [substring filter...]
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = join(root, 'test', 'faults');

/** Parses the command line: a profile and filters on the file paths. */
export function parseArgs(argv) {
  const out = { profile: 'suite', filters: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--profile') out.profile = argv[++i] ?? 'suite';
    else if (a.startsWith('--profile=')) out.profile = a.slice('--profile='.length);
    else out.filters.push(a);
  }
  return out;
}

export function faultFiles(filters = []) {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.faults.ts'))
    .map((n) => relative(root, join(dir, n)))
    .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
    .sort();
}

/**
 * Runs the chosen files under `profile` and resolves with the exit status and the rows they recorded. The test
 * processes get --expose-gc, so that the memory checks measure what is live rather than what awaits collection.
 */
export async function runFaults({ profile = 'suite', filters = [] } = {}) {
  const files = faultFiles(filters);
  if (files.length === 0) throw new Error('no fault files matched');
  const work = mkdtempSync(join(tmpdir(), 'fedmeta-faults-report-'));
  const report = join(work, 'rows.jsonl');
  const args = [
    '--conditions=fedmeta-source',
    '--import',
    'tsx',
    '--expose-gc',
    '--test',
    '--test-concurrency=1',
    '--test-reporter=spec',
    ...files,
  ];
  const started = Date.now();
  const status = await new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, FEDMETA_FAULTS_REPORT: report, FEDMETA_FAULTS_PROFILE: profile },
    });
    // Ctrl-C reaches the test runner through the terminal; a SIGTERM from CI is passed on.
    const forward = () => child.kill('SIGTERM');
    process.once('SIGTERM', forward);
    child.on('exit', (code, signal) => {
      process.off('SIGTERM', forward);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
  const { tsImport } = await import('tsx/esm/api');
  const { readRows } = await tsImport('../test/faults/helpers/report.ts', import.meta.url);
  const rows = readRows(report);
  rmSync(work, { recursive: true, force: true });
  return { status, rows, files, wallMs: Date.now() - started };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (faultFiles(opts.filters).length === 0) {
    process.stderr.write(`run-faults: no fault file under test/faults matches ${opts.filters.join(', ')}\n`);
    process.exit(2);
  }
  const { status, rows, files, wallMs } = await runFaults(opts);
  const { tsImport } = await import('tsx/esm/api');
  const { formatTable } = await tsImport('../test/faults/helpers/report.ts', import.meta.url);
  process.stdout.write(`\n${formatTable(rows, `fault injection (${opts.profile} profile, ${files.length} files, ${(wallMs / 1000).toFixed(1)} s): what was injected and what held`)}\n`);
  if (status !== 0) process.stdout.write('\nSOME FAULT TESTS FAILED: the table lists only the scenarios that held; see the failures above.\n');
  process.exit(status);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
