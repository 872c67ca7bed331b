import { z } from 'zod';
import { PROTOCOL_LIMITS, defineConfig, needsIndividualUpdates } from '@fedmeta/shared';
import type { AggregatorConfig, ModelSpec, OptimizerConfig } from '@fedmeta/shared';
import { centralDpAggregatorProblem, localDpAlgorithmProblem } from './engine/privacy.js';

/**
 * The shape of the coordinator's configuration, its defaults and its option table. The help text lives on the
 * schema so that `--help`, the environment names, the flags and the validation can never disagree.
 */
export const ENV_PREFIX = 'FEDMETA_COORDINATOR_';
export const CONFIG_FILE_ENV = `${ENV_PREFIX}CONFIG`;

/** A bare string stands for `{ kind: <string> }`, so `--aggregator median` works. */
const kindShorthand = (v: unknown) => (typeof v === 'string' ? { kind: v } : v);

const quorumInput = (v: unknown) => {
  if (typeof v === 'string') {
    const pct = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(v);
    if (pct) return { kind: 'fraction', value: Number(pct[1]) / 100 };
  }
  if (typeof v === 'number') return Number.isInteger(v) && v >= 1 ? { kind: 'count', value: v } : { kind: 'fraction', value: v };
  return v;
};

const serverSchema = z
  .object({
    host: z.string().min(1).describe('Address to listen on. The loopback default keeps the coordinator off the network until you pick an interface.'),
    port: z.number().int().min(0).max(65535).describe('TCP port for socket.io and the admin API (0 picks a free port).'),
    tlsCert: z.string().min(1).optional().describe('PEM certificate chain; with tlsKey the coordinator serves HTTPS and WSS.'),
    tlsKey: z.string().min(1).optional().describe('PEM private key of tlsCert.'),
    tlsCa: z.string().min(1).optional().describe('PEM CA bundle that site client certificates must chain to (mutual TLS).'),
    requireClientCert: z.boolean().describe('Require a client certificate signed by tlsCa from every site (mutual TLS).'),
    allowInsecureHttp: z.boolean().describe('Serve plain HTTP when no certificate is given; only for loopback demos.'),
    maxConnections: z.number().int().min(1).describe('Most simultaneous socket connections; more are refused.'),
    perConnectionMessagesPerSecond: z.number().positive().describe('Messages per second one connection may send before it is rate-limited.'),
    maxMessageBytes: z
      .number()
      .int()
      .min(1024)
      .max(PROTOCOL_LIMITS.messageBytes)
      .optional()
      .describe('Largest socket.io message accepted; derived from the model size when unset. Sites chunk their updates to fit it.'),
  })
  .strict();

const taskSchema = z.preprocess(
  kindShorthand,
  z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('binary') }).strict(),
    z.object({ kind: z.literal('multiclass'), classes: z.number().int().min(2) }).strict(),
  ]),
);

const modelSchema = z
  .object({
    inputDim: z.number().int().positive().optional().describe('Input width of the detector; derived from the feature schema when unset.'),
    hidden: z.array(z.number().int().positive()).max(16).describe('Hidden layer widths, e.g. 128,64.'),
    activation: z.enum(['relu', 'tanh', 'sigmoid', 'elu', 'softplus']).describe('Activation of the hidden layers.'),
    task: taskSchema.describe('"binary" (benign against attack), or {"kind":"multiclass","classes":N} for attack families.'),
  })
  .strict();

