import { ErrorCode, FedmetaError, isFedmetaError } from '@fedmeta/shared';
import { loadCoordinatorConfig } from '../config.js';
import { AdminClient } from './admin-client.js';

/** Where a command writes, and what it reads from its environment; tests pass their own. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** Variables of the admin commands. They are not FEDMETA_COORDINATOR_ ones, which the serve configuration owns. */
export const ADMIN_URL_ENV = 'FEDMETA_ADMIN_URL';
export const ADMIN_TOKEN_ENV = 'FEDMETA_ADMIN_TOKEN';
export const ADMIN_CA_ENV = 'FEDMETA_ADMIN_CA';

export interface CommonArgs {
  json?: boolean;
  url?: string;
  'admin-token'?: string;
  ca?: string;
  config?: string;
  'data-dir'?: string;
}

export function systemIo(): CliIo {
  return {
    stdout: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
    stderr: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
    env: process.env,
    cwd: process.cwd(),
  };
}

/** Prints the answer as JSON with --json, else its human rendering. */
export function print(io: CliIo, args: CommonArgs, value: unknown, human: () => string): void {
  io.stdout(args.json ? JSON.stringify(value, null, 2) : human());
}

/** A command's failure, in one line: the code for scripts, the sentence for people. */
export function report(io: CliIo, args: CommonArgs, e: unknown): number {
  if (isFedmetaError(e)) {
    if (args.json) io.stdout(JSON.stringify({ error: e.toWire() }));
    io.stderr(`error: ${e.message}`);
    return 1;
  }
  io.stderr(`error: ${e instanceof Error ? e.message : String(e)}`);
  return 1;
}

export function adminUrl(args: CommonArgs, io: CliIo): string | undefined {
  return args.url ?? (io.env[ADMIN_URL_ENV] || undefined);
}

export function adminClient(args: CommonArgs, io: CliIo): AdminClient {
  const url = adminUrl(args, io);
  if (!url) {
    throw new FedmetaError(
      ErrorCode.CONFIG,
      `this command talks to a running coordinator: pass --url https://<host>:<port> or set ${ADMIN_URL_ENV}`,
    );
  }
  const caFile = args.ca ?? (io.env[ADMIN_CA_ENV] || undefined);
  return new AdminClient({ url, token: args['admin-token'] ?? (io.env[ADMIN_TOKEN_ENV] || undefined), ...(caFile ? { caFile } : {}) });
}

/** The data directory of offline commands: --data-dir, else the configuration's (file, environment, default). */
export function dataDirOf(args: CommonArgs, io: CliIo): string {
  if (args['data-dir']) return args['data-dir'];
  const opts: Parameters<typeof loadCoordinatorConfig>[0] = { env: io.env, flags: {}, cwd: io.cwd };
  if (args.config) opts.file = args.config;
  return loadCoordinatorConfig(opts).dataDir;
}
