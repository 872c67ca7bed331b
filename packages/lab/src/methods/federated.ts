import { createLogger, manifestFor } from '@fedmeta/shared';
import type { ModelSpec } from '@fedmeta/shared';
import { RoundEngine, createMemoryHub } from './engine-link.js';
import type { Checkpoint, RoundOffer, SiteUpdate } from './engine-link.js';
import { MemoryEngineStore } from './memory-store.js';
import { metaLocal, sgdLocal, siteEpisodes, siteValidation } from './site.js';
import type { LabSite } from './site.js';
import { bestVersion, innerFor, mean } from './training.js';
import type { TrainedStart, TrainingHooks, TrainingSetup } from './training.js';

function initialCheckpoint(spec: ModelSpec, setup: TrainingSetup): Checkpoint {
  return {
    formatVersion: 1,
    version: 0,
    nextRound: 0,
    spec,
    manifest: manifestFor(spec, { metaSgd: setup.method.metaSgd }),
    params: setup.init.slice(),
    optimizerConfig: setup.optimizer,
    optimizer: { kind: setup.optimizer.kind, step: 0, buffers: {} },
    aggregator: { kind: 'mean' },
    rngState: [],
    schemaFingerprint: 'lab',
    history: [],
    released: [],
    createdAt: new Date().toISOString(),
  };
}

/**
 * Trains a federated method on the round engine, with every site attached to an in-memory hub: the same
 * engine (sampling, deadlines, update checks, aggregation, outer optimizer, checkpoints, release by the sites'
 * validation score) as a real federation, minus the sockets. Sites answer each offer with the method's local
 * work: a meta-gradient over episodes of their own flows, or for FedAvg plain SGD over the same flows. Every
 * `validateEvery` rounds they also report the validation score of the offered version.
 */
export async function trainFederated(setup: TrainingSetup, hooks: TrainingHooks = {}): Promise<TrainedStart> {
  const started = performance.now();
  const { method, spec, sites, work } = setup;
  const store = new MemoryEngineStore();
  const memory = createMemoryHub();
  const engine = new RoundEngine({
    store,
    hub: memory.hub,
    logger: createLogger('lab-engine', { level: 'silent' }),
    config: {
      rounds: {
        sampleFraction: 1,
        minSites: sites.length,
        quorum: sites.length,
        // In-process sites answer in milliseconds; a long deadline only guards against a stuck run.
        deadlineSeconds: 3600,
        // FedAvg sites ignore the algorithm; the task still has to name one.
        algorithm: method.algorithm ?? 'reptile',
        innerSteps: work.innerSteps,
        innerLr: work.innerLr,
        shots: work.shots,
        queryShots: work.queryShots,
        episodes: work.episodes,
        maxConsecutiveAborts: 1,
      },
      aggregator: { kind: 'mean' },
      optimizer: setup.optimizer,
      seed: setup.seed,
    },
  });
  const isFedAvg = method.kind === 'fedavg';
  const adaptInner = innerFor(method, spec, work.innerSteps, isFedAvg ? work.sgdLr : work.innerLr, setup.anilLayers);
  const plainScores = new Map<number, number[]>();
  const errors: unknown[] = [];

  const answer = (site: LabSite, offer: RoundOffer): SiteUpdate => {
    const episodes = siteEpisodes(site, work, offer.round, offer.task.seed);
    const local = isFedAvg
      ? sgdLocal(spec, offer.params, episodes, work, offer.task.seed)
      : metaLocal(method.algorithm!, spec, offer.params, episodes, innerFor(method, spec, offer.task.innerSteps, offer.task.innerLr, setup.anilLayers));
    const update: SiteUpdate = {
      round: offer.round,
      version: offer.version,
      counts: { episodes: episodes.length, examples: local.examples },
      metrics: { supportLoss: local.supportLoss, queryLoss: local.queryLoss },
      update: local.update,
    };
    if (offer.round % setup.validateEvery === 0 || offer.round === setup.rounds - 1) {
      const valF1 = siteValidation(spec, offer.params, site, adaptInner, setup.threshold);
      if (valF1 !== undefined) update.metrics.valF1 = valF1;
      if (isFedAvg) {
        const plain = siteValidation(spec, offer.params, site, null, setup.threshold);
        if (plain !== undefined) plainScores.set(offer.version, [...(plainScores.get(offer.version) ?? []), plain]);
      }
    }
    return update;
  };
  for (const site of sites) {
    memory.connect(site.name, (offer) => {
      try {
        return answer(site, offer);
      } catch (e) {
        // Without this the engine would wait out the round's deadline for an answer that never comes.
        errors.push(e);
        engine.close();
        throw e;
      }
    });
  }

  try {
    await engine.init(initialCheckpoint(spec, setup));
    await hooks.onVersion?.(0, engine.params());
    for (let r = 0; r < setup.rounds; r++) {
      try {
        await engine.runRound();
      } catch (e) {
        // A site that failed stays silent and the round aborts; its own error says more than the abort.
        throw errors[0] ?? e;
      }
      const version = engine.checkpoint()!.version;
      await hooks.onVersion?.(version, engine.params());
      hooks.onRound?.(r + 1, setup.rounds);
    }
    const history = engine.checkpoint()!.history;
    const lastVersion = engine.checkpoint()!.version;
    // The real mechanism: the engine picks by the sites' reported (adapted) validation scores.
    const bestAdapted = await engine.release('best');
    const validation = history
      .filter((r) => r.status === 'committed' && r.meanValF1 !== undefined)
      .map((r) => {
        const entry: { version: number; adapted?: number; plain?: number } = { version: r.fromVersion, adapted: r.meanValF1! };
        const plain = mean(plainScores.get(r.fromVersion) ?? []);
        if (plain !== undefined) entry.plain = plain;
        return entry;
      });
    const bestPlain = isFedAvg ? bestVersion(validation.map((v) => ({ version: v.version, score: v.plain }))) : null;
    return {
      trainingKey: method.trainingKey,
      lastVersion,
      paramsOf: (v) => {
        const p = store.paramsOf(v);
        if (p === undefined) throw new Error(`version ${v} was not kept`);
        return p;
      },
      bestAdapted,
      bestPlain,
      validation,
      uploadValuesPerRound: setup.init.length,
      wallSeconds: (performance.now() - started) / 1000,
    };
  } finally {
    engine.close();
    for (const site of sites) memory.disconnect(site.name);
  }
}