const roundsSchema = z
  .object({
    algorithm: z.enum(['reptile', 'fomaml', 'maml']).describe('Meta-learning algorithm the sites run.'),
    innerSteps: z.number().int().min(1).max(10_000).describe('Inner-loop SGD steps on each support batch.'),
    innerLr: z.number().positive().describe('Inner-loop step size.'),
    shots: z.number().int().min(1).describe('Support examples per class in each episode.'),
    queryShots: z.number().int().min(1).describe('Query examples per class in each episode.'),
    episodes: z.number().int().min(1).describe('Episodes per site per round.'),
    sampleFraction: z.number().gt(0).max(1).describe('Fraction of connected sites sampled for each round.'),
    minSites: z
      .number()
      .int()
      .min(1)
      .describe('Fewest sites a round is started with: rounds wait (up to the deadline) until this many are online, and sample at least this many.'),
    quorum: z
      .preprocess(
        quorumInput,
        z.discriminatedUnion('kind', [
          z.object({ kind: z.literal('fraction'), value: z.number().gt(0).max(1) }).strict(),
          z.object({ kind: z.literal('count'), value: z.number().int().min(1) }).strict(),
        ]),
      )
      .describe(
        'Updates needed by the deadline to commit a round: a fraction of the sites sampled in that round (0.5 or "50%": ceil(fraction x sampled), at least 1), or a count (3; rounds then also wait for that many sites online).',
      ),
    deadlineSeconds: z.number().positive().describe('Seconds a round waits for updates before it aggregates or, without a quorum, is aborted and re-issued.'),
    continuous: z.boolean().describe('Keep running rounds after serve starts.'),
    maxRounds: z.number().int().min(1).optional().describe('Stop continuous mode after this many rounds.'),
  })
  .strict();

const aggregatorSchema = z.preprocess(
  kindShorthand,
  z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('mean') }).strict(),
    z.object({ kind: z.literal('median') }).strict(),
    z.object({ kind: z.literal('trimmed-mean'), trim: z.number().int().min(1) }).strict(),
    z.object({ kind: z.literal('multi-krum'), f: z.number().int().min(1), m: z.number().int().min(1).optional() }).strict(),
    z.object({ kind: z.literal('centered-clipping'), tau: z.number().positive(), iterations: z.number().int().min(1).optional() }).strict(),
    z.object({ kind: z.literal('norm-clip'), maxNorm: z.number().positive() }).strict(),
  ]),
);

/**
 * Adam is the default outer optimizer: its step size does not depend on the scale of the update, so one lr suits
 * the gradients of FOMAML and MAML and the parameter differences of Reptile alike. `sgd` with lr 1 is plain
 * averaging of the sites' updates (classic Reptile/FedAvg).
 */
const optimizerSchema = z.preprocess(
  kindShorthand,
  z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('sgd'), lr: z.number().positive().default(1) }).strict(),
    z
      .object({
        kind: z.literal('momentum'),
        lr: z.number().positive().default(1),
        momentum: z.number().min(0).lt(1).default(0.9),
        nesterov: z.boolean().optional(),
      })
      .strict(),
    z
      .object({
        kind: z.literal('adam'),
        lr: z.number().positive().default(0.01),
        beta1: z.number().min(0).lt(1).default(0.9),
        beta2: z.number().min(0).lt(1).default(0.999),
        epsilon: z.number().positive().default(1e-8),
      })
      .strict(),
  ]),
);

const secureAggregationSchema = z
  .object({
    enabled: z.boolean().describe('Secure aggregation: the coordinator learns only the sum of the sampled sites\' clipped updates. Refused with aggregators that need individual updates (median, trimmed-mean, multi-krum).'),
    threshold: z
      .number()
      .gt(0.5)
      .max(1)
      .describe('Fraction of the sampled sites (of a site\'s neighbours under SecAgg+) needed to rebuild a dropped site\'s masks, and the fewest the sum may cover; more than one half.'),
    degree: z.number().int().min(0).describe('Neighbours per site (SecAgg+, an even number); 0 chooses: all pairs up to 100 sampled sites, 32 neighbours beyond.'),
    clipNorm: z.number().positive().describe('L2 norm each site clips its update to before masking.'),
    maxWeight: z.number().int().min(1).describe('Largest example count a site may weight its update by under secure aggregation.'),
    phaseSeconds: z.number().positive().describe('Deadline of each secure-aggregation phase after the updates are in.'),
  })
  .strict();

