import { z } from 'zod';
import { SITE_NAME_PATTERN, defineConfig } from '@fedmeta/shared';

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

const privacySchema = z
  .object({
    epsilonBudget: z
      .number()
      .positive()
      .finite()
      .describe(
        'This site\'s own record-level privacy budget (ε). On rounds with local DP the agent keeps a ledger of the ε its records have spent (<stateDir>/privacy-ledger.json) and declines a round that would take it past this, whatever the coordinator says. Smaller is more private; 1 to 10 is the usual range.',
      ),
    delta: z
      .number()
      .gt(0)
      .lt(1)
      .describe('δ of this site\'s (ε, δ) guarantee: the small chance the ε bound does not hold. Keep it well below 1 / the number of flows the site holds.'),
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
    stateDir: path.describe('Directory for the credential, the site seed, the privacy ledger and the released model versions (for detect).'),
    reconnect: reconnectSchema,
    privacy: privacySchema,
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
  privacy: { epsilonBudget: 10, delta: 1e-5 },
  ackTimeoutMs: 30_000,
  maxReceiveBytes: 64 * 1024 * 1024,
} as const satisfies Omit<AgentConfigInput, 'site'>;

/** Keys holding file system paths: relative ones are resolved against the config file's folder (or the cwd). */
export const PATH_KEYS = ['credentialFile', 'tls.ca', 'tls.cert', 'tls.key', 'data.files', 'data.watchDir', 'schema', 'stateDir'];

export type { ConfigLeaf as Leaf, OptionDescription, OptionType } from '@fedmeta/shared';

/** The option table and the layered loader built from the schema (see defineConfig). */
export const agentOptions = defineConfig({
  name: 'agent',
  schema: agentConfigSchema,
  defaults: AGENT_DEFAULTS,
  envPrefix: ENV_PREFIX,
  pathKeys: PATH_KEYS,
  // `schema` is a built-in name unless it looks like a path.
  nameOrPathKeys: ['schema'],
  secretKeys: ['enrollmentToken', 'credential', 'seed'],
  // The agent's errors name only the layer: "(from the environment)", "(from a flag)".
  sourceDetail: 'layer',
});

export const LEAVES = agentOptions.leaves;
export const LEAF_BY_KEY = agentOptions.leafByKey;
export const LEAF_BY_ENV = agentOptions.leafByEnv;
/** Dotted names of the nested sections (`tls`, `data`, `reconnect`, `privacy`), which merge key by key across layers. */
export const SECTIONS = agentOptions.sections;

/** Every option, for `--help`: the config file first, then each key of the configuration. */
export const describeOptions = agentOptions.describeOptions;
