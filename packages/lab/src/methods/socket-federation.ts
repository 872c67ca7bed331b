import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADAM_DEFAULTS, ErrorCode, FedmetaError, createLogger, deriveSeed, schemaFingerprint } from '@fedmeta/shared';
import type { FeatureSchema, OptimizerConfig } from '@fedmeta/shared';
import { addSite, loadCoordinatorConfig, startCoordinator } from '@fedmeta/coordinator';
import { SiteAgent, loadAgentConfig } from '@fedmeta/site-agent';
import type { Office } from '../eval/splits.js';
import type { MethodSpec } from './names.js';
import type { TrainedStart, TrainingHooks, TrainingSetup } from './training.js';

/** Whether a method can run over the real coordinator and agents: the agents compute plain meta-gradients only. */
export function socketCapable(method: MethodSpec): boolean {
  return method.kind === 'meta' && !method.anil && !method.metaSgd;
}

/** The optimizer with the shared defaults spelled out, so the coordinator's own defaults cannot differ from the simulation's. */
function explicit(o: OptimizerConfig): OptimizerConfig {
  return o.kind === 'adam' ? { ...ADAM_DEFAULTS, ...o } : o;
}

async function waitFor(what: string, ok: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new FedmetaError(ErrorCode.NOT_READY, `${what} did not happen within ${ms / 1000} s on loopback; check that nothing blocks local connections`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface SocketFederationInput {
  setup: TrainingSetup;
  offices: readonly Office[];
  schema: FeatureSchema;
  /** Seed of the initial parameters (the coordinator initialises the model itself, from this seed). */
  initSeed: number;
}

/**
 * Trains a meta-learning method over real sockets: a coordinator (`startCoordinator`, file state in a temporary
 * directory, socket.io on loopback) and one site agent per office (`SiteAgent`, enrolled with a token, holding
 * the office's standardised flows). The round engine is the same as in simulation; the sites' local work is the
 * agent's own trainer (its episodes, hold-out and validation score), not the harness's. Every committed
 * version is kept, for curves and release; `release best` is asked of the coordinator.
 */
export async function trainOverSockets(input: SocketFederationInput, hooks: TrainingHooks = {}): Promise<TrainedStart> {
  const { setup, offices } = input;
  const { method, spec, work } = setup;
  if (!socketCapable(method) || method.algorithm === undefined) {
    throw new FedmetaError(ErrorCode.CONFIG, `${method.name} cannot run over sockets (the agents run plain reptile, fomaml or maml); run it with --transport memory`);
  }
  const started = performance.now();
  const dir = await mkdtemp(join(tmpdir(), 'fedmeta-lab-socket-'));
  const n = offices.length;
  const config = loadCoordinatorConfig({
    env: {},
    flags: {
      server: { host: '127.0.0.1', port: 0, allowInsecureHttp: true },
      dataDir: join(dir, 'coordinator'),
      model: { inputDim: spec.inputDim, hidden: [...spec.hidden], activation: spec.activation, task: { kind: 'binary' } },
      rounds: {
        algorithm: method.algorithm,
        innerSteps: work.innerSteps,
        innerLr: work.innerLr,
        shots: work.shots,
        queryShots: work.queryShots,
        episodes: work.episodes,
        sampleFraction: 1,
        minSites: n,
        quorum: { kind: 'count', value: n },
        deadlineSeconds: 600,
        continuous: false,
      },
      aggregator: { kind: 'mean' },
      optimizer: explicit(setup.optimizer),
      // The coordinator seeds its initial model with this: the same start as the simulated methods.
      seed: input.initSeed,
      keepCheckpoints: setup.rounds + 2,
      logLevel: 'silent',
    },
  });
  const coordinator = await startCoordinator(config, { logger: createLogger('lab-coordinator', { level: 'silent' }) });
  const agents: SiteAgent[] = [];
  const versions = new Map<number, Float32Array>();
  try {
    const fingerprint = schemaFingerprint(input.schema);
    for (const office of offices) {
      const { token } = await addSite(coordinator.store, office.name);
      const agentConfig = loadAgentConfig({
        env: {},
        flags: {
          site: office.name,
          coordinatorUrl: coordinator.url,
          allowInsecureHttp: true,
          enrollmentToken: token,
          stateDir: join(dir, office.name),
          logLevel: 'silent',
        },
      });
      const agent = new SiteAgent({
        config: agentConfig,
        schema: input.schema,
        schemaFingerprint: fingerprint,
        data: { table: office.table, stats: office.stats, files: [] },
        siteSeed: deriveSeed(input.initSeed, 'agent', office.name),
        logger: createLogger('lab-agent', { level: 'silent' }),
      });
      agents.push(agent);
      await agent.start();
    }
    await waitFor(`${n} agents connecting`, () => coordinator.hub.online().length === n, 30_000);
    const engine = coordinator.engine;
    versions.set(0, engine.params());
    await hooks.onVersion?.(0, engine.params());
    for (let r = 0; r < setup.rounds; r++) {
      await engine.runRound();
      const v = engine.checkpoint()!.version;
      versions.set(v, engine.params());
      await hooks.onVersion?.(v, engine.params());
      hooks.onRound?.(r + 1, setup.rounds);
    }
    const lastVersion = engine.checkpoint()!.version;
    const history = engine.checkpoint()!.history;
    const bestAdapted = await engine.release('best');
    return {
      trainingKey: method.trainingKey,
      lastVersion,
      paramsOf: (v) => {
        const p = versions.get(v);
        if (p === undefined) throw new FedmetaError(ErrorCode.UNKNOWN_VERSION, `version ${v} was not kept`);
        return p.slice();
      },
      bestAdapted,
      bestPlain: null,
      validation: history
        .filter((h) => h.status === 'committed' && h.meanValF1 !== undefined)
        .map((h) => ({ version: h.fromVersion, adapted: h.meanValF1! })),
      uploadValuesPerRound: engine.params().length,
      wallSeconds: (performance.now() - started) / 1000,
    };
  } finally {
    await Promise.allSettled(agents.map((a) => a.stop()));
    await coordinator.close();
    await rm(dir, { recursive: true, force: true });
  }
}
