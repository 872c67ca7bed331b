import { createHash } from 'node:crypto';
import type { FeatureSchema } from './schema.js';

/** Bumped whenever the meaning of a schema field or the encoding of a feature changes. */
const FINGERPRINT_VERSION = 1;

/** JSON with object keys sorted at every depth, so key order in a user's file never changes the hash. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

const sorted = (values: readonly string[]): string[] => [...new Set(values)].sort();

/**
 * What the fingerprint covers: everything that changes the feature vector a row becomes or what its label
 * means. Feature order and vocabulary order are kept (they fix the layout); sets (benign and known labels) are
 * sorted. Left out on purpose: the name and description (cosmetic), `drop` and `ids` (they never change the
 * vector: a site that drops an extra unused column still trains the same model).
 */
export function schemaSemantics(schema: FeatureSchema): unknown {
  return {
    v: FINGERPRINT_VERSION,
    label: schema.labelColumn,
    benign: sorted(schema.benignLabels),
    family: schema.familyColumn ?? schema.labelColumn,
    known: schema.knownLabels === undefined ? null : sorted(schema.knownLabels),
    numeric: schema.numeric.map((c) => ({ column: c.column, transform: c.transform, standardize: c.standardize })),
    categorical: schema.categorical.map((c) =>
      c.encoding === 'onehot'
        ? { column: c.column, encoding: 'onehot', vocabulary: [...c.vocabulary] }
        : { column: c.column, encoding: 'hash', buckets: c.buckets },
    ),
  };
}

/**
 * sha256 (hex) of the canonical JSON of the schema's semantics. A federation compares fingerprints to refuse
 * a site whose features would not line up with the model.
 */
export function schemaFingerprint(schema: FeatureSchema): string {
  return createHash('sha256').update(canonicalJson(schemaSemantics(schema))).digest('hex');
}
