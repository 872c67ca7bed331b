import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { Activation, OptimizerConfig } from '@fedmeta/shared';
import { parseMethod } from './methods/names.js';
import type { MethodName } from './methods/names.js';

/**
 * The evaluation config: which flows, which sites see which attack families, what is held out, how every
 * method is trained and how it is measured. Validated once against a strict schema (unknown keys are refused,
 * so a typo cannot silently fall back to a default), then frozen.
 */
const familyName = z.string().trim().min(1, 'a family name must not be empty');

const optimizerSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('sgd'), lr: z.number().positive() }).strict(),
  z.object({ kind: z.literal('momentum'), lr: z.number().positive(), momentum: z.number().min(0).lt(1), nesterov: z.boolean().optional() }).strict(),
  z
    .object({
      kind: z.literal('adam'),
      lr: z.number().positive(),
      beta1: z.number().min(0).lt(1).optional(),
      beta2: z.number().min(0).lt(1).optional(),
      epsilon: z.number().positive().optional(),
    })
    .strict(),
]);

const methodName = z.string().refine((s) => {
  try {
    parseMethod(s);
    return true;
  } catch {
    return false;
  }
}, 'unknown method; use scratch, local-rf, local-lr, fedavg, fedavg+ft, centralized+ft, reptile, fomaml, maml (meta methods may add +anil and, except reptile, +metasgd)');

