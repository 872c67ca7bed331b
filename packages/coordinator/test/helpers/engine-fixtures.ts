import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from 'pino';
import type { ParamManifest } from '@fedmeta/shared';
import type { Checkpoint } from '../../src/state/types.js';
import type { EngineConfig, RoundsConfig } from '../../src/engine/config.js';
import type { PlainSiteUpdate, RoundOffer } from '../../src/engine/hub.js';
import type { OfferHandler } from '../../src/engine/memory-hub.js';

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A model of `inputDim` inputs and one output: inputDim + 1 parameters. */
export function initialCheckpoint(inputDim = 7, fill = 0): Checkpoint {
  const manifest: ParamManifest = [
    { name: 'dense0/kernel', shape: [inputDim, 1], dtype: 'float32' },
    { name: 'dense0/bias', shape: [1], dtype: 'float32' },
  ];
  return {
    formatVersion: 1,
    version: 0,
    nextRound: 0,
    spec: { inputDim, hidden: [], activation: 'relu', task: { kind: 'binary' } },
    manifest,
    params: new Float32Array(inputDim + 1).fill(fill),
    optimizerConfig: { kind: 'sgd', lr: 0.25 },
    optimizer: { kind: 'sgd', step: 0, buffers: {} },
    aggregator: { kind: 'mean' },
    rngState: [],
    schemaFingerprint: 'test-schema',
    history: [],
    released: [],
    createdAt: '2024-01-01T00:00:00.000Z',
  };
}

export function engineConfig(rounds: Partial<RoundsConfig> = {}, rest: Partial<Omit<EngineConfig, 'rounds'>> = {}): EngineConfig {
  return {
    rounds: {
      sampleFraction: 1,
      minSites: 1,
      quorum: { kind: 'count', value: 1 },
      deadlineSeconds: 2,
      algorithm: 'reptile',
      innerSteps: 3,
      innerLr: 0.05,
      shots: 5,
      queryShots: 5,
      episodes: 2,
      maxConsecutiveAborts: 3,
      ...rounds,
    },
    aggregator: { kind: 'mean' },
    optimizer: { kind: 'sgd', lr: 0.25 },
    seed: 42,
    ...rest,
  };
}

export interface CapturedLog {
  logger: Logger;
  lines: () => Record<string, unknown>[];
}

/** A pino logger writing JSON lines into memory, so tests can read what an operator would see. */
export function captureLogger(level = 'debug'): CapturedLog {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const logger = pino({ level }, stream);
  return {
    logger,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export function vec(dim: number, f: (i: number) => number): Float32Array {
  const v = new Float32Array(dim);
  for (let i = 0; i < dim; i++) v[i] = f(i);
  return v;
}

export function distance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += ((a[i] as number) - (b[i] as number)) ** 2;
  return Math.sqrt(s);
}

export interface QuadraticSiteOptions {
  examples?: number;
  /** Milliseconds the site "trains" before answering. */
  delayMs?: number;
  /** Validation F1 to report for an offer, if any. */
  valF1?: (offer: RoundOffer) => number | undefined;
  /** Called with every offer the site receives. */
  onOffer?: (offer: RoundOffer) => void;
}

/**
 * A site whose local loss is ||p - target||^2: it answers with the exact gradient 2 (p - target), so the
 * example-weighted mean over sites pulls the meta-parameters towards the weighted mean of the targets.
 */
export function quadraticSite(target: Float32Array, options: QuadraticSiteOptions = {}): OfferHandler {
  return async (offer) => {
    options.onOffer?.(offer);
    if (options.delayMs) await delay(options.delayMs);
    return quadraticUpdate(offer, target, options.examples ?? 100, options.valF1?.(offer));
  };
}

export function quadraticUpdate(offer: RoundOffer, target: Float32Array, examples = 100, valF1?: number): PlainSiteUpdate {
  const p = offer.params;
  const update = new Float32Array(p.length);
  let loss = 0;
  for (let i = 0; i < p.length; i++) {
    const d = (p[i] as number) - (target[i] as number);
    update[i] = 2 * d;
    loss += d * d;
  }
  const u: PlainSiteUpdate = {
    round: offer.round,
    version: offer.version,
    counts: { episodes: offer.task.episodes, examples },
    metrics: { supportLoss: loss, queryLoss: loss },
    update,
  };
  if (valF1 !== undefined) u.metrics.valF1 = valF1;
  return u;
}

export function bytesOf(v: Float32Array | Float64Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** Lets every message already in flight through the in-memory hub land (each hop is one turn of the loop). */
export async function flush(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}
