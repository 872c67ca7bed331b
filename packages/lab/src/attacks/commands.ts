import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { Argv, CommandModule } from 'yargs';
import { loadEvalConfig } from '../config.js';
import { createProgress } from '../eval/progress.js';
import { formatEvasion } from '../evasion/format.js';
import { runEvasion } from '../evasion/run.js';
import { formatLeakage } from '../leakage/format.js';
import { DEFENCES, runLeakage } from '../leakage/run.js';
import type { Defence } from '../leakage/run.js';
import { formatPrivacyCost } from '../privacy-cost/format.js';
import { runPrivacyCost } from '../privacy-cost/run.js';
import { parseAggregators } from './aggregators.js';
import { parseAttacks } from './behaviour.js';
import { formatAttackMatrix } from './format.js';
import { runAttackMatrix } from './matrix.js';

/**
 * The security commands of fedmeta-lab: `attack` (Byzantine robustness matrix and backdoor), `evade` (evasion
 * against an adapted detector), `leak` (gradient inversion against one site's update) and `privacy-cost`
 * (held-out F1 and ε under central and local differential privacy). Each writes
 * <out>/<name>.json and <out>/<name>.txt (the printed table) and prints the table on stdout.
 */

function list(s: string | undefined): string[] | undefined {
  return s === undefined ? undefined : s.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
}

function numbers(name: string, s: string | undefined): number[] | undefined {
  const l = list(s);
  if (l === undefined) return undefined;
  const out = l.map(Number);
  if (out.length === 0 || out.some((v) => !Number.isFinite(v))) throw new FedmetaError(ErrorCode.CONFIG, `--${name} must be a comma-separated list of numbers`);
  return out;
}

function whole(name: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new FedmetaError(ErrorCode.CONFIG, `--${name} must be a whole number of at least 1`);
  return v;
}

function positive(name: string, v: unknown): number {
  if (typeof v !== 'number' || !(Number.isFinite(v) && v > 0)) throw new FedmetaError(ErrorCode.CONFIG, `--${name} must be a positive number`);
  return v;
}

async function writeOut(dir: string, name: string, data: unknown, text: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [file, body] of [[`${name}.json`, `${JSON.stringify(data, null, 2)}\n`], [`${name}.txt`, `${text}\n`]] as const) {
    const path = join(dir, file);
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, body);
    await rename(tmp, path);
  }
}

const common = <T>(y: Argv<T>) =>
  y
    .option('config', { type: 'string', demandOption: true, describe: 'evaluation config (YAML or JSON), e.g. packages/lab/configs/cic-ids2017.yaml' })
    .option('out', { type: 'string', demandOption: true, describe: 'directory for the results (created if missing)' })
    .option('quick', { type: 'boolean', default: false, describe: 'smoke run: one seed, fewer rounds or trials' });

const trained = <T>(y: Argv<T>) =>
  common(y)
    .option('method', { type: 'string', default: 'fomaml', describe: 'the federated method under test' })
    .option('K', { type: 'number', default: 5, describe: 'shots per class at the held-out office' })
    .option('seeds', { type: 'number', describe: 'seeds (default 3; 1 with --quick)' })
    .option('rounds', { type: 'number', describe: 'federated rounds (default min(config rounds, 60); 30 with --quick)' })
    .option('draws', { type: 'number', describe: "support draws per seed (default: the config's supportDraws)" })
    .option('family', { type: 'string', describe: 'held-out family (default Botnet when evaluated, else the first evaluation family)' });

/** Seeds, rounds and draws of a trained experiment, from the options and --quick. */
function trainingSize(a: Record<string, unknown>, configRounds: number): { seeds: number; rounds: number; draws?: number } {
  const quick = a['quick'] === true;
  const draws = whole('draws', a['draws']);
  return {
    seeds: whole('seeds', a['seeds']) ?? (quick ? 1 : 3),
    rounds: whole('rounds', a['rounds']) ?? Math.min(configRounds, quick ? 30 : 60),
    ...(draws !== undefined ? { draws } : {}),
  };
}

