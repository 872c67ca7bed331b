import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { isFedmetaError } from '@fedmeta/shared';
import { applyOverrides, loadEvalConfig } from './config.js';
import { createProgress, evaluate, formatResults } from './eval/index.js';
import type { Transport } from './eval/index.js';
import { attackCommand, evadeCommand, leakCommand, privacyCostCommand } from './attacks/commands.js';

/**
 * `fedmeta-lab evaluate --config <file> --out <dir>`: runs the few-shot benchmark, writes <dir>/results.json
 * and prints the table on stdout. Progress goes to stderr (a redrawn line on a terminal, JSON lines otherwise).
 */
/** A command line that yargs refused (missing or unknown option): exit status 2, with its message. */
class UsageError extends Error {}

export async function main(args: readonly string[]): Promise<number> {
  const parser = yargs([...args])
    .scriptName('fedmeta-lab')
    .command(
      'evaluate',
      'leave-one-family-out few-shot detection benchmark of every starting point',
      (y) =>
        y
          .option('config', { type: 'string', demandOption: true, describe: 'evaluation config (YAML or JSON), e.g. packages/lab/configs/cic-ids2017.yaml' })
          .option('out', { type: 'string', demandOption: true, describe: 'directory for results.json (created if missing)' })
          .option('transport', { choices: ['memory', 'socket'] as const, default: 'memory' as const, describe: 'how federated methods reach their sites: the in-memory hub, or real sockets' })
          .option('seeds', { type: 'number', describe: 'override the number of seeds' })
          .option('rounds', { type: 'number', describe: 'override the number of federated rounds' })
          .option('quick', { type: 'boolean', default: false, describe: 'smoke run: at most 10 rounds, 2 seeds, 2 support draws' }),
      async (argv) => {
        const base = await loadEvalConfig(argv.config);
        const config = applyOverrides(base, {
          ...(argv.seeds !== undefined ? { seeds: argv.seeds } : {}),
          ...(argv.rounds !== undefined ? { rounds: argv.rounds } : {}),
          quick: argv.quick,
        });
        if (config.seeds < 5) process.stderr.write(`note: ${config.seeds} seed(s); the benchmark's figures need at least 5\n`);
        const results = await evaluate(config, { outDir: resolve(argv.out), transport: argv.transport as Transport, progress: createProgress() });
        process.stdout.write(`${formatResults(results)}\n`);
      },
    )
    .command(attackCommand)
    .command(evadeCommand)
    .command(leakCommand)
    .command(privacyCostCommand)
    .demandCommand(1, 'name a command: evaluate, attack, evade, leak or privacy-cost')
    .strict()
    .help()
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    });
  try {
    await parser.parseAsync();
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n\nrun fedmeta-lab --help for the options\n`);
      return 2;
    }
    process.stderr.write(`${isFedmetaError(e) ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  }
  return 0;
}

function isEntry(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) process.exitCode = await main(process.argv.slice(2));
