import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { deriveSeed, initRuntime } from '@fedmeta/shared';
import { loadDataset } from '../eval/data.js';
import { createProgress } from '../eval/progress.js';
import type { EvalResults } from '../eval/results.js';
import { writeResults } from '../eval/runner.js';
import { formatResultsTable } from '../report/index.js';
import { evaluateDemo, demoSplit } from './evaluate.js';
import { startAgent, startCoordinator, waitForSites, writeAgentConfig } from './federation.js';
import type { Programs, RunningCoordinator } from './federation.js';
import { readFederationRun } from './federation-run.js';
import type { FederationRun } from './federation-run.js';
import type { DemoPlan } from './plan.js';
import type { ProcessGroup } from './processes.js';
import { writeDemoReport } from './report-input.js';
import { formatRoundProgress, runRoundsWithProgress } from './rounds.js';
import { demoEvalConfig, federationSettings } from './settings.js';
import type { DemoSettings } from './settings.js';
import { writeOfficeFiles } from './split-sites.js';
import type { OfficeFile } from './split-sites.js';
import type { StepRunner } from './steps.js';

export const DEMO_STEPS = 9;

/** What the demo writes into its output folder. */
export const DEMO_OUTPUTS = ['sites', 'coordinator', 'agents', 'results.json', 'results.txt', 'report.html'];

export interface DemoContext {
  programs: Programs;
  outDir: string;
  plan: DemoPlan;
  settings: DemoSettings;
  group: ProcessGroup;
  steps: StepRunner;
  print: (line: string) => void;
  /** Whether progress lines may redraw in place (a terminal). */
  tty: boolean;
}

export interface DemoOutcome {
  results: EvalResults;
  resultsFile: string;
  reportFile: string;
  federation: FederationRun;
  offices: OfficeFile[];
}

function officeLine(o: OfficeFile): string {
  const attacks = Object.entries(o.attacks)
    .map(([f, n]) => `${f} ${n}`)
    .join(', ');
  return `      ${o.name.padEnd(18)} ${o.role.padEnd(10)} benign ${String(o.benign).padStart(4)}  ${attacks}`;
}

/**
 * The whole demo, step by step: cut the shipped sample into offices, run a real federation of processes on
 * them, release its best version, score it on the held-out office against the baselines, write the results
 * and the report. Child processes belong to `ctx.group`; the caller stops them, whatever happens here.
 */
