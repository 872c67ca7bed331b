import { ErrorCode, FedmetaError, adapt, createRng, deriveSeed } from '@fedmeta/shared';
import type { Batch, Episode, FeatureSchema, FeatureStats, ModelSpec } from '@fedmeta/shared';
import type { LocalFn } from '../attacks/federation.js';
import type { MethodSpec } from '../methods/names.js';
import { metaLocal, siteEpisodes } from '../methods/site.js';
import type { LabSite, LocalWork } from '../methods/site.js';
import { innerFor } from '../methods/training.js';
import { lowerBounds } from './features.js';
import { pgdAttack } from './pgd.js';
import type { PgdNorm } from './pgd.js';

/**
 * Adversarial meta-training: each training episode's query also holds evasive versions of the support's
 * attack flows, labelled attack: PGD within the training budget, on the controlled features only, against the
 * detector adapted on that episode's clean support, which is the detector an attacker meets at an office.
 * The inner loop still adapts on clean shots, as an office would; the outer objective then asks the adapted
 * detector to catch the shaped flows too.
 */
export interface AdversarialTraining {
  epsilon: number;
  norm: PgdNorm;
  steps: number;
  mask: Uint8Array;
}

function rowsOf(batch: Batch, label: number): Float32Array {
  const rows: number[] = [];
  for (let i = 0; i < batch.n; i++) if (batch.y[i] === label) rows.push(i);
  const out = new Float32Array(rows.length * batch.dim);
  rows.forEach((r, k) => out.set(batch.x.subarray(r * batch.dim, (r + 1) * batch.dim), k * batch.dim));
  return out;
}

function append(b: Batch, rows: Float32Array, n: number): Batch {
  const { dim } = b;
  const x = new Float32Array((b.n + n) * dim);
  x.set(b.x.subarray(0, b.n * dim));
  x.set(rows, b.n * dim);
  const y = new Int32Array(b.n + n);
  y.set(b.y.subarray(0, b.n));
  y.fill(1, b.n);
  return { x, y, n: b.n + n, dim };
}

/**
 * The episode with PGD copies of its support's attack flows (labelled attack) appended to its query, or to
 * its support with `into: 'support'` (Reptile, whose update never looks at the query).
 */
export function adversarialEpisode(
  spec: ModelSpec,
  /** The detector the shaped flows are made against. */
  params: Float32Array,
  ep: Episode,
  adv: AdversarialTraining,
  lower: Float64Array,
  seed: number,
  into: 'query' | 'support' = 'query',
): Episode {
  const { dim } = ep.support;
  const attack = rowsOf(ep.support, 1);
  const n = attack.length / dim;
  if (n === 0) return ep;
  const shaped = pgdAttack(spec, params, attack, n, { epsilon: adv.epsilon, norm: adv.norm, steps: adv.steps, mask: adv.mask, lower, rng: createRng(seed) });
  return into === 'query' ? { support: ep.support, query: append(ep.query, shaped, n) } : { support: append(ep.support, shaped, n), query: ep.query };
}

/** A site's local work under adversarial meta-training (meta-learning methods only). */
export function adversarialLocal(
  method: MethodSpec,
  spec: ModelSpec,
  work: LocalWork,
  anilLayers: number,
  schema: FeatureSchema,
  statsOf: (site: LabSite) => FeatureStats,
  adv: AdversarialTraining,
): LocalFn {
  if (method.algorithm === undefined) throw new FedmetaError(ErrorCode.CONFIG, 'adversarial meta-training needs a meta-learning method (reptile, fomaml or maml)');
  const algorithm = method.algorithm;
  const into = algorithm === 'reptile' ? 'support' : 'query';
  const bounds = new Map<string, Float64Array>();
  return (site, params, round, taskSeed) => {
    let lower = bounds.get(site.name);
    if (lower === undefined) {
      lower = lowerBounds(schema, statsOf(site), adv.mask);
      bounds.set(site.name, lower);
    }
    const l = lower;
    const inner = innerFor(method, spec, work.innerSteps, work.innerLr, anilLayers);
    const episodes = siteEpisodes(site, work, round, taskSeed).map((ep, e) =>
      adversarialEpisode(spec, adapt(spec, params, ep.support, inner), ep, adv, l, deriveSeed(site.seed, 'pgd', round, e), into),
    );
    return metaLocal(algorithm, spec, params, episodes, inner);
  };
}
