import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import yargs, { type Argv, type Options } from 'yargs';
import { acquireLock, createLogger, initRuntime, isFedmetaError, resolveSchema, schemaFingerprint } from '@fedmeta/shared';
import type { DirLock, Logger } from '@fedmeta/shared';
import { SiteAgent } from './client.js';
import { AGENT_DEFAULTS, CONFIG_FILE_ENV, describeOptions, loadAgentConfig, redactConfig } from './config.js';
import type { AgentConfig } from './config.js';
import { runDetect } from './detect.js';
import { resolveModel } from './model-source.js';
import { DataDirWatcher, loadSiteData, type SiteData } from './site-data.js';
import { resolveSiteSeed } from './state.js';
import { openDetectIo } from './alerts/detect-wiring.js';
import { openRunMetrics } from './agent-metrics/run-wiring.js';
import { exportModel } from './export/command.js';

/**
 * `fedmeta-agent run` joins the federation; `fedmeta-agent detect` uses what it produced. Every configuration key
 * is a flag here (dotted for sections: --tls.ca, --data.files), an environment variable FEDMETA_AGENT_<KEY>,
 * and a key of the YAML/JSON config file, in that order of precedence.
 */
const DETECT_FLAGS = ['model', 'shots', 'input', 'threshold', 'steps', 'lr', 'schema', 'batchSize', 'watch', 'logLevel', 'backend', 'timeout', 'alertsTo', 'follow', 'site', 'metricsPort', 'metricsHost'];
/** Options of `run` that are not agent configuration. */
const RUN_FLAGS = ['metricsPort', 'metricsHost'];
const METRICS_PORT = { type: 'number', describe: 'Serve Prometheus metrics at http://<metrics-host>:<port>/metrics (off by default)' } as const;
const METRICS_HOST = { type: 'string', describe: 'Address of the metrics listener [default: 127.0.0.1]' } as const;

function configOptions(y: Argv): Argv {
  let out = y;
  for (const d of describeOptions()) {
    if (d.key === 'config') continue;
    const shown = d.default === undefined ? '' : ` [default: ${Array.isArray(d.default) ? d.default.join(',') || 'none' : String(d.default)}]`;
    const opt: Options = {
      describe: `${d.help} (env ${d.env})${shown}`,
      group: d.key.includes('.') ? `${d.key.split('.')[0]} options:` : 'Agent options:',
      type: d.type === 'number' ? 'number' : d.type === 'boolean' ? 'boolean' : d.type === 'list' ? 'array' : 'string',
    };
    if (d.choices) opt.choices = d.choices;
    out = out.option(d.key, opt);
  }
  return out;
}

async function run(argv: Record<string, unknown>): Promise<number> {
  const config = loadAgentConfig({ ...(typeof argv['config'] === 'string' ? { file: argv['config'] } : {}), env: process.env, flags: argv, ignoreFlags: RUN_FLAGS });
  const logger = createLogger('agent', { level: config.logLevel });
  logger.info({ config: redactConfig(config) }, 'starting the site agent');
  await mkdir(config.stateDir, { recursive: true, mode: 0o700 });
  // One agent per state directory: a second one would spend privacy budget from its own copy of the ledger and
  // race the first for the site seed and the credential. detect only reads the state directory and takes no lock.
  const lock = await acquireLock(config.stateDir, { role: 'agent' });
  try {
    return await runLocked(argv, config, logger, lock);
  } finally {
    await lock.release();
  }
}

