import type { NoiseSource, WireError } from '@fedmeta/shared';
import type { RoundRecord } from '../state/types.js';
import type { EngineClock } from './attempt.js';
import type { EngineConfig } from './config.js';
import type { SiteHub } from './hub.js';
import type { Logger } from 'pino';
import type { EngineStore } from './store.js';

export interface RoundEngineOptions {
  store: EngineStore;
  hub: SiteHub;
  config: EngineConfig;
  logger: Logger;
  clock?: EngineClock;
  /** Where central DP's noise comes from (default: the operating system's generator); tests and the lab seed it. */
  noise?: NoiseSource;
}

export interface SubmitResult {
  accepted: boolean;
  error?: WireError;
}

export interface RoundInFlight {
  round: number;
  attempt: number;
  fromVersion: number;
  /** secure-aggregation: the updates are in and the masking phases run (only with secure aggregation). */
  phase: 'waiting-for-sites' | 'collecting' | 'secure-aggregation' | 'committing';
  sampled: number;
  answered: number;
  accepted: number;
  deadline: number;
}

export interface EngineStatus {
  ready: boolean;
  version: number | null;
  nextRound: number | null;
  roundInFlight: RoundInFlight | null;
  sitesOnline: string[];
  lastRound: RoundRecord | null;
  /** The current release, or null before the first. */
  released: number | null;
  releases: number[];
}

export interface RunRoundsOptions {
  onProgress?: (record: RoundRecord, done: number, total: number) => void;
}