const dpSchema = z
  .object({
    mode: z
      .enum(['off', 'central', 'local'])
      .describe('Differential privacy: central clips each site\'s update and adds Gaussian noise to the aggregate (site-level); local runs DP-SGD in every site\'s inner loop (record-level).'),
    clipNorm: z.number().positive().describe('L2 clip bound: per site update (central) or per example gradient (local).'),
    noiseMultiplier: z.number().positive().describe('Gaussian noise standard deviation over the clip bound.'),
    delta: z.number().gt(0).lt(1).describe('δ of the (ε, δ) guarantee that is reported and budgeted.'),
    epsilonBudget: z.number().positive().describe('ε at which training stops: no round starts that would spend more.'),
  })
  .strict();

const privacySchema = z.object({ secureAggregation: secureAggregationSchema, dp: dpSchema }).strict();

export const coordinatorConfigSchema = z
  .object({
    server: serverSchema,
    dataDir: z.string().min(1).describe('Directory holding checkpoints, the site registry and the round journal.'),
    adminToken: z.string().min(16).optional().describe('Bearer token for the admin API (at least 16 characters); the admin API is off without one.'),
    adminTokenFile: z.string().min(1).optional().describe('File holding the admin token, instead of adminToken.'),
    model: modelSchema,
    schema: z.string().min(1).optional().describe('Feature schema: a built-in name or the path of a schema file.'),
    seed: z.number().int().min(0).max(2 ** 32 - 1).optional().describe('Seed for site sampling and task seeds; drawn once and kept in the checkpoint when unset.'),
    rounds: roundsSchema,
    aggregator: aggregatorSchema.describe('How updates are combined: mean, median, trimmed-mean, multi-krum, centered-clipping, norm-clip (JSON for parameters).'),
    optimizer: optimizerSchema.describe('Outer optimizer: adam (default, lr 0.01), momentum, or sgd (lr 1 = plain averaging).'),
    privacy: privacySchema,
    keepCheckpoints: z.number().int().min(1).describe('Checkpoints kept besides every released version.'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).describe('pino log level.'),
  })
  .strict()
  .superRefine((c, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: z.ZodIssueCode.custom, path, message });
    if (Boolean(c.server.tlsCert) !== Boolean(c.server.tlsKey)) issue(['server', 'tlsKey'], 'tlsCert and tlsKey must be given together');
    if (c.server.requireClientCert && !c.server.tlsCa) issue(['server', 'tlsCa'], 'requireClientCert needs tlsCa, the CA that signs the sites\' certificates');
    if (c.server.requireClientCert && !c.server.tlsCert) issue(['server', 'tlsCert'], 'requireClientCert needs HTTPS: give tlsCert and tlsKey');
    if (c.adminToken && c.adminTokenFile) issue(['adminTokenFile'], 'give adminToken or adminTokenFile, not both');
    const a = c.aggregator;
    if (a.kind === 'trimmed-mean' && c.rounds.minSites <= 2 * a.trim) {
      issue(['rounds', 'minSites'], `trimmed-mean with trim ${a.trim} needs minSites of at least ${2 * a.trim + 1}`);
    }
    if (a.kind === 'multi-krum' && c.rounds.minSites < 2 * a.f + 3) {
      issue(['rounds', 'minSites'], `multi-krum with f ${a.f} needs minSites of at least ${2 * a.f + 3}`);
    }
    if (c.privacy.secureAggregation.enabled && needsIndividualUpdates(a)) {
      issue(
        ['aggregator'],
        `${a.kind} ranks or compares individual updates, which secure aggregation hides from the coordinator (it learns only their sum); use mean, norm-clip or centered-clipping with secure aggregation, or turn it off`,
      );
    }
    const dp = c.privacy.dp;
    const dpProblem = dp.mode === 'central' ? centralDpAggregatorProblem(a.kind) : dp.mode === 'local' ? localDpAlgorithmProblem(c.rounds.algorithm) : null;
    if (dpProblem !== null) issue(dp.mode === 'central' ? ['aggregator'] : ['rounds', 'algorithm'], dpProblem);
    const k = c.privacy.secureAggregation.degree;
    if (c.privacy.secureAggregation.enabled && k % 2 !== 0) {
      issue(['privacy', 'secureAggregation', 'degree'], `the SecAgg+ neighbourhood degree must be even (got ${k}); 0 chooses one from the number of sites`);
    }
  });