export const attackCommand: CommandModule = {
  command: 'attack',
  describe: 'Byzantine robustness: attack × aggregator × malicious fraction of held-out few-shot F1, and a backdoor',
  builder: (y) =>
    trained(y)
      .option('fractions', { type: 'string', default: '0.2,0.3', describe: 'malicious fractions of the sites' })
      .option('aggregators', { type: 'string', describe: 'mean,median,trimmed-mean,multi-krum,centered-clipping,norm-clip (default all)' })
      .option('attacks', { type: 'string', describe: 'sign-flip,gaussian,scaled,label-flip,alie,ipm (default all)' })
      .option('sites', { type: 'number', default: 10, describe: 'simulated sites (the configured offices cut up)' })
      .option('backdoor', { type: 'boolean', default: true, describe: 'also run the backdoor (--no-backdoor skips it)' })
      .option('backdoor-boost', { type: 'number', describe: 'boost of the backdoor update (1 = data poisoning only; default n/f, model replacement)' }),
  handler: async (argv) => {
    const a = argv as Record<string, unknown>;
    const config = await loadEvalConfig(a['config'] as string);
    const aggregators = list(a['aggregators'] as string | undefined);
    const attacks = list(a['attacks'] as string | undefined);
    const boost = a['backdoorBoost'] as number | undefined;
    if (boost !== undefined && !(Number.isFinite(boost) && boost > 0)) throw new FedmetaError(ErrorCode.CONFIG, '--backdoor-boost must be a positive number');
    const r = await runAttackMatrix(config, {
      ...trainingSize(a, config.rounds),
      method: a['method'] as string,
      fractions: numbers('fractions', a['fractions'] as string)!,
      ...(aggregators !== undefined ? { aggregators: parseAggregators(aggregators) } : {}),
      ...(attacks !== undefined ? { attacks: parseAttacks(attacks) } : {}),
      backdoor: a['backdoor'] !== false,
      sites: whole('sites', a['sites'])!,
      K: whole('K', a['K'])!,
      ...(a['family'] !== undefined ? { family: a['family'] as string } : {}),
      ...(boost !== undefined ? { params: { backdoorBoost: boost } } : {}),
      progress: createProgress(),
    });
    const text = formatAttackMatrix(r);
    await writeOut(resolve(a['out'] as string), 'attack-matrix', r, text);
    process.stdout.write(`${text}\n`);
  },
};

export const evadeCommand: CommandModule = {
  command: 'evade',
  describe: 'evasion: PGD on attacker-controlled features against an adapted detector, detection rate against the budget',
  builder: (y) =>
    trained(y)
      .option('budgets', { type: 'string', default: '0,0.1,0.25,0.5,1,2', describe: 'attack budgets in standardised units' })
      .option('norm', { choices: ['linf', 'l2'] as const, default: 'linf' as const, describe: 'budget norm' })
      .option('steps', { type: 'number', default: 40, describe: 'PGD steps of the attack' })
      .option('adversarial', { type: 'boolean', default: false, describe: 'also train with adversarial episodes and compare' })
      .option('train-epsilon', { type: 'number', default: 0.25, describe: 'budget of the adversarial episodes' })
      .option('train-steps', { type: 'number', default: 5, describe: 'PGD steps of the adversarial episodes' }),
  handler: async (argv) => {
    const a = argv as Record<string, unknown>;
    const config = await loadEvalConfig(a['config'] as string);
    const trainEpsilon = a['trainEpsilon'] as number;
    if (!(Number.isFinite(trainEpsilon) && trainEpsilon > 0)) throw new FedmetaError(ErrorCode.CONFIG, '--train-epsilon must be a positive number');
    const r = await runEvasion(config, {
      ...trainingSize(a, config.rounds),
      method: a['method'] as string,
      K: whole('K', a['K'])!,
      budgets: numbers('budgets', a['budgets'] as string)!,
      norm: a['norm'] as 'linf' | 'l2',
      steps: whole('steps', a['steps'])!,
      adversarial: a['adversarial'] === true,
      trainEpsilon,
      trainSteps: whole('train-steps', a['trainSteps'])!,
      ...(a['family'] !== undefined ? { family: a['family'] as string } : {}),
      progress: createProgress(),
    });
    const text = formatEvasion(r);
    await writeOut(resolve(a['out'] as string), 'evasion', r, text);
    process.stdout.write(`${text}\n`);
  },
};

