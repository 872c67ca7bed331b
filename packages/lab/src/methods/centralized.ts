import { localTrain } from '@fedmeta/shared';
import { pooledBatch, siteEpisodes, siteValidation } from './site.js';
import { bestVersion, innerFor, mean } from './training.js';
import type { TrainedStart, TrainingHooks, TrainingSetup } from './training.js';

/**
 * The privacy-violating upper bound: the sites' flows pooled in one place and trained on with plain SGD. Each
 * "round" takes the flows every site would have used that round and runs as many SGD steps as all the sites
 * together run in a FedAvg round, one after another. The version to release is chosen by the same validation
 * episodes the sites use, all in one place.
 */
export async function trainCentralized(setup: TrainingSetup, hooks: TrainingHooks = {}): Promise<TrainedStart> {
  const started = performance.now();
  const { spec, sites, work, method } = setup;
  const versions: Float32Array[] = [setup.init.slice()];
  const adaptInner = innerFor(method, spec, work.innerSteps, work.sgdLr, setup.anilLayers);
  const scores: Array<{ version: number; adapted?: number }> = [];
  let params = setup.init.slice();
  await hooks.onVersion?.(0, params.slice());
  for (let r = 0; r < setup.rounds; r++) {
    if (r % setup.validateEvery === 0 || r === setup.rounds - 1) {
      const vals = sites.map((s) => siteValidation(spec, params, s, adaptInner, setup.threshold)).filter((v): v is number => v !== undefined);
      const adapted = mean(vals);
      scores.push(adapted === undefined ? { version: r } : { version: r, adapted });
    }
    const episodes = sites.flatMap((s) => siteEpisodes(s, work, r, setup.seed));
    const result = localTrain(spec, params, pooledBatch(episodes), {
      steps: sites.length * work.episodes * work.innerSteps,
      lr: work.sgdLr,
      batchSize: 2 * (work.shots + work.queryShots),
      seed: setup.seed + r,
    });
    const next = new Float32Array(params.length);
    for (let i = 0; i < next.length; i++) next[i] = params[i]! - result.update[i]!;
    params = next;
    versions.push(params.slice());
    await hooks.onVersion?.(r + 1, params.slice());
    hooks.onRound?.(r + 1, setup.rounds);
    // Yield between rounds, as the federated runs do, so progress output is not held up.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return {
    trainingKey: method.trainingKey,
    lastVersion: setup.rounds,
    paramsOf: (v) => versions[v]!.slice(),
    bestAdapted: bestVersion(scores.map((s) => ({ version: s.version, score: s.adapted }))) ?? setup.rounds,
    bestPlain: null,
    validation: scores,
    uploadValuesPerRound: 0,
    wallSeconds: (performance.now() - started) / 1000,
  };
}
