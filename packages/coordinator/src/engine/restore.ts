import { checkFlat, createOptimizer, ErrorCode, FedmetaError, isFedmetaError } from '@fedmeta/shared';
import type { OptimizerState } from '@fedmeta/shared';
import type { Logger } from 'pino';
import type { Checkpoint } from '../state/types.js';
import type { EngineConfig } from './config.js';
import { PRIVACY_EXTENSION, PrivacyLedger } from './privacy.js';
import type { ActiveDpConfig } from './privacy.js';
import { replayJournal } from './store.js';
import type { EngineStore, JournalReplay } from './store.js';

/** Where centered clipping's reference (the previous aggregate) is kept in the checkpoint between rounds. */
export const LAST_AGGREGATE_KEY = 'roundEngine.lastAggregate';

export interface RestoredState {
  checkpoint: Checkpoint;
  optimizer: OptimizerState;
  seed: number;
  lastAggregate: Float32Array | null;
  /** The privacy ledger to spend from, when differential privacy is on. */
  privacy: PrivacyLedger | null;
  replay: JournalReplay;
  restored: boolean;
}

function corrupt(what: string, cause?: unknown): FedmetaError {
  return new FedmetaError(
    ErrorCode.STATE_CORRUPT,
    `${what}; restore the data directory from a backup or start the federation from a fresh checkpoint`,
    { cause },
  );
}

/** The optimizer state to continue with: the stored one when it fits the configured optimizer, else fresh. */
function optimizerFor(config: EngineConfig, cp: Checkpoint, log: Logger): OptimizerState {
  const dim = cp.params.length;
  if (cp.optimizer.kind !== config.optimizer.kind) {
    log.warn(
      { stored: cp.optimizer.kind, configured: config.optimizer.kind },
      'the configured server optimizer differs from the stored one; its state starts fresh',
    );
    return createOptimizer(config.optimizer, dim).state();
  }
  try {
    // Built once to validate the stored buffers; the engine keeps its own exact copy.
    return createOptimizer(config.optimizer, dim, cp.optimizer).state();
  } catch (e) {
    if (isFedmetaError(e, ErrorCode.STATE_CORRUPT)) throw e;
    throw corrupt('the stored optimizer state cannot be used', e);
  }
}

function storedSeed(cp: Checkpoint, configured: number, log: Logger): number {
  const stored = cp.rngState[0];
  if (stored === undefined || !Number.isSafeInteger(stored) || stored < 0) return configured;
  if (stored !== configured) {
    // Sampling and tasks must continue as they began, or a restart would change the run.
    log.warn({ stored, configured }, 'the configured seed differs from the federation\'s; keeping the stored seed');
  }
  return stored;
}

/** The ledger the checkpoint holds (fresh when it has none); null with DP off, which leaves a stored one as it is. */
function privacyFor(dp: Readonly<ActiveDpConfig> | null, cp: Checkpoint, log: Logger): PrivacyLedger | null {
  if (dp === null) {
    if (cp.extensions?.[PRIVACY_EXTENSION] !== undefined) {
      log.warn('this federation has a privacy ledger but privacy.dp.mode is off: rounds now run without differential privacy');
    }
    return null;
  }
  const ledger = PrivacyLedger.fromExtensions(dp, cp.extensions);
  const { epsilon, budget, delta } = ledger.report();
  log.info({ mode: dp.mode, epsilon, delta, budget }, 'privacy ledger restored');
  return ledger;
}

/**
 * Loads the state to continue from: the store's latest checkpoint when there is one, else `initial`, which is
 * normalised (the configured optimizer, aggregator and seed) and committed first so that a crash before the
 * first round still finds a federation to resume.
 */
export async function restoreState(
  store: EngineStore,
  config: Readonly<EngineConfig>,
  initial: Checkpoint | undefined,
  clockNow: number,
  log: Logger,
  dp: Readonly<ActiveDpConfig> | null = null,
): Promise<RestoredState> {
  const latest = await store.latest();
  let cp: Checkpoint;
  if (latest) {
    cp = latest;
  } else {
    if (!initial) {
      throw new FedmetaError(
        ErrorCode.CONFIG,
        'the data directory holds no checkpoint yet; initialise the federation with a model before running rounds',
      );
    }
    try {
      checkFlat(initial.manifest, initial.params);
    } catch (e) {
      throw new FedmetaError(ErrorCode.CONFIG, 'the initial parameters do not match their manifest; rebuild the initial model', { cause: e });
    }
    // A state that has taken no step carries nothing: start it fresh rather than insist on zeroed buffers.
    const optimizer =
      initial.optimizer.step === 0 || initial.optimizer.kind !== config.optimizer.kind
        ? createOptimizer(config.optimizer, initial.params.length).state()
        : optimizerFor(config, initial, log);
    cp = {
      ...initial,
      params: initial.params.slice(),
      optimizerConfig: { ...config.optimizer },
      optimizer,
      aggregator: { ...config.aggregator },
      rngState: [config.seed],
      history: [...initial.history],
      released: [...initial.released],
      createdAt: initial.createdAt || new Date(clockNow).toISOString(),
    };
    await store.commit(cp);
  }
  try {
    checkFlat(cp.manifest, cp.params);
  } catch (e) {
    throw corrupt(`checkpoint ${cp.version} has parameters that do not match its manifest`, e);
  }
  const optimizer = optimizerFor(config, cp, log);
  const seed = storedSeed(cp, config.seed, log);
  const stored = cp.extensions?.[LAST_AGGREGATE_KEY];
  const lastAggregate = stored instanceof Float32Array && stored.length === cp.params.length ? stored.slice() : null;
  const privacy = privacyFor(dp, cp, log);
  const replay = replayJournal(await store.readJournal(), cp.nextRound);
  return { checkpoint: cp, optimizer, seed, lastAggregate, privacy, replay, restored: latest !== null };
}