export async function runDemo(ctx: DemoContext): Promise<DemoOutcome> {
  const { plan, settings, steps, print, group } = ctx;
  const root = ctx.programs.root;
  const out = ctx.outDir;
  const config = demoEvalConfig(plan, settings, root);
  const shown = (p: string): string => relative(process.cwd(), p) || '.';
  const wallStart = performance.now();

  const { dataset, split, offices } = await steps.run('cut the shipped sample into branch offices', async () => {
    // Only what an earlier demo wrote is removed, never the folder itself: --out may name a folder with other things.
    for (const name of DEMO_OUTPUTS) await rm(join(out, name), { recursive: true, force: true });
    await mkdir(out, { recursive: true });
    await initRuntime();
    const data = await loadDataset({ files: config.files, schemaRef: config.schemaRef });
    const s = demoSplit(config, data);
    const files = await writeOfficeFiles(config.files[0]!, data.table, data.schema, [...s.sites, s.validation, s.heldOut], join(out, 'sites'));
    for (const o of files) print(officeLine(o));
    print(`      each office's flows: ${shown(join(out, 'sites'))}/<office>/flows.csv.gz (identifier columns stay in the file; the schema drops them)`);
    return { dataset: data, split: s, offices: files };
  });

  const fed = federationSettings(settings);
  const coordinator: RunningCoordinator = await steps.run('start the coordinator', async () => {
    const c = await startCoordinator(group, ctx.programs, join(out, 'coordinator'), fed, split.sites.length);
    print(`      listening on ${c.url} (loopback only, plain HTTP for the demo); log ${shown(join(out, 'coordinator', 'coordinator.log'))}`);
    return c;
  });

  const tokens = await steps.run('register the offices (sites add)', async () => {
    const t = new Map<string, string>();
    for (const o of split.sites) {
      t.set(o.name, await coordinator.admin.addSite(o.name));
      print(`      ${o.name}: enrollment token issued`);
    }
    return t;
  });

  const agents = await steps.run('start one agent process per office', async () => {
    const started = [];
    for (const o of split.sites) {
      const dir = join(out, 'agents', o.name);
      const file = await writeAgentConfig(dir, o.name, join(out, 'sites', o.name, 'flows.csv.gz'), coordinator.url, fed, deriveSeed(settings.seed, 'agent', o.name));
      started.push(startAgent(group, ctx.programs, o.name, file, tokens.get(o.name)!, join(dir, 'agent.log')));
    }
    await waitForSites(coordinator.admin, split.sites.map((o) => o.name), 120_000, (n) => print(`      ${n}/${split.sites.length} offices connected`));
    return started;
  });

  await steps.run(`meta-train: ${settings.rounds} rounds of ${settings.algorithm} over the federation`, async () => {
    let redraw = false;
    await runRoundsWithProgress(
      coordinator.admin,
      settings.rounds,
      (p) => {
        const line = `      ${formatRoundProgress(p)}`;
        if (ctx.tty && p.done < p.total) {
          process.stdout.write(`\r\x1b[K${line}`);
          redraw = true;
        } else {
          if (redraw) process.stdout.write('\r\x1b[K');
          redraw = false;
          print(line);
        }
      },
      { stallMs: (settings.deadlineSeconds + 30) * 1000 },
    );
    if (redraw) process.stdout.write('\n');
  });

  const released = await steps.run('release the best version (release --best)', async () => {
    const v = await coordinator.admin.releaseBest();
    print(`      version ${v} released: the best validation F1 the offices reported`);
    return v;
  });

  const federation = await steps.run('stop the federation and read back its versions', async () => {
    await group.stop(agents.map((a) => a.child));
    await group.stop([coordinator.child]);
    const run = await readFederationRun(coordinator.dataDir);
    print(`      ${run.params.size} versions kept, version ${released} released, ${run.params.get(released)!.length} parameters`);
    return run;
  });
  const federationSeconds = (performance.now() - wallStart) / 1000;

  const results = await steps.run(`adapt on the held-out office (${plan.evalFamily}) and score against the baselines`, async () => {
    const ticker = createProgress(process.stdout, ctx.tty);
    const progress = {
      event: (name: string, f: Record<string, string | number | boolean | null> = {}) => {
        if (name !== 'trained') return;
        ticker.close();
        print(`      ${String(f['method'])} trained in-process on the same offices: ${settings.rounds} rounds in ${String(f['seconds'])} s, best version ${String(f['bestVersion'])}`);
      },
      tick: (label: string, done: number, total: number) => ticker.tick(`      ${label.replace(/^\[[^\]]*\] /, '')}`, done, total),
      close: () => ticker.close(),
    };
    return evaluateDemo(config, dataset, split, federation, settings.algorithm, {
      transport: 'socket.io over loopback, one process per office',
      offices: split.sites.map((o) => o.name),
      rounds: settings.rounds,
      released,
      wallSeconds: Number(federationSeconds.toFixed(1)),
    }, progress);
  });

  const files = await steps.run('write results.json and report.html', async () => {
    const resultsFile = await writeResults(out, results);
    const reportFile = await writeDemoReport(out, { results, federation, plan, settings, offices, wallSeconds: (performance.now() - wallStart) / 1000 });
    await writeFile(join(out, 'results.txt'), `${formatResultsTable(results)}\n`);
    return { resultsFile, reportFile };
  });

  return { results, ...files, federation, offices };
}
