// The soak: the fault-injection scenarios of test/faults run again and again with the soak profile's counts
// (20 coordinator kills at each crash point, a million fuzzed messages, ten agents churning for minutes) until the
// time given has passed, then the same table as the suite's, one block of rows per pass.
// Usage: npm run soak -- --minutes N [substring filter...]
// A pass that has started always finishes (stopping a crash scenario halfway would prove nothing), so a soak
// runs at least one pass and may overrun N by up to one pass: one pass takes about 20 minutes on two cores, so
// `--minutes 2` is one pass. It stops at the first pass that fails.
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { formatTable, type FaultRow } from '../test/faults/helpers/report.js';

interface FaultsRun {
  status: number;
  rows: FaultRow[];
  files: string[];
  wallMs: number;
}

interface Runner {
  runFaults(opts: { profile: string; filters: string[] }): Promise<FaultsRun>;
  faultFiles(filters: string[]): string[];
}

function parseArgs(argv: string[]): { minutes: number; filters: string[] } {
  let minutes = Number.NaN;
  const filters: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--minutes') minutes = Number(argv[++i]);
    else if (a.startsWith('--minutes=')) minutes = Number(a.slice('--minutes='.length));
    else filters.push(a);
  }
  if (!(minutes > 0)) throw new Error('give the soak time: --minutes N (N > 0)');
  return { minutes, filters };
}

async function main(): Promise<number> {
  let args: { minutes: number; filters: string[] };
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`soak: ${(e as Error).message}\nusage: npm run soak -- --minutes N [filter...]\n`);
    return 2;
  }
  const root = fileURLToPath(new URL('..', import.meta.url));
  // The runner is plain JavaScript (it must start without tsx); loaded by path, its shape declared above.
  const runner = (await import(pathToFileURL(join(root, 'scripts', 'run-faults.mjs')).href)) as Runner;
  if (runner.faultFiles(args.filters).length === 0) {
    process.stderr.write(`soak: no fault file under test/faults matches ${args.filters.join(', ')}\n`);
    return 2;
  }
  const end = Date.now() + args.minutes * 60_000;
  const all: FaultRow[] = [];
  let pass = 0;
  let status = 0;
  const t0 = Date.now();
  do {
    pass++;
    process.stdout.write(`\nsoak pass ${pass} (${((end - Date.now()) / 60_000).toFixed(1)} min left)\n`);
    const r = await runner.runFaults({ profile: 'soak', filters: args.filters });
    all.push(...r.rows.map((row) => ({ ...row, scenario: `#${pass} ${row.scenario}` })));
    process.stdout.write(`\n${formatTable(r.rows, `soak pass ${pass} (${(r.wallMs / 60_000).toFixed(1)} min)`)}\n`);
    status = r.status;
  } while (status === 0 && Date.now() < end);
  const minutes = ((Date.now() - t0) / 60_000).toFixed(1);
  // After one pass its table, printed above, is the whole story.
  if (pass > 1) process.stdout.write(`\n${formatTable(all, `soak: ${pass} passes in ${minutes} min, soak profile: what was injected and what held`)}\n`);
  else process.stdout.write(`\nsoak: 1 pass in ${minutes} min\n`);
  if (status !== 0) process.stdout.write(`\nSOAK FAILED in pass ${pass}: see the failures above.\n`);
  return status;
}

process.exitCode = await main();
