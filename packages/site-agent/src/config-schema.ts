import { z } from 'zod';
import { SITE_NAME_PATTERN } from '@fedmeta/shared';

/**
 * The agent's configuration: its shape, its defaults and the option table that `--help`, the environment names
 * and the flags are all built from, so the three can never disagree.
 */
export const ENV_PREFIX = 'FEDMETA_AGENT_';
export const CONFIG_FILE_ENV = `${ENV_PREFIX}CONFIG`;

const path = z.string().trim().min(1);
const secret = z.string().trim().min(1).max(512).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

const tlsSchema = z
  .object({
    ca: path.optional().describe('PEM CA bundle the coordinator\'s certificate must chain to (a private CA).'),
    cert: path.optional().describe('PEM client certificate, when the coordinator requires mutual TLS.'),
    key: path.optional().describe('PEM private key of tls.cert.'),
    rejectUnauthorized: z.boolean().describe('Refuse a coordinator whose certificate does not verify. Turn off only to debug a test CA.'),
  })
  .strict();

const dataSchema = z
  .object({
    files: z.array(path).describe('CSV or .csv.gz flow exports of this site (labelled); they never leave the site.'),
    watchDir: path.optional().describe('Directory of CSV / .csv.gz exports; files added or changed there are picked up before the next round.'),
    maxPerFamily: z.number().int().min(1).describe('Flows kept per family (benign or attack), a seeded uniform sample; bounds memory.'),
  })
  .strict();

const reconnectSchema = z
  .object({
    initialDelayMs: z.number().int().min(10).describe('First reconnection delay; it doubles on each failure, with random jitter.'),
    maxDelayMs: z.number().int().min(10).describe('Longest delay between reconnection attempts.'),
  })
  .strict();

export const agentConfigSchema = z
  .object({
    coordinatorUrl: z.string().url().describe('The coordinator, e.g. https://soc.example.org:8443.'),
    site: z.string().regex(SITE_NAME_PATTERN, 'must be letters, digits, dot, underscore or dash (at most 64), as registered with `fedmeta-coordinator sites add`').describe('This site\'s name, as registered on the coordinator.'),
    enrollmentToken: secret.optional().describe('One-time token from `fedmeta-coordinator sites add`; exchanged for a credential on first connect. Prefer the environment variable to a flag.'),
    credential: secret.optional().describe('Long-lived site credential (instead of credentialFile). Prefer the environment variable to a flag.'),
    credentialFile: path.optional().describe('Where the credential received at enrollment is stored (mode 0600) and read back; default <stateDir>/credential.'),
    allowInsecureHttp: z.boolean().describe('Allow an http:// coordinator URL (no TLS); only for loopback demos.'),
    tls: tlsSchema,
    data: dataSchema,
    schema: z.string().trim().min(1).describe('Feature schema: a built-in name (cicflowmeter, unsw-nb15, netflow-v2) or the path of a schema file. Must match the federation\'s.'),
    activation: z
      .enum(['relu', 'tanh', 'sigmoid', 'elu', 'softplus'])
      .optional()
      .describe('Ignored (kept so that older configuration files still load): the model, activation included, comes from the coordinator with every round offer and release.'),
    threads: z.number().int().min(1).max(256).optional().describe('CPU threads for the tensorflow backend.'),
    backend: z.enum(['wasm', 'cpu', 'tensorflow']).describe('Tensor backend: wasm (default), cpu, or tensorflow (needs @tensorflow/tfjs-node).'),
    seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional().describe('This site\'s secret episode seed; drawn once and kept in <stateDir>/site-seed when unset. Never sent.'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).describe('pino log level.'),
    stateDir: path.describe('Directory for the credential, the site seed and the released model versions (for detect).'),
    reconnect: reconnectSchema,
    ackTimeoutMs: z.number().int().min(100).describe('How long to wait for the coordinator to acknowledge an update before resending it after reconnecting.'),
    maxReceiveBytes: z.number().int().min(1024).describe('Largest message accepted from the coordinator.'),
  })
  .strict()
  .superRefine((c, ctx) => {
    const issue = (p: string[], message: string): void => ctx.addIssue({ code: z.ZodIssueCode.custom, path: p, message });
    if (Boolean(c.tls.cert) !== Boolean(c.tls.key)) issue(['tls', 'key'], 'tls.cert and tls.key must be given together');
    if (c.reconnect.maxDelayMs < c.reconnect.initialDelayMs) issue(['reconnect', 'maxDelayMs'], 'must not be below reconnect.initialDelayMs');
    if (c.enrollmentToken !== undefined && c.credential !== undefined) {
      issue(['credential'], 'give enrollmentToken (first start) or credential, not both');
    }
  });