/** The body of `run`, under the state directory's lock. */
async function runLocked(argv: Record<string, unknown>, config: AgentConfig, logger: Logger, lock: DirLock): Promise<number> {
  const runtime = await initRuntime({ backend: config.backend, ...(config.threads !== undefined ? { threads: config.threads } : {}) });
  if (runtime.fellBack) logger.warn('the wasm backend did not start; training on the slower cpu backend');
  const schema = await resolveSchema(config.schema);
  const siteSeed = await resolveSiteSeed(config.stateDir, config.seed);
  const load = (): Promise<SiteData> =>
    loadSiteData({ files: config.data.files, watchDir: config.data.watchDir, schema, maxPerFamily: config.data.maxPerFamily, seed: siteSeed, logger });
  // Read the data now, so that a wrong path or schema stops the agent before it connects.
  let first: SiteData | undefined = await load();
  const metrics = await openRunMetrics({
    port: argv['metricsPort'] as number | undefined,
    ...(argv['metricsHost'] !== undefined ? { host: String(argv['metricsHost']) } : {}),
    logger,
  });
  const agent = new SiteAgent({
    config,
    schema,
    schemaFingerprint: schemaFingerprint(schema),
    data: async () => {
      const d = first;
      first = undefined;
      return d ?? load();
    },
    siteSeed,
    logger,
    stateLock: lock,
    ...metrics.hooks,
  });
  metrics.metrics.watchConnection(() => agent.connected);
  metrics.metrics.watchPrivacy(() => agent.privacy());
  const watcher = config.data.watchDir !== undefined ? new DataDirWatcher(config.data.watchDir, () => agent.dataChanged()) : undefined;
  const stop = (): void => {
    logger.info('stopping');
    void agent.stop();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await agent.start();
    const end = await agent.done;
    return end.reason === 'refused' ? 2 : 0;
  } finally {
    // No round may still be writing the ledger once the lock is released.
    await agent.stop();
    watcher?.close();
    await metrics.close();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** The configuration for detect: only when one is named (detect works without an agent configuration). */
function optionalConfig(argv: Record<string, unknown>): AgentConfig | undefined {
  const file = typeof argv['config'] === 'string' ? argv['config'] : process.env[CONFIG_FILE_ENV] || undefined;
  if (file === undefined) return undefined;
  return loadAgentConfig({ file, env: process.env, flags: {} });
}

async function detect(argv: Record<string, unknown>): Promise<number> {
  const config = optionalConfig(argv);
  const level = (argv['logLevel'] as string | undefined) ?? config?.logLevel ?? 'info';
  // stdout carries the alerts; everything else goes to stderr.
  const logger = createLogger('detect', { level, destination: process.stderr });
  const backend = (argv['backend'] as AgentConfig['backend'] | undefined) ?? config?.backend;
  await initRuntime(backend !== undefined ? { backend } : {});
  const schema = await resolveSchema((argv['schema'] as string | undefined) ?? config?.schema ?? AGENT_DEFAULTS.schema);
  const stateDir = config?.stateDir ?? resolve(AGENT_DEFAULTS.stateDir);
  const model = await resolveModel(
    String(argv['model'] ?? 'released'),
    config,
    stateDir,
    schemaFingerprint(schema),
    Number(argv['timeout'] ?? 30) * 1000,
  );
  const io = await openDetectIo({
    input: String(argv['input']),
    follow: argv['follow'] === true,
    alertsTo: String(argv['alertsTo'] ?? 'stdout'),
    site: String(argv['site'] ?? config?.site ?? hostname()),
    ...(argv['metricsPort'] !== undefined ? { metricsPort: Number(argv['metricsPort']) } : {}),
    ...(argv['metricsHost'] !== undefined ? { metricsHost: String(argv['metricsHost']) } : {}),
    logger,
  });
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    // A closed pipe (`| head`) ends detection quietly.
    if (e.code === 'EPIPE') process.exit(0);
  });
  await runDetect({
    model: model.model,
    ...(model.file !== undefined ? { modelFile: model.file } : {}),
    shots: resolve(String(argv['shots'])),
    input: io.input,
    output: process.stdout,
    alerts: io.alerts,
    onBatch: io.onBatch,
    ...(io.idleFlushMs !== undefined ? { idleFlushMs: io.idleFlushMs } : {}),
    schema,
    ...(argv['threshold'] !== undefined ? { threshold: Number(argv['threshold']) } : {}),
    ...(argv['steps'] !== undefined ? { steps: Number(argv['steps']) } : {}),
    ...(argv['lr'] !== undefined ? { lr: Number(argv['lr']) } : {}),
    ...(argv['batchSize'] !== undefined ? { batchSize: Number(argv['batchSize']) } : {}),
    watch: argv['watch'] !== false,
    logger,
  }).finally(() => io.close());
  return 0;
}

