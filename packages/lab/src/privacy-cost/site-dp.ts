import { ErrorCode, FedmetaError, deriveSeed, dpMetaGradientMean, seededNoise } from '@fedmeta/shared';
import type { MetaAlgorithm, ModelSpec } from '@fedmeta/shared';
import type { LocalFn } from '../attacks/federation.js';
import type { MethodSpec } from '../methods/names.js';
import { siteEpisodes } from '../methods/site.js';
import type { LabSite, LocalWork } from '../methods/site.js';
import { innerFor } from '../methods/training.js';

/**
 * The rate at which DP-SGD's accountant samples a simulated site's records, as the site agent computes it
 * (`dpSamplingRate` in packages/site-agent/src/trainer.ts) from the rows its episodes draw from: episodes draw a
 * fixed number of flows per class, so the rate is the largest inclusion probability of any record, the flows
 * drawn per class over the training rows of the smallest class. For fomaml the query batch is a second noisy
 * sample; one rate, the larger, bounds both.
 */
export function siteSamplingRate(site: LabSite, work: LocalWork, algorithm: MetaAlgorithm): number {
  const sizes = [site.trainBenign.length, ...site.families.map((f) => site.trainAttack.get(f)?.length ?? 0).filter((n) => n > 0)];
  const smallest = Math.min(...sizes);
  const drawn = algorithm === 'fomaml' ? Math.max(work.shots, work.queryShots) : work.shots;
  return Math.min(1, drawn / smallest);
}

/**
 * A simulated site's local work that honours the round task's record-level DP as a site agent does: without
 * `dp` the method's plain meta-gradient (`honest`); with it, `dpMetaGradientMean` on the same episodes
 * (per-example clipping, Gaussian noise in every noisy step) and the privacy report an agent sends with its
 * update, from which the coordinator's per-site accountants charge the round. The DP-SGD noise is seeded per
 * site and round, so a measurement can be repeated (an agent draws it from the operating system).
 */
export function dpSgdLocal(method: MethodSpec, spec: ModelSpec, work: LocalWork, anilLayers: number, honest: LocalFn, noiseSeed: number): LocalFn {
  const algorithm = method.algorithm;
  return (site, params, round, taskSeed, dp) => {
    if (dp === undefined) return honest(site, params, round, taskSeed);
    if (method.kind === 'fedavg' || (algorithm !== 'reptile' && algorithm !== 'fomaml')) {
      throw new FedmetaError(ErrorCode.CONFIG, `record-level DP-SGD runs with reptile or fomaml sites; method ${method.name} cannot train under privacy.dp mode local`);
    }
    const episodes = siteEpisodes(site, work, round, taskSeed);
    const samplingRate = siteSamplingRate(site, work, algorithm);
    const noise = seededNoise(deriveSeed(noiseSeed, 'dp-sgd', site.name, round, taskSeed));
    const inner = innerFor(method, spec, work.innerSteps, work.innerLr, anilLayers);
    const r = dpMetaGradientMean(algorithm, spec, params, episodes, inner, { ...dp, samplingRate }, noise);
    return {
      update: r.update,
      examples: r.metrics.examples,
      supportLoss: r.metrics.supportLoss,
      queryLoss: r.metrics.queryLoss,
      privacy: { noiseMultiplier: dp.noiseMultiplier, clipNorm: dp.clipNorm, sampleRate: samplingRate, steps: r.accounting.reduce((n, m) => n + m.steps, 0) },
    };
  };
}
