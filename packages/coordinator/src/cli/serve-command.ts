import { describeOptions, loadCoordinatorConfig } from '../config.js';
import type { OptionDescription } from '../config.js';
import { startCoordinator } from '../serve.js';
import type { CliIo } from './context.js';

/**
 * `serve`: every configuration key is also a flag (`--server.port 8443`) and an environment variable
 * (FEDMETA_COORDINATOR_SERVER_PORT); flags beat the environment, which beats the file, which beats the defaults.
 */

/** The serve options besides --config, as the option table describes them. */
export function serveOptions(): OptionDescription[] {
  return describeOptions().filter((o) => o.key !== 'config');
}

export function optionHelp(o: OptionDescription): string {
  const def = o.default === undefined ? '' : `, default ${typeof o.default === 'object' ? JSON.stringify(o.default) : String(o.default)}`;
  return `${o.help} (${o.type}${def}) [env ${o.env}]`;
}

/** The flags given on the command line, keyed by option key, for loadCoordinatorConfig. */
export function flagsFrom(argv: Record<string, unknown>): Record<string, unknown> {
  const flags: Record<string, unknown> = {};
  for (const o of serveOptions()) {
    const v = argv[o.key];
    if (v !== undefined) flags[o.key] = v;
  }
  return flags;
}

export interface ServeArgs {
  config?: string;
  [key: string]: unknown;
}

/** Runs until SIGINT or SIGTERM, then closes cleanly; a second signal exits at once. */
export async function serve(args: ServeArgs, io: CliIo): Promise<void> {
  const opts: Parameters<typeof loadCoordinatorConfig>[0] = { env: io.env, flags: flagsFrom(args), cwd: io.cwd };
  if (args.config) opts.file = args.config;
  const config = loadCoordinatorConfig(opts);
  const running = await startCoordinator(config);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.once(signal, () => process.exit(130));
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await running.close();
}