export const evalConfigSchema = z
  .object({
    /** Name written into results.json. */
    dataset: z.string().trim().min(1),
    data: z
      .object({
        /** Flow files (CSV or .csv.gz), relative to the config file. */
        files: z.array(z.string().min(1)).min(1),
        /** Keep at most this many rows per family (seeded reservoir), to bound memory and time. */
        maxPerFamily: z.number().int().min(1).optional(),
      })
      .strict(),
    /** A built-in schema name or a schema file (relative to the config file). */
    schema: z.string().trim().min(1),
    sites: z
      .array(z.object({ name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'use letters, digits, dot, underscore or dash'), families: z.array(familyName).min(1) }).strict())
      .min(1),
    /** Held out of every site; used once to tune the adaptation steps and step size. */
    validationFamily: familyName,
    /** Each is held out in turn (leave-one-family-out): never in meta-training while it is evaluated. */
    evalFamilies: z.array(familyName).min(1),
    /** 'site': every office standardises with its own benign statistics; 'pooled': one set from the sites' sums. */
    normalization: z.enum(['site', 'pooled']).default('site'),
    model: z
      .object({
        hidden: z.array(z.number().int().min(1)).min(1).default([64, 64]),
        activation: z.enum(['relu', 'tanh', 'sigmoid', 'elu', 'softplus']).default('relu'),
      })
      .strict()
      .default({}),
    rounds: z.number().int().min(1),
    /** Local work per site per round: the same for every federated method. */
    local: z
      .object({
        episodes: z.number().int().min(1).default(4),
        shots: z.number().int().min(1).default(10),
        queryShots: z.number().int().min(1).default(10),
        innerSteps: z.number().int().min(1).default(5),
        innerLr: z.number().positive().default(0.05),
        /** FedAvg's and centralized training's SGD step size (default innerLr). */
        sgdLr: z.number().positive().optional(),
      })
      .strict()
      .default({}),
    /** Outer (server) optimizer by method; `default` for methods not named. */
    optimizer: z.record(z.string(), optimizerSchema).default({}),
    meta: z
      .object({
        /** Layers adapted by +anil variants (1 = the output layer only). */
        anilLayers: z.number().int().min(1).default(1),
        /** Initial learned step size of +metasgd variants. */
        metaSgdLr: z.number().positive().optional(),
      })
      .strict()
      .default({}),
    methods: z.array(methodName).min(1).default(['scratch', 'local-rf', 'local-lr', 'fedavg', 'fedavg+ft', 'centralized+ft', 'reptile', 'fomaml', 'maml']),
    K: z.array(z.number().int().min(1)).min(1).default([1, 5, 10, 20]),
    seeds: z.number().int().min(1).default(5),
    supportDraws: z.number().int().min(1).default(4),
    /** Base seed: every split, initialisation and draw derives from it and the run's coordinates. */
    seed: z.number().int().min(0).default(0),
    /** Grid the adaptation schedule is chosen from on the validation family, per K and per method. */
    tuning: z
      .object({
        steps: z.array(z.number().int().min(1)).min(1).default([5, 10, 20, 40]),
        lr: z.array(z.number().positive()).min(1).default([0.01, 0.03, 0.1]),
        draws: z.number().int().min(1).default(2),
      })
      .strict()
      .default({}),
    /** Which version each federated method hands to the held-out office. */
    release: z.enum(['best', 'last']).default('best'),
    /** Sites report their validation score every this many rounds (it costs local adaptation). */
    validateEvery: z.number().int().min(1).default(5),
    /** The held-out score whose first crossing gives the communication figures. */
    target: z
      .object({
        family: familyName.optional(),
        K: z.number().int().min(1),
        metric: z.enum(['f1', 'f1At50']),
        value: z.number().gt(0).max(1),
      })
      .strict(),
    /** Learning curves: held-out score at the target every `every` rounds, mean over `draws` fixed supports. */
    curves: z.object({ every: z.number().int().min(1).default(1), draws: z.number().int().min(1).default(2) }).strict().default({}),
    baselines: z
      .object({
        forest: z.object({ trees: z.number().int().min(1).default(100), maxDepth: z.number().int().min(1).optional() }).strict().default({}),
        logistic: z
          .object({ steps: z.number().int().min(1).default(300), lr: z.number().positive().default(0.1), l2: z.number().min(0).default(0.01) })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    /**
     * Score at or above which a flow is flagged: 'support' sets it from the K shots (best F1 on them, nearest
     * 0.5 among ties), as an office does; a number fixes it. A start used without fine-tuning keeps 0.5.
     */
    threshold: z.union([z.literal('support'), z.number().gt(0).lt(1)]).default('support'),
  })
  .strict();

export type EvalConfigInput = z.input<typeof evalConfigSchema>;

export interface EvalConfig extends Omit<z.output<typeof evalConfigSchema>, 'methods' | 'model'> {
  methods: MethodName[];
  model: { hidden: number[]; activation: Activation };
  /** Absolute paths of the flow files. */
  files: string[];
  /** The schema name, or the absolute path of a schema file. */
  schemaRef: string;
  /** The target family resolved (the first evaluation family by default). */
  targetFamily: string;
}

function describe(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(top level)'}: ${i.message}`)
    .join('; ');
}

function fail(source: string, detail: string): never {
  throw new FedmetaError(ErrorCode.CONFIG, `evaluation config ${source} is not valid (${detail}); fix it and run again`);
}

const BUILTIN_SCHEMAS = new Set(['cicflowmeter', 'unsw-nb15', 'netflow-v2']);

/** Rules the schema cannot express: disjoint families, held-out families absent from the plan where it matters. */
function checkPlan(c: z.output<typeof evalConfigSchema>, source: string): void {
  const owner = new Map<string, string>();
  const names = new Set<string>();
  for (const s of c.sites) {
    if (names.has(s.name)) fail(source, `site ${s.name} is listed twice`);
    names.add(s.name);
    for (const f of s.families) {
      const prev = owner.get(f);
      if (prev !== undefined) fail(source, `family "${f}" is given to both ${prev} and ${s.name}; each family belongs to one site`);
      owner.set(f, s.name);
    }
  }
  if (c.evalFamilies.includes(c.validationFamily)) fail(source, 'the validation family must not also be an evaluation family');
  if (new Set(c.evalFamilies).size !== c.evalFamilies.length) fail(source, 'evalFamilies lists a family twice');
  if (new Set(c.K).size !== c.K.length) fail(source, 'K lists a value twice');
  const target = c.target.family ?? c.evalFamilies[0]!;
  if (!c.evalFamilies.includes(target)) fail(source, `target.family "${target}" must be one of the evaluation families`);
  if (!c.K.includes(c.target.K)) fail(source, `target.K ${c.target.K} must be one of K`);
  for (const key of Object.keys(c.optimizer)) {
    if (key === 'default' || key === 'fedavg' || key === 'reptile' || key === 'fomaml' || key === 'maml') continue;
    try {
      parseMethod(key);
    } catch {
      fail(source, `optimizer.${key} names no method; use default, fedavg, reptile, fomaml, maml or a variant such as fomaml+metasgd`);
    }
  }
}

/** Validates a parsed config object; relative paths are resolved against `baseDir`. */
export function parseEvalConfig(input: unknown, baseDir: string, source = '(inline)'): EvalConfig {
  const parsed = evalConfigSchema.safeParse(input);
  if (!parsed.success) fail(source, describe(parsed.error));
  const c = parsed.data;
  checkPlan(c, source);
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const optimizer: Record<string, OptimizerConfig> = { ...c.optimizer };
  const config: EvalConfig = {
    ...c,
    optimizer,
    methods: [...new Set(c.methods)].map((m) => parseMethod(m).name),
    model: { hidden: c.model.hidden, activation: c.model.activation },
    files: c.data.files.map(at),
    schemaRef: BUILTIN_SCHEMAS.has(c.schema) ? c.schema : at(c.schema),
    targetFamily: c.target.family ?? c.evalFamilies[0]!,
  };
  return deepFreeze(config);
}

export async function loadEvalConfig(path: string): Promise<EvalConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new FedmetaError(ErrorCode.CONFIG, `cannot read the evaluation config ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'}); check the path`);
  }
  let data: unknown;
  try {
    data = parseYaml(text, { uniqueKeys: true });
  } catch {
    throw new FedmetaError(ErrorCode.CONFIG, `evaluation config ${path} is not well-formed YAML or JSON; check its syntax`);
  }
  return parseEvalConfig(data, dirname(resolve(path)), path);
}

/** What the command line may change for one run. */
export interface EvalOverrides {
  seeds?: number;
  rounds?: number;
  /** A smoke run: at most 10 rounds, 2 seeds, 2 support draws, the two shortest adaptation schedules. */
  quick?: boolean;
}

export function applyOverrides(config: EvalConfig, o: EvalOverrides): EvalConfig {
  const positive = (name: string, v: number | undefined): void => {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new FedmetaError(ErrorCode.CONFIG, `--${name} must be a whole number of at least 1`);
  };
  positive('seeds', o.seeds);
  positive('rounds', o.rounds);
  const next: EvalConfig = structuredClone(config) as EvalConfig;
  if (o.quick === true) {
    next.rounds = Math.min(next.rounds, 10);
    next.seeds = Math.min(next.seeds, 2);
    next.supportDraws = Math.min(next.supportDraws, 2);
    next.tuning = { ...next.tuning, steps: [...next.tuning.steps].sort((a, b) => a - b).slice(0, 2), draws: 1 };
    next.validateEvery = Math.min(next.validateEvery, 2);
  }
  if (o.seeds !== undefined) next.seeds = o.seeds;
  if (o.rounds !== undefined) next.rounds = o.rounds;
  return deepFreeze(next);
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v as object)) deepFreeze(child);
  }
  return v;
}
