import type { ErrorCode } from '@fedmeta/shared';
import type { RoundRecord } from '../state/types.js';

/** What observers (metrics, the admin API, a CLI progress line) can follow; all payloads are plain data. */
export interface EngineEvents {
  'round-started': [{ round: number; attempt: number; version: number; sampled: string[]; deadline: number }];
  'update-accepted': [{ round: number; attempt: number; site: string; examples: number }];
  /** `round` is the round the update claimed to be for, when it said. */
  'update-rejected': [{ round: number | null; site: string; code: ErrorCode }];
  'round-committed': [{ record: RoundRecord; version: number }];
  'round-aborted': [{ record: RoundRecord; attempt: number }];
  released: [{ version: number; releases: number[] }];
}

export type EngineEventName = keyof EngineEvents;