export type AgentConfig = z.output<typeof agentConfigSchema>;
export type AgentConfigInput = z.input<typeof agentConfigSchema>;

/** Secure defaults: TLS with verification, no plain HTTP unless asked for. `site` has no default. */
export const AGENT_DEFAULTS = {
  coordinatorUrl: 'https://127.0.0.1:8443',
  allowInsecureHttp: false,
  tls: { rejectUnauthorized: true },
  data: { files: [], maxPerFamily: 5000 },
  schema: 'cicflowmeter',
  backend: 'wasm',
  logLevel: 'info',
  stateDir: 'fedmeta-agent-state',
  reconnect: { initialDelayMs: 1000, maxDelayMs: 30_000 },
  ackTimeoutMs: 30_000,
  maxReceiveBytes: 64 * 1024 * 1024,
} as const satisfies Omit<AgentConfigInput, 'site'>;

/** Keys holding file system paths: relative ones are resolved against the config file's folder (or the cwd). */
export const PATH_KEYS = ['credentialFile', 'tls.ca', 'tls.cert', 'tls.key', 'data.files', 'data.watchDir', 'schema', 'stateDir'];

export type OptionType = 'string' | 'number' | 'boolean' | 'enum' | 'list';

export interface OptionDescription {
  key: string;
  env: string;
  flag: string;
  type: OptionType;
  choices?: string[];
  default: unknown;
  help: string;
}

export interface Leaf extends OptionDescription {
  path: string[];
}

export function getPath(obj: unknown, p: readonly string[]): unknown {
  let at: unknown = obj;
  for (const k of p) at = typeof at === 'object' && at !== null ? (at as Record<string, unknown>)[k] : undefined;
  return at;
}

/** Strips optional/default/effects wrappers, keeping the first description met. */
function unwrap(s: z.ZodTypeAny): { inner: z.ZodTypeAny; help: string } {
  let help = s.description;
  let inner = s;
  for (;;) {
    if (inner instanceof z.ZodOptional || inner instanceof z.ZodDefault || inner instanceof z.ZodNullable) inner = inner._def.innerType as z.ZodTypeAny;
    else if (inner instanceof z.ZodEffects) inner = inner._def.schema as z.ZodTypeAny;
    else break;
    help ??= inner.description;
  }
  return { inner, help: help ?? '' };
}

const upperSnake = (k: string): string => k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

function collectLeaves(schema: z.ZodTypeAny, prefix: string[], out: Leaf[]): Leaf[] {
  const { inner } = unwrap(schema);
  if (!(inner instanceof z.ZodObject)) return out;
  for (const [k, child] of Object.entries(inner.shape as Record<string, z.ZodTypeAny>)) {
    const p = [...prefix, k];
    const { inner: leaf, help } = unwrap(child);
    if (leaf instanceof z.ZodObject) {
      collectLeaves(leaf, p, out);
      continue;
    }
    const type: OptionType =
      leaf instanceof z.ZodNumber ? 'number'
      : leaf instanceof z.ZodBoolean ? 'boolean'
      : leaf instanceof z.ZodEnum ? 'enum'
      : leaf instanceof z.ZodArray ? 'list'
      : 'string';
    const d: Leaf = {
      path: p,
      key: p.join('.'),
      env: ENV_PREFIX + p.map(upperSnake).join('_'),
      flag: `--${p.join('.')}`,
      type,
      default: getPath(AGENT_DEFAULTS, p),
      help,
    };
    if (leaf instanceof z.ZodEnum) d.choices = [...(leaf.options as string[])];
    out.push(d);
  }
  return out;
}

export const LEAVES: readonly Leaf[] = collectLeaves(agentConfigSchema, [], []);
export const LEAF_BY_KEY: ReadonlyMap<string, Leaf> = new Map(LEAVES.map((l) => [l.key, l]));
export const LEAF_BY_ENV: ReadonlyMap<string, Leaf> = new Map(LEAVES.map((l) => [l.env, l]));
/** Dotted names of the nested sections (`tls`, `data`, `reconnect`), which merge key by key across layers. */
export const SECTIONS: ReadonlySet<string> = new Set(LEAVES.filter((l) => l.path.length > 1).map((l) => l.path.slice(0, -1).join('.')));

/** Every option, for `--help`: the config file first, then each key of the configuration. */
export function describeOptions(): OptionDescription[] {
  const file: OptionDescription = {
    key: 'config',
    env: CONFIG_FILE_ENV,
    flag: '--config',
    type: 'string',
    default: undefined,
    help: 'YAML or JSON configuration file; environment variables override it and flags override both.',
  };
  return [file, ...LEAVES.map(({ path: _p, choices, ...d }) => (choices ? { ...d, choices: [...choices] } : { ...d }))];
}
