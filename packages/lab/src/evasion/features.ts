import { ErrorCode, FedmetaError, featureDim } from '@fedmeta/shared';
import type { FeatureSchema, FeatureStats, NumericColumn } from '@fedmeta/shared';

/**
 * Which features an attacker can shape, per flow schema. The rule: a feature computed from the packets the
 * attacker sends (their sizes, how many, how many bytes) or from when it sends them (inter-arrival times,
 * how long the flow lasts, its active and idle periods). Never: the protocol, TCP flags (the victim's stack
 * answers with its own), anything computed from the victim's responses alone (Bwd* sizes and counts, the
 * backward window), header lengths and window sizes fixed by the stack, and the label. Rates and packet-length
 * statistics that mix both directions (Flow Bytes/s, Packet Length *) are left out too: the victim's share of
 * them is not the attacker's to choose.
 *
 * This is a feature-space attack: a change to one controlled feature does not move the features derived from
 * it (Flow Bytes/s after a longer Flow Duration), and counts are not rounded to integers. Both favour the
 * attacker slightly, so detection rates under attack are, if anything, pessimistic.
 */
export const CONTROLLED_FEATURES: Readonly<Record<string, readonly string[]>> = {
  cicflowmeter: [
    'Flow Duration',
    'Total Fwd Packet',
    'Total Length of Fwd Packet',
    'Fwd Packet Length Max',
    'Fwd Packet Length Min',
    'Fwd Packet Length Mean',
    'Fwd Packet Length Std',
    'Flow IAT Mean',
    'Flow IAT Std',
    'Flow IAT Max',
    'Flow IAT Min',
    'Fwd IAT Total',
    'Fwd IAT Mean',
    'Fwd IAT Std',
    'Fwd IAT Max',
    'Fwd IAT Min',
    'Fwd Packets/s',
    'Fwd Segment Size Avg',
    'Subflow Fwd Packets',
    'Subflow Fwd Bytes',
    'Fwd Act Data Pkts',
    'Active Mean',
    'Active Std',
    'Active Max',
    'Active Min',
    'Idle Mean',
    'Idle Std',
    'Idle Max',
    'Idle Min',
  ],
};

/** Index of a numeric column in the feature vector (numeric columns come first, in schema order). */
export function numericIndex(schema: FeatureSchema, column: string): number {
  const j = schema.numeric.findIndex((c) => c.column === column);
  if (j < 0) throw new FedmetaError(ErrorCode.CONFIG, `feature schema ${schema.name} has no numeric column "${column}"; name one of its numeric columns`);
  return j;
}

/** The controlled columns of a schema (the declared list, or the caller's own). */
export function controlledColumns(schema: FeatureSchema, columns?: readonly string[]): string[] {
  const list = columns ?? CONTROLLED_FEATURES[schema.name];
  if (list === undefined) {
    throw new FedmetaError(
      ErrorCode.CONFIG,
      `no attacker-controlled feature list is declared for schema ${schema.name}; declared: ${Object.keys(CONTROLLED_FEATURES).join(', ')}`,
    );
  }
  return [...list];
}

/** 1 for every feature the attacker may change, 0 elsewhere (one-hot slots and flags stay 0). */
export function controlledMask(schema: FeatureSchema, columns?: readonly string[]): Uint8Array {
  const mask = new Uint8Array(featureDim(schema));
  for (const c of controlledColumns(schema, columns)) mask[numericIndex(schema, c)] = 1;
  return mask;
}

/** A column's transform applied to a raw value (what the loader does before standardising). */
export function transformRaw(column: NumericColumn, raw: number): number {
  return column.transform === 'log1p-signed' ? Math.sign(raw) * Math.log1p(Math.abs(raw)) : raw;
}

/**
 * The lowest value each feature may take, in the standardised units the model sees: a raw value of 0 (sizes,
 * counts and times are never negative) passed through the column's transform and its standardisation. Both are
 * monotone increasing, so "raw >= 0" is exactly "standardised >= this bound". −Infinity for features the mask
 * leaves alone. (Statistics give mean 0 and std 1 to features that are not standardised.)
 */
export function lowerBounds(schema: FeatureSchema, stats: FeatureStats, mask: Uint8Array): Float64Array {
  const out = new Float64Array(mask.length).fill(Number.NEGATIVE_INFINITY);
  schema.numeric.forEach((col, j) => {
    if (mask[j] !== 1) return;
    out[j] = (transformRaw(col, 0) - stats.mean[j]!) / stats.std[j]!;
  });
  return out;
}
