import type { ErrorCode } from '@fedmeta/shared';
import type { RoundRecord } from '../state/types.js';

/** What observers (metrics, the admin API, a CLI progress line) can follow; all payloads are plain data. */
export interface EngineEvents {
  'round-started': [{ round: number; attempt: number; version: number; sampled: string[]; deadline: number }];
  'update-accepted': [{ round: number; attempt: number; site: string; examples: number }];
  /** `round` is the round the update claimed to be for, when it said. */
  'update-rejected': [{ round: number | null; site: string; code: ErrorCode }];
  /** `timings`: aggregation with the optimizer step, then the durable commit, in milliseconds. */
  'round-committed': [{ record: RoundRecord; version: number; timings: { aggregateMs: number; commitMs: number } }];
  'round-aborted': [{ record: RoundRecord; attempt: number }];
  released: [{ version: number; releases: number[] }];
}

export type EngineEventName = keyof EngineEvents;
