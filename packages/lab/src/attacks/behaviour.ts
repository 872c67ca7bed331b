import { ErrorCode, FedmetaError, createRng, deriveSeed } from '@fedmeta/shared';
import type { Episode, FeatureStats, ModelSpec } from '@fedmeta/shared';
import type { MethodSpec } from '../methods/names.js';
import { metaLocal, sgdLocal, siteEpisodes } from '../methods/site.js';
import type { LabSite, LocalWork } from '../methods/site.js';
import { innerFor } from '../methods/training.js';
import type { LocalFn, MaliciousFn } from './federation.js';
import { backdoorEpisode, flipEpisode } from './poison.js';
import type { Trigger } from './poison.js';
import { alieZ, gaussianUpdate, innerProductManipulation, littleIsEnough, scaledUpdate, signFlip } from './transforms.js';

/** The Byzantine attacks of the matrix; the backdoor is measured apart (its own success rate). */
export const ATTACKS = ['sign-flip', 'gaussian', 'scaled', 'label-flip', 'alie', 'ipm'] as const;
export type AttackName = (typeof ATTACKS)[number];

export interface AttackParams {
  /** Sign flip sends −scale × its own update. */
  signFlipScale: number;
  /** Gaussian noise has `ratio` × the norm of the site's own update, in expectation. */
  gaussianNormRatio: number;
  /** Boost of the scaled update; default n / f (see attackBoost). */
  boost?: number;
  /** Inner-product manipulation sends −ε × the honest mean. */
  ipmEpsilon: number;
  /** Override of the "a little is enough" z (default from n and f, as in the paper). */
  alieZ?: number;
  /** Boost of the backdoor update: 1 is plain data poisoning; default the model-replacement boost. */
  backdoorBoost?: number;
}

export const DEFAULT_ATTACK_PARAMS: Readonly<AttackParams> = Object.freeze({ signFlipScale: 1, gaussianNormRatio: 10, ipmEpsilon: 0.1 });

/**
 * Model replacement's boost: with n sites of which f attack, f updates boosted by n / f outweigh the n − f
 * honest ones in the mean, so the aggregate moves as far as the attackers' own direction (Bagdasaryan et al.
 * scale by n / η for a single attacker and server step size η = 1).
 */
export function attackBoost(params: AttackParams, n: number, f: number): number {
  return params.boost ?? n / f;
}

/** How a poisoned site changes its own episodes before computing its update. */
export type EpisodeTransform = (ep: Episode, site: LabSite) => Episode;

/** The method's own local work (meta-gradient, or FedAvg's SGD), optionally on transformed episodes. */
export function methodLocal(method: MethodSpec, spec: ModelSpec, work: LocalWork, anilLayers: number, transform?: EpisodeTransform): LocalFn {
  if (method.kind !== 'fedavg' && method.algorithm === undefined) {
    throw new FedmetaError(ErrorCode.CONFIG, `method ${method.name} is not trained over the federation; attack a federated method`);
  }
  return (site, params, round, taskSeed) => {
    let episodes = siteEpisodes(site, work, round, taskSeed);
    if (transform !== undefined) episodes = episodes.map((ep) => transform(ep, site));
    if (method.kind === 'fedavg') return sgdLocal(spec, params, episodes, work, taskSeed);
    return metaLocal(method.algorithm!, spec, params, episodes, innerFor(method, spec, work.innerSteps, work.innerLr, anilLayers));
  };
}

export interface BehaviourDeps {
  method: MethodSpec;
  spec: ModelSpec;
  work: LocalWork;
  anilLayers: number;
  params: AttackParams;
  /** Seeds the Gaussian attack's noise. */
  seed: number;
}

/** The malicious behaviour of one Byzantine attack (every malicious site of a run runs the same one). */
export function attackBehaviour(attack: AttackName, deps: BehaviourDeps): MaliciousFn {
  const p = deps.params;
  switch (attack) {
    case 'sign-flip':
      return (ctx) => signFlip(ctx.honestLocal().update, p.signFlipScale);
    case 'gaussian':
      return (ctx) => gaussianUpdate(ctx.honestLocal().update, p.gaussianNormRatio, createRng(deriveSeed(deps.seed, 'gaussian', ctx.site.name, ctx.round)));
    case 'scaled': {
      // Model replacement towards the label-flipped model: the poisoned direction, boosted.
      const flipped = methodLocal(deps.method, deps.spec, deps.work, deps.anilLayers, flipEpisode);
      return (ctx) => scaledUpdate(flipped(ctx.site, ctx.params, ctx.round, ctx.taskSeed).update, attackBoost(p, ctx.n, ctx.f));
    }
    case 'label-flip': {
      const flipped = methodLocal(deps.method, deps.spec, deps.work, deps.anilLayers, flipEpisode);
      return (ctx) => flipped(ctx.site, ctx.params, ctx.round, ctx.taskSeed).update;
    }
    case 'alie':
      return async (ctx) => littleIsEnough(await ctx.honestUpdates(), p.alieZ ?? alieZ(ctx.n, ctx.f));
    case 'ipm':
      return async (ctx) => innerProductManipulation(await ctx.honestUpdates(), p.ipmEpsilon);
    default:
      throw new FedmetaError(ErrorCode.CONFIG, `unknown attack ${JSON.stringify(attack)}; use one of ${ATTACKS.join(', ')}`);
  }
}

/**
 * The backdoor: the site trains on its own episodes plus triggered copies of their attack flows labelled
 * benign, and boosts the result (model replacement) unless the boost is 1.
 */
export function backdoorBehaviour(deps: BehaviourDeps, trigger: Trigger, statsOf: (site: LabSite) => FeatureStats): MaliciousFn {
  const poisoned = methodLocal(deps.method, deps.spec, deps.work, deps.anilLayers, (ep, site) => backdoorEpisode(ep, trigger, statsOf(site)));
  return (ctx) => {
    const update = poisoned(ctx.site, ctx.params, ctx.round, ctx.taskSeed).update;
    const boost = deps.params.backdoorBoost ?? attackBoost(deps.params, ctx.n, ctx.f);
    return boost === 1 ? update : scaledUpdate(update, boost);
  };
}

export function parseAttacks(list: readonly string[]): AttackName[] {
  const out = list.map((a) => {
    const name = a.trim();
    if (!(ATTACKS as readonly string[]).includes(name)) throw new FedmetaError(ErrorCode.CONFIG, `unknown attack "${name}"; use ${ATTACKS.join(', ')}`);
    return name as AttackName;
  });
  if (new Set(out).size !== out.length) throw new FedmetaError(ErrorCode.CONFIG, 'an attack is listed twice');
  return out;
}