async function exportCommand(argv: Record<string, unknown>): Promise<number> {
  const config = optionalConfig(argv);
  const logger = createLogger('export', { level: (argv['logLevel'] as string | undefined) ?? config?.logLevel ?? 'info', destination: process.stderr });
  const result = await exportModel({
    model: String(argv['model'] ?? 'released'),
    out: String(argv['out']),
    config,
    stateDir: config?.stateDir ?? resolve(AGENT_DEFAULTS.stateDir),
    schema: await resolveSchema((argv['schema'] as string | undefined) ?? config?.schema ?? AGENT_DEFAULTS.schema),
    timeoutMs: Number(argv['timeout'] ?? 30) * 1000,
    logger,
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}

export function parser(args: readonly string[]): Argv {
  return yargs([...args])
    .scriptName('fedmeta-agent')
    .usage('$0 <command> [options]')
    .option('config', { type: 'string', describe: `YAML or JSON agent configuration (env ${CONFIG_FILE_ENV}); environment variables override it, flags override both` })
    .command('run', 'Join the federation: answer round offers with meta-gradients computed on this site\'s flows, which never leave it', (y) =>
      configOptions(y).option('metrics-port', METRICS_PORT).option('metrics-host', METRICS_HOST).epilog(
        `The credential received at enrollment is stored in credentialFile (default <stateDir>/credential, mode 0600). Released versions are cached in <stateDir>/models for detect.`,
      ),
    )
    .command('detect', 'Adapt the released model to labelled flows (shots) and write one ECS alert (JSON) per flagged flow to stdout, a file or syslog', (y) =>
      y
        .option('model', { type: 'string', default: 'released', describe: '"released" (the version cached by run in <stateDir>/models), a model file, or the coordinator\'s URL to fetch its released version (needs --config)' })
        .option('shots', { type: 'string', demandOption: true, describe: 'Labelled CSV (or .csv.gz) of this office\'s flows; edits are picked up and the detector re-adapts without a restart' })
        .option('input', { type: 'string', demandOption: true, nargs: 1, describe: 'Flows to score: a CSV or .csv.gz file, or - for stdin (gzip is recognised)' })
        .option('follow', { type: 'boolean', describe: 'Keep reading --input as it grows (like tail -F; rotation and truncation are followed) until SIGINT or SIGTERM' })
        .option('alerts-to', { type: 'string', describe: 'Where alerts go: stdout, file:<path> (appended; SIGHUP reopens it), syslog://host:port (RFC 5424 over UDP) or syslog+tcp://host:port [default: stdout]' })
        .option('site', { type: 'string', describe: 'observer.name of the alerts; default: the configuration\'s site, else the host name' })
        .option('metrics-port', METRICS_PORT)
        .option('metrics-host', METRICS_HOST)
        .option('threshold', { type: 'number', describe: 'Flag flows scoring at or above this; default: the best-F1 cut on the shots after adapting (nearest 0.5 among ties)' })
        .option('steps', { type: 'number', describe: 'Adaptation steps; default: the inner steps of the rounds that trained the model (5 when unknown)' })
        .option('lr', { type: 'number', describe: 'Adaptation step size; default: the rounds\' inner step size (0.05 when unknown)' })
        .option('schema', { type: 'string', describe: 'Feature schema (built-in name or file); default: the configuration\'s, else cicflowmeter' })
        .option('batch-size', { type: 'number', describe: 'Flows scored per batch [default: 1024]' })
        .option('watch', { type: 'boolean', describe: 'Re-adapt when the shots or model file changes (--no-watch to turn off) [default: true]' })
        .option('timeout', { type: 'number', describe: 'Seconds to wait for the coordinator when --model is a URL [default: 30]' })
        .option('log-level', { type: 'string', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], describe: 'Log level (logs go to stderr)' })
        .option('backend', { type: 'string', choices: ['wasm', 'cpu', 'tensorflow'], describe: 'Tensor backend' }),
    )
    .command('export', 'Write a released version as a TensorFlow.js layers model (model.json + weights) that tf.loadLayersModel loads', (y) =>
      y
        .option('model', { type: 'string', default: 'released', describe: '"released" (the version cached by run), a model file (e.g. <stateDir>/models/...), or the coordinator\'s URL (needs --config)' })
        .option('out', { type: 'string', demandOption: true, describe: 'Folder to write model.json and its weights file into' })
        .option('schema', { type: 'string', describe: 'Feature schema (only to fetch from a URL); default: the configuration\'s, else cicflowmeter' })
        .option('timeout', { type: 'number', describe: 'Seconds to wait for the coordinator when --model is a URL [default: 30]' })
        .option('log-level', { type: 'string', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], describe: 'Log level (logs go to stderr)' }),
    )
    .demandCommand(1, 'name a command: run, detect or export')
    .strictCommands()
    .help()
    .wrap(Math.min(120, process.stdout.columns ?? 100));
}

/** Runs the command line; returns the process exit code (2 when the coordinator refused this site for good). */
export async function main(args: readonly string[]): Promise<number> {
  try {
    const argv = (await parser(args).parseAsync()) as Record<string, unknown>;
    const command = (argv['_'] as unknown[])[0];
    if (command === 'run') return await run(argv);
    if (command === 'detect') {
      for (const k of Object.keys(argv)) if (!DETECT_FLAGS.includes(k) && !['_', '$0', 'config', 'help', 'version'].includes(k) && !k.includes('-')) {
        throw new Error(`unknown option --${k} for detect; see fedmeta-agent detect --help`);
      }
      return await detect(argv);
    }
    if (command === 'export') return await exportCommand(argv);
    return 1;
  } catch (e) {
    process.stderr.write(`fedmeta-agent: ${isFedmetaError(e) ? e.message : e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