export type CoordinatorConfig = z.output<typeof coordinatorConfigSchema>;
export type CoordinatorConfigInput = z.input<typeof coordinatorConfigSchema>;

// Compile-time checks that the config's pieces are the shared contracts the engine consumes.
const _contracts = (c: CoordinatorConfig): [AggregatorConfig, OptimizerConfig, Omit<ModelSpec, 'inputDim'>] => [c.aggregator, c.optimizer, c.model];
void _contracts;

/** Secure defaults: loopback only, no plain HTTP unless asked for, no admin API without a token. */
export const COORDINATOR_DEFAULTS = {
  server: {
    host: '127.0.0.1',
    port: 8443,
    requireClientCert: false,
    allowInsecureHttp: false,
    maxConnections: 2000,
    perConnectionMessagesPerSecond: 20,
  },
  dataDir: 'fedmeta-state',
  model: { hidden: [128, 64], activation: 'relu', task: { kind: 'binary' } },
  rounds: {
    algorithm: 'fomaml',
    innerSteps: 5,
    innerLr: 0.05,
    shots: 10,
    queryShots: 32,
    episodes: 4,
    sampleFraction: 1,
    minSites: 2,
    quorum: { kind: 'fraction', value: 0.5 },
    deadlineSeconds: 120,
    continuous: false,
  },
  aggregator: { kind: 'mean' },
  optimizer: { kind: 'adam', lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
  privacy: {
    secureAggregation: { enabled: false, threshold: 0.6, degree: 0, clipNorm: 1, maxWeight: 10_000, phaseSeconds: 30 },
    dp: { mode: 'off', clipNorm: 1, noiseMultiplier: 1, delta: 1e-5, epsilonBudget: 10 },
  },
  keepCheckpoints: 20,
  logLevel: 'info',
} as const satisfies CoordinatorConfigInput;

// ---- option table: what --help, the environment names and the flags are built from ----


export type { ConfigLeaf as Leaf, OptionDescription, OptionType } from '@fedmeta/shared';

/** Keys whose values are file system paths: relative ones are resolved against the config file's folder. */
export const PATH_KEYS = ['server.tlsCert', 'server.tlsKey', 'server.tlsCa', 'dataDir', 'adminTokenFile', 'schema'];

/** The option table and the layered loader built from the schema (see defineConfig). */
export const coordinatorOptions = defineConfig({
  name: 'coordinator',
  schema: coordinatorConfigSchema,
  defaults: COORDINATOR_DEFAULTS,
  envPrefix: ENV_PREFIX,
  pathKeys: PATH_KEYS,
  // `schema` is a built-in name unless it looks like a path.
  nameOrPathKeys: ['schema'],
  secretKeys: ['adminToken'],
  // Errors name the variable or flag: "(from environment FEDMETA_COORDINATOR_SERVER_PORT)", "(from flag --server.port)".
  sourceDetail: 'exact',
});

export const LEAVES = coordinatorOptions.leaves;
export const LEAF_BY_KEY = coordinatorOptions.leafByKey;
export const LEAF_BY_ENV = coordinatorOptions.leafByEnv;
export const SECTIONS = coordinatorOptions.sections;

/** Every option, for `--help`: the config file option first, then each key of the configuration. */
export const describeOptions = coordinatorOptions.describeOptions;
