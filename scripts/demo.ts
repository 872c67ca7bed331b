// `npm run demo`: a federation of branch offices on the shipped CIC-IDS2017 sample, end to end on this machine.
// A coordinator process and one agent process per office meta-train a detector over socket.io on loopback; the
// best version is released and adapted at an office that never took part, whose attack family (Botnet) no
// office trained on, with K labelled flows; the results are compared with the baselines, written to
// out/demo/results.json and out/demo/report.html, and printed.
// Usage: node --conditions=fedmeta-source --import tsx scripts/demo.ts [--rounds N] [--seed S] [--out DIR]
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, FedmetaError } from '../packages/shared/src/index.js';
import {
  CIC_DEMO_PLAN,
  DEMO_DEFAULTS,
  DEMO_STEPS,
  ProcessGroup,
  StepFailure,
  StepRunner,
  describeError,
  describeExit,
  programsAt,
  crashLines,
  runDemo,
} from '../packages/lab/src/demo/index.js';
import type { ChildExit, DemoSettings, ManagedChild } from '../packages/lab/src/demo/index.js';
import { formatResultsTable } from '../packages/lab/src/report/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));

function usage(): string {
  return [
    'Usage: npm run demo -- [--rounds N] [--seed S] [--out DIR]',
    `  --rounds N  meta-training rounds (default ${DEMO_DEFAULTS.rounds})`,
    `  --seed S    seed of the split, the federation and the support draws (default ${DEMO_DEFAULTS.seed})`,
    '  --out DIR   output folder (default out/demo); what an earlier demo wrote there is replaced',
  ].join('\n');
}

function parseArgs(argv: string[]): { settings: DemoSettings; outDir: string } {
  const settings: DemoSettings = structuredClone(DEMO_DEFAULTS);
  let outDir = join(root, 'out', 'demo');
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new FedmetaError(ErrorCode.CONFIG, `${flag} needs a value\n${usage()}`);
      return v;
    };
    const whole = (v: string, min: number): number => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < min) throw new FedmetaError(ErrorCode.CONFIG, `${flag} must be a whole number of at least ${min}`);
      return n;
    };
    if (flag === '--help' || flag === '-h') {
      console.log(usage());
      process.exit(0);
    } else if (flag === '--rounds') settings.rounds = whole(value(), 1);
    else if (flag === '--seed') settings.seed = whole(value(), 0);
    else if (flag === '--out') outDir = resolve(value());
    else throw new FedmetaError(ErrorCode.CONFIG, `unknown option ${a}\n${usage()}`);
  }
  return { settings, outDir };
}

async function main(): Promise<number> {
  const started = performance.now();
  const { settings, outDir } = parseArgs(process.argv.slice(2));
  const print = (line: string): void => console.log(line);
  const steps = new StepRunner(DEMO_STEPS, print);
  const crashReason = (child: ManagedChild, exit: ChildExit): FedmetaError => {
    const lines = crashLines(child).map((l) => `        ${l.slice(0, 300)}`).join('\n');
    return new FedmetaError(ErrorCode.PRECONDITION, `the ${child.name} process exited unexpectedly (${describeExit(exit)}):\n${lines}`);
  };
  const group = new ProcessGroup((child, exit) => steps.abort(crashReason(child, exit)));
  // No orphans: whatever ends this process, its children go with it.
  process.on('exit', () => group.killAllNow());
  let interrupts = 0;
  const interrupt = (signal: NodeJS.Signals): void => {
    interrupts++;
    if (interrupts > 1) {
      group.killAllNow();
      process.exit(130);
    }
    print(`\n${signal}: stopping the coordinator and the agents (again to force)`);
    for (const c of group.alive) {
      c.stopping = true;
      c.signal('SIGTERM');
    }
    steps.abort(new FedmetaError(ErrorCode.PRECONDITION, `interrupted by ${signal}`));
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  process.on('SIGHUP', interrupt);

  print(`fedmeta demo: ${CIC_DEMO_PLAN.sites.length} branch offices meta-train a detector; an office they never saw meets ${CIC_DEMO_PLAN.evalFamily}.`);
  print(`output: ${relative(process.cwd(), outDir) || '.'}\n`);
  try {
    const outcome = await runDemo({ programs: programsAt(root), outDir, plan: CIC_DEMO_PLAN, settings, group, steps, print, tty: process.stdout.isTTY === true });
    const seconds = (performance.now() - started) / 1000;
    print('');
    print(`Detection at the held-out office (${CIC_DEMO_PLAN.evalFamily}), K labelled flows of each class, ${outcome.results.supportDraws} draws per K:`);
    print(formatResultsTable(outcome.results));
    print('');
    for (const [m, c] of Object.entries(outcome.results.communication)) {
      const t = outcome.results.target;
      print(
        `communication ${m.padEnd(10)} ${t.metric} >= ${t.value} at K = ${t.K}: ${c.roundsToTarget === null ? 'not reached' : `round ${c.roundsToTarget}, ${((c.bytesUploadedPerSite ?? 0) / 1024).toFixed(0)} KiB uploaded per office`}`,
      );
    }
    print('');
    print(`results: ${relative(process.cwd(), outcome.resultsFile)}`);
    print(`report:  ${relative(process.cwd(), outcome.reportFile)}`);
    print(`done in ${seconds.toFixed(0)} s`);
    return 0;
  } catch (e) {
    const step = e instanceof StepFailure ? e.step : (steps.current ?? 'setup');
    // A process that died is the cause of whatever failed next (a refused connection, a timeout): say so. Its
    // exit may be reported a moment after the error it caused.
    await new Promise((r) => setTimeout(r, 300));
    const crash = group.crashes[0];
    const reason = crash !== undefined ? crashReason(crash.child, crash.exit) : e instanceof StepFailure ? e.reason : e;
    print(`\ndemo failed at step "${step}": ${describeError(reason)}`);
    if (!(reason instanceof FedmetaError)) console.error(reason);
    print(`logs: ${relative(process.cwd(), outDir)}/coordinator/coordinator.log, ${relative(process.cwd(), outDir)}/agents/<office>/agent.log`);
    return 1;
  } finally {
    await group.stop(group.alive, 5000);
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`demo failed before it started: ${describeError(e)}`);
    process.exit(1);
  },
);
