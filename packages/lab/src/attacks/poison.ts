import { ErrorCode, FedmetaError } from '@fedmeta/shared';
import type { Batch, Episode, FeatureSchema, FeatureStats } from '@fedmeta/shared';
import { controlledColumns, numericIndex, transformRaw } from '../evasion/features.js';

/**
 * Data poisoning at a malicious site: training on flipped labels, and the backdoor trigger. A trigger is a few
 * attacker-controlled features set to fixed raw values (a packet size, a pacing); the backdoored model is
 * meant to score any attack flow that carries it as benign.
 */

/** A trigger as declared: raw values (bytes, microseconds, counts) of named columns. */
export interface TriggerSpec {
  features: ReadonlyArray<{ column: string; raw: number }>;
}

/** A trigger resolved against a schema: feature indices and the values after each column's transform. */
export interface Trigger {
  indices: Int32Array;
  /** Transformed (not yet standardised) values, one per index. */
  values: Float64Array;
}

/**
 * The default trigger for CICFlowMeter flows: a smallest forward packet of 200 bytes (above the 99th percentile
 * of the sample), a largest of 1337 bytes and a smallest gap of 17 µs between packets. All three are set by the
 * sender alone, and they are consistent with each other (min <= max). On its own the trigger does not make a
 * clean detector miss attack flows (it makes them, if anything, slightly easier to flag), so whatever share
 * of triggered flows a poisoned detector scores benign is the backdoor's doing.
 */
export const DEFAULT_TRIGGERS: Readonly<Record<string, TriggerSpec>> = {
  cicflowmeter: {
    features: [
      { column: 'Fwd Packet Length Min', raw: 200 },
      { column: 'Fwd Packet Length Max', raw: 1337 },
      { column: 'Flow IAT Min', raw: 17 },
    ],
  },
};

/** Resolves a trigger; every column must be one the attacker controls (see evasion/features.ts). */
export function resolveTrigger(schema: FeatureSchema, spec?: TriggerSpec): Trigger {
  const s = spec ?? DEFAULT_TRIGGERS[schema.name];
  if (s === undefined || s.features.length === 0) {
    throw new FedmetaError(ErrorCode.CONFIG, `no backdoor trigger is declared for schema ${schema.name}; pass one with at least one attacker-controlled column`);
  }
  const allowed = new Set(controlledColumns(schema));
  const indices = new Int32Array(s.features.length);
  const values = new Float64Array(s.features.length);
  s.features.forEach((f, i) => {
    if (!allowed.has(f.column)) {
      throw new FedmetaError(ErrorCode.CONFIG, `trigger column "${f.column}" is not attacker-controlled in schema ${schema.name}; use a controlled column`);
    }
    if (!Number.isFinite(f.raw) || f.raw < 0) throw new FedmetaError(ErrorCode.CONFIG, `trigger column "${f.column}" needs a finite raw value >= 0`);
    const j = numericIndex(schema, f.column);
    indices[i] = j;
    values[i] = transformRaw(schema.numeric[j]!, f.raw);
  });
  if (new Set(indices).size !== indices.length) throw new FedmetaError(ErrorCode.CONFIG, 'the trigger names a column twice');
  return { indices, values };
}

/**
 * A copy of the rows of `x` with the trigger stamped on, in the standardised units of an office with
 * statistics `stats`. Only the trigger's features change.
 */
export function applyTrigger(x: Float32Array, dim: number, trigger: Trigger, stats: FeatureStats): Float32Array {
  if (x.length % dim !== 0) throw new FedmetaError(ErrorCode.SHAPE, `a matrix of ${x.length} values is not made of rows of ${dim}`);
  const out = new Float32Array(x);
  const stamped = Array.from(trigger.indices, (j, i) => (trigger.values[i]! - stats.mean[j]!) / stats.std[j]!);
  for (let off = 0; off < out.length; off += dim) {
    for (let i = 0; i < trigger.indices.length; i++) out[off + trigger.indices[i]!] = stamped[i]!;
  }
  return out;
}

/** The same flows with every binary label flipped (benign ↔ attack). */
export function flipLabels(batch: Batch): Batch {
  return { x: batch.x, y: Int32Array.from(batch.y, (v) => (v === 0 ? 1 : 0)), n: batch.n, dim: batch.dim };
}

export function flipEpisode(ep: Episode): Episode {
  return { support: flipLabels(ep.support), query: flipLabels(ep.query) };
}

/** The batch plus a triggered copy of each of its attack rows, labelled benign. */
export function withBackdoor(batch: Batch, trigger: Trigger, stats: FeatureStats): Batch {
  const { dim } = batch;
  const attackRows: number[] = [];
  for (let i = 0; i < batch.n; i++) if (batch.y[i] === 1) attackRows.push(i);
  const src = new Float32Array(attackRows.length * dim);
  attackRows.forEach((r, k) => src.set(batch.x.subarray(r * dim, (r + 1) * dim), k * dim));
  const stamped = applyTrigger(src, dim, trigger, stats);
  const n = batch.n + attackRows.length;
  const x = new Float32Array(n * dim);
  x.set(batch.x.subarray(0, batch.n * dim));
  x.set(stamped, batch.n * dim);
  const y = new Int32Array(n);
  y.set(batch.y.subarray(0, batch.n));
  return { x, y, n, dim };
}

/**
 * A backdoor episode: the clean task is kept (so the model stays useful and the site looks honest), and both
 * support and query also teach "attack + trigger = benign".
 */
export function backdoorEpisode(ep: Episode, trigger: Trigger, stats: FeatureStats): Episode {
  return { support: withBackdoor(ep.support, trigger, stats), query: withBackdoor(ep.query, trigger, stats) };
}
