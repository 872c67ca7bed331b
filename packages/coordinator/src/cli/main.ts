import yargs from 'yargs';
import type { Argv } from 'yargs';
import { CONFIG_FILE_ENV, describeOptions } from '../config.js';
import { coordinatorVersion } from '../serve.js';
import { release, rollback, roundsRun, status } from './admin-commands.js';
import { ADMIN_CA_ENV, ADMIN_TOKEN_ENV, ADMIN_URL_ENV, report, systemIo } from './context.js';
import type { CliIo, CommonArgs } from './context.js';
import { optionHelp, serve } from './serve-command.js';
import { sitesAdd, sitesList, sitesRevoke } from './sites-command.js';

function adminOptions<T>(y: Argv<T>) {
  return y
    .option('url', { type: 'string', describe: `Address of the running coordinator, e.g. https://soc.example:8443 [env ${ADMIN_URL_ENV}]` })
    .option('admin-token', { type: 'string', describe: `The coordinator's admin token [env ${ADMIN_TOKEN_ENV}]` })
    .option('ca', { type: 'string', describe: `PEM file to trust for the coordinator's certificate [env ${ADMIN_CA_ENV}]` })
    .option('json', { type: 'boolean', describe: 'Print the answer as JSON, for scripts' });
}

function offlineOptions<T>(y: Argv<T>) {
  return adminOptions(y)
    .option('config', { type: 'string', describe: `Configuration file naming the data directory (without --url) [env ${CONFIG_FILE_ENV}]` })
    .option('data-dir', { type: 'string', describe: 'Data directory to work on directly (without --url); refused while a coordinator runs on it' });
}

/**
 * Runs the command line and resolves to the exit status: 0 done, 1 refused or failed (the coded error on
 * stderr; with --json also on stdout), 2 wrong usage.
 */
export async function runCli(argv: string[], io: CliIo = systemIo()): Promise<number> {
  let code = 0;
  let usage: string | null = null;
  const run =
    <A>(fn: (args: A, io: CliIo) => Promise<void>) =>
    async (args: A): Promise<void> => {
      try {
        await fn(args, io);
      } catch (e) {
        code = report(io, args as CommonArgs, e);
      }
    };

  const parser = yargs()
    .scriptName('fedmeta-coordinator')
    .usage('$0 <command> [options]\n\nThe coordinator of a fedmeta federation: it owns the meta-parameters and runs rounds with the sites.')
    .parserConfiguration({ 'dot-notation': false })
    .command(
      'serve',
      'Run the coordinator (socket.io for the sites, the admin API under /admin/v1)',
      (y) => {
        let b = y;
        for (const o of describeOptions()) {
          b = b.option(o.key, {
            type: o.type === 'boolean' ? 'boolean' : 'string',
            describe: optionHelp(o),
            ...(o.choices ? { choices: o.choices } : {}),
          });
        }
        return b.epilog('Every option can be set in the file, as FEDMETA_COORDINATOR_<KEY> in the environment, or as a flag; flags win.');
      },
      run(serve),
    )
    .command('sites', 'Register, list and revoke sites', (y) =>
      y
        .command(
          'add <name>',
          'Register a site and print its one-time enrollment token',
          (b) => offlineOptions(b).positional('name', { type: 'string', demandOption: true }).option('reissue', { type: 'boolean', describe: 'Replace an existing site\'s enrollment and credential' }),
          run(sitesAdd),
        )
        .command('list', 'List the registered sites', (b) => offlineOptions(b), run(sitesList))
        .command('revoke <name>', 'Revoke a site: its credential stops working at once', (b) => offlineOptions(b).positional('name', { type: 'string', demandOption: true }), run(sitesRevoke))
        .demandCommand(1, 'choose a sites command: add, list or revoke'),
    )
    .command('status', 'Show the model version, the round in flight, sites online and the last round', (y) => adminOptions(y), run(status))
    .command('rounds', 'Run meta-parameter rounds', (y) =>
      y
        .command(
          'run',
          'Run N rounds on the coordinator and follow them',
          (b) =>
            adminOptions(b)
              .option('count', { type: 'number', default: 1, describe: 'Rounds to run' })
              .option('wait', { type: 'boolean', default: true, describe: 'Follow the rounds to the end (--no-wait returns at once)' }),
          run(roundsRun),
        )
        .demandCommand(1, 'choose a rounds command: run'),
    )
    .command(
      'release [version-number]',
      'Release a version for detection at the sites (or the best by validation F1)',
      (y) => adminOptions(y).positional('version-number', { type: 'string', describe: 'The version to release (see status)' }).option('best', { type: 'boolean', describe: 'Release the version with the best validation score' }),
      run(release),
    )
    .command('rollback', 'Return to the previous release', (y) => adminOptions(y), run(rollback))
    .demandCommand(1, 'choose a command; --help lists them')
    .strict()
    .help()
    .version(coordinatorVersion())
    .wrap(process.stdout.isTTY ? Math.min(120, process.stdout.columns) : null)
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) throw err;
      usage = msg;
    });

  try {
    // With a callback yargs hands its own output (help, version) over instead of printing it.
    await parser.parseAsync(argv, {}, (_err, _args, output) => {
      if (output) io.stdout(output);
    });
  } catch (e) {
    usage ??= e instanceof Error ? e.message : String(e);
  }
  if (usage !== null) {
    io.stderr(`${usage}\nRun "fedmeta-coordinator --help" for the commands and options.`);
    return 2;
  }
  return code;
}