export const leakCommand: CommandModule = {
  command: 'leak',
  describe: "gradient leakage: invert one site's update (analytic first layer, DLG, labels), undefended, with DP, with secure aggregation",
  builder: (y) =>
    common(y)
      .option('batch-sizes', { type: 'string', default: '1,8,32,128', describe: 'batch sizes of the victim update' })
      .option('defences', { type: 'string', default: DEFENCES.join(','), describe: 'what the attacker sees: none (a plain gradient), reptile (the Reptile update), dp (DP-SGD), secagg (a sum of sites)' })
      .option('trials', { type: 'number', describe: 'batches attacked per cell (default 3; 1 with --quick)' })
      .option('dlg-iterations', { type: 'number', default: 300, describe: 'Adam steps of the inversion' })
      .option('dp-clip', { type: 'number', default: 1, describe: 'DP-SGD per-example clipping bound' })
      .option('dp-noise', { type: 'number', default: 1, describe: 'DP-SGD noise multiplier' })
      .option('secagg-sites', { type: 'number', default: 10, describe: 'sites summed by secure aggregation' }),
  handler: async (argv) => {
    const a = argv as Record<string, unknown>;
    const config = await loadEvalConfig(a['config'] as string);
    const defences = list(a['defences'] as string) ?? [];
    for (const d of defences) if (!(DEFENCES as readonly string[]).includes(d)) throw new FedmetaError(ErrorCode.CONFIG, `unknown defence "${d}"; use ${DEFENCES.join(', ')}`);
    const r = await runLeakage(config, {
      batchSizes: numbers('batch-sizes', a['batchSizes'] as string)!.map((b) => whole('batch-sizes', b)!),
      defences: defences as Defence[],
      trials: whole('trials', a['trials']) ?? (a['quick'] === true ? 1 : 3),
      dlgIterations: whole('dlg-iterations', a['dlgIterations'])!,
      dp: { clipNorm: a['dpClip'] as number, noiseMultiplier: a['dpNoise'] as number },
      secaggSites: whole('secagg-sites', a['secaggSites'])!,
      progress: createProgress(),
    });
    const text = formatLeakage(r);
    await writeOut(resolve(a['out'] as string), 'leakage', r, text);
    process.stdout.write(`${text}\n`);
  },
};

export const privacyCostCommand: CommandModule = {
  command: 'privacy-cost',
  describe: 'what differential privacy costs: held-out few-shot F1 and ε without DP, with central (site-level) DP and with local DP-SGD',
  builder: (y) =>
    common(y)
      .option('method', { type: 'string', default: 'fomaml', describe: 'the federated method under test (reptile or fomaml for local DP)' })
      .option('K', { type: 'number', default: 5, describe: 'shots per class at the held-out office' })
      .option('seeds', { type: 'number', describe: 'seeds (default 3; 1 with --quick)' })
      .option('rounds', { type: 'number', describe: 'federated rounds (default min(config rounds, 60); 30 with --quick)' })
      .option('draws', { type: 'number', describe: "support draws per seed (default: the config's supportDraws)" })
      .option('family', { type: 'string', describe: "held-out families, comma-separated (default: the config's evaluation families)" })
      .option('sites', { type: 'number', default: 10, describe: 'simulated sites (the configured offices cut up)' })
      .option('sampled', { type: 'number', default: 5, describe: 'sites the engine samples per round' })
      .option('sigmas', { type: 'string', default: '0.5,1,2,4', describe: 'noise multipliers of central (site-level) DP' })
      .option('delta', { type: 'number', default: 1e-3, describe: 'δ of central DP (per site: keep it below 1 / sites)' })
      .option('local', { type: 'boolean', default: true, describe: 'also train with record-level DP-SGD at the sites (--no-local skips it)' })
      .option('local-sigma', { type: 'number', default: 1, describe: 'noise multiplier of local DP-SGD' })
      .option('local-clip', { type: 'number', default: 1, describe: "clip bound of one flow's gradient under local DP-SGD" })
      .option('local-delta', { type: 'number', default: 1e-5, describe: "δ of local DP (per flow: keep it below 1 / a site's flows)" }),
  handler: async (argv) => {
    const a = argv as Record<string, unknown>;
    const config = await loadEvalConfig(a['config'] as string);
    const families = list(a['family'] as string | undefined);
    const r = await runPrivacyCost(config, {
      ...trainingSize(a, config.rounds),
      method: a['method'] as string,
      K: whole('K', a['K'])!,
      sites: whole('sites', a['sites'])!,
      sampled: whole('sampled', a['sampled'])!,
      sigmas: numbers('sigmas', a['sigmas'] as string)!,
      delta: positive('delta', a['delta']),
      local: a['local'] === false ? null : { noiseMultiplier: positive('local-sigma', a['localSigma']), clipNorm: positive('local-clip', a['localClip']), delta: positive('local-delta', a['localDelta']) },
      ...(families !== undefined ? { families } : {}),
      progress: createProgress(),
    });
    const text = formatPrivacyCost(r);
    await writeOut(resolve(a['out'] as string), 'privacy-cost', r, text);
    process.stdout.write(`${text}\n`);
  },
};
