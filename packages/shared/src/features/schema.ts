import { z } from 'zod';
import { ErrorCode, FedmetaError } from '../errors.js';

/**
 * A feature schema describes one kind of flow record (one CSV layout): which column holds the label, which
 * label values mean benign, which columns become model features and how, and which columns must never reach
 * the model. It is plain data so that a user can write one as JSON or YAML for any CSV export.
 *
 * Feature layout (the order of values in a feature vector): the numeric columns in their order, then each
 * categorical column's slots in its order (one-hot: one slot per vocabulary entry plus a final "other" slot;
 * hashing: `buckets` slots).
 */
export type NumericTransform = 'log1p-signed' | 'none';

export interface NumericColumn {
  column: string;
  /** 'log1p-signed' = sign(x) * log1p(|x|): tames the heavy tails of byte and time counters, keeps the sign. */
  transform: NumericTransform;
  /** Whether this feature is standardised with the federation's pooled mean and std. */
  standardize: boolean;
}

export type CategoricalColumn =
  | { column: string; encoding: 'onehot'; vocabulary: string[] }
  | { column: string; encoding: 'hash'; buckets: number };

export interface FeatureSchema {
  /** A short name for people; not part of the fingerprint. */
  name: string;
  description?: string;
  labelColumn: string;
  /** Values of the label column that mean benign traffic; every other accepted value is an attack. */
  benignLabels: string[];
  /**
   * Column whose value names the attack family of a row. Defaults to the label column (the attack family is
   * the label value). Benign rows carry a family too (e.g. "BENIGN" or "Normal").
   */
  familyColumn?: string;
  /**
   * When set, the attack values the label column may hold; a row with any other label is skipped as
   * 'unknown-label'. When absent, every non-benign label is an attack.
   */
  knownLabels?: string[];
  numeric: NumericColumn[];
  categorical: CategoricalColumn[];
  /** Columns that must never become features (identifiers, timestamps, leaking columns). May be absent from a file. */
  drop: string[];
  /** Identifier columns kept on site, per row, to name flagged flows in alerts; never features. */
  ids: string[];
}

/** The largest hashing width accepted: wider buckets only add empty inputs to the model. */
export const MAX_HASH_BUCKETS = 4096;

const columnName = z.string().trim().min(1, 'a column name must not be empty');
const transform = z.enum(['log1p-signed', 'none']);

const numericDefaults = z
  .object({ transform: transform.default('log1p-signed'), standardize: z.boolean().default(true) })
  .strict();

const numericEntry = z.union(
  [columnName, z.object({ column: columnName, transform: transform.optional(), standardize: z.boolean().optional() }).strict()],
  { errorMap: () => ({ message: 'expected a column name or { column, transform?, standardize? }' }) },
);
const labelValue = z
  .union([z.string(), z.number()], { errorMap: () => ({ message: 'expected a label value (text or a number)' }) })
  .transform(String);

const categoricalEntry = z.discriminatedUnion('encoding', [
  z
    .object({
      column: columnName,
      encoding: z.literal('onehot'),
      vocabulary: z.array(labelValue).min(1),
    })
    .strict(),
  z
    .object({ column: columnName, encoding: z.literal('hash'), buckets: z.number().int().min(1).max(MAX_HASH_BUCKETS) })
    .strict(),
]);

/**
 * The file form accepted from users: like FeatureSchema, plus `numericDefaults` and bare column names in
 * `numeric` (a CICFlowMeter schema has 80 numeric columns that all share one transform).
 */
export const featureSchemaFileSchema = z
  .object({
    name: z.string().trim().min(1),
    description: z.string().optional(),
    labelColumn: columnName,
    benignLabels: z.array(labelValue).min(1),
    familyColumn: columnName.optional(),
    knownLabels: z.array(labelValue).optional(),
    numericDefaults: numericDefaults.optional(),
    numeric: z.array(numericEntry).default([]),
    categorical: z.array(categoricalEntry).default([]),
    drop: z.array(columnName).default([]),
    ids: z.array(columnName).default([]),
  })
  .strict();

export type FeatureSchemaFile = z.input<typeof featureSchemaFileSchema>;

/**
 * Zod reports a failed union as one "Invalid input"; the useful issues are those of the branch whose type
 * matched (an object entry that has a bad key, rather than "expected string").
 */
function flattenIssues(issues: z.ZodIssue[]): z.ZodIssue[] {
  return issues.flatMap((issue) => {
    if (issue.code !== 'invalid_union') return [issue];
    const branches = issue.unionErrors.map((e) => flattenIssues(e.issues));
    const typeMismatch = (b: z.ZodIssue[]): boolean => b.every((x) => x.code === 'invalid_type' && x.path.length === issue.path.length);
    return branches.find((b) => !typeMismatch(b)) ?? [issue];
  });
}

function describeIssues(error: z.ZodError): string {
  return flattenIssues(error.issues)
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(top level)'}: ${i.message}`)
    .join('; ');
}

function refuse(source: string, detail: string): never {
  throw new FedmetaError(ErrorCode.BAD_SCHEMA_FILE, `feature schema ${source} is not valid (${detail}); fix the schema file and try again`);
}

/**
 * Validates a schema in file form (strict: unknown keys are rejected) and returns it normalised: defaults
 * filled, bare numeric names expanded, label values trimmed. Refuses with BAD_SCHEMA_FILE.
 */
export function parseFeatureSchema(input: unknown, source = '(inline)'): FeatureSchema {
  const parsed = featureSchemaFileSchema.safeParse(input);
  if (!parsed.success) refuse(source, describeIssues(parsed.error));
  const f = parsed.data;
  const defaults = f.numericDefaults ?? { transform: 'log1p-signed' as const, standardize: true };
  const numeric: NumericColumn[] = f.numeric.map((e) =>
    typeof e === 'string'
      ? { column: e, transform: defaults.transform, standardize: defaults.standardize }
      : { column: e.column, transform: e.transform ?? defaults.transform, standardize: e.standardize ?? defaults.standardize },
  );
  const categorical: CategoricalColumn[] = f.categorical.map((c) =>
    c.encoding === 'onehot'
      ? { column: c.column, encoding: 'onehot', vocabulary: c.vocabulary.map((v) => v.trim()) }
      : { column: c.column, encoding: 'hash', buckets: c.buckets },
  );
  const schema: FeatureSchema = {
    name: f.name,
    labelColumn: f.labelColumn,
    benignLabels: f.benignLabels.map((v) => v.trim()),
    numeric,
    categorical,
    drop: f.drop,
    ids: f.ids,
  };
  if (f.description !== undefined) schema.description = f.description;
  if (f.familyColumn !== undefined && f.familyColumn !== f.labelColumn) schema.familyColumn = f.familyColumn;
  if (f.knownLabels !== undefined) schema.knownLabels = f.knownLabels.map((v) => v.trim());
  checkConsistency(schema, source);
  return schema;
}

/** Rules zod cannot express: each column has one role, at least one feature, no duplicate vocabulary entries. */
function checkConsistency(s: FeatureSchema, source: string): void {
  if (s.numeric.length + s.categorical.length === 0) refuse(source, 'it declares no numeric or categorical feature columns');
  const featureCols = [...s.numeric.map((c) => c.column), ...s.categorical.map((c) => c.column)];
  const seen = new Set<string>();
  for (const c of featureCols) {
    if (seen.has(c)) refuse(source, `column "${c}" is listed as a feature more than once`);
    seen.add(c);
  }
  const roles: [string, string[]][] = [
    ['the label column', [s.labelColumn]],
    ['the family column', s.familyColumn !== undefined ? [s.familyColumn] : []],
    ['a dropped column', s.drop],
    ['an identifier column', s.ids],
  ];
  for (const [role, cols] of roles) {
    for (const c of cols) {
      if (seen.has(c)) refuse(source, `column "${c}" is both a feature and ${role}; a column has one role`);
    }
  }
  for (const c of s.categorical) {
    if (c.encoding === 'onehot' && new Set(c.vocabulary).size !== c.vocabulary.length) {
      refuse(source, `the vocabulary of "${c.column}" lists a value twice`);
    }
  }
  if (s.benignLabels.some((v) => v === '')) refuse(source, 'benignLabels contains an empty value');
  if (s.knownLabels?.some((v) => s.benignLabels.includes(v))) {
    refuse(source, 'knownLabels lists attack values and must not repeat a benign label');
  }
}

/** The column whose value names a row's family. */
export function familyColumnOf(schema: FeatureSchema): string {
  return schema.familyColumn ?? schema.labelColumn;
}

/** Width of the feature vector this schema produces. */
export function featureDim(schema: FeatureSchema): number {
  let d = schema.numeric.length;
  for (const c of schema.categorical) d += c.encoding === 'onehot' ? c.vocabulary.length + 1 : c.buckets;
  return d;
}

/** A readable name per feature slot, in layout order (e.g. "Flow Duration", "Protocol=6", "Protocol=<other>", "L7_PROTO#3"). */
export function featureNames(schema: FeatureSchema): string[] {
  const names = schema.numeric.map((c) => c.column);
  for (const c of schema.categorical) {
    if (c.encoding === 'onehot') {
      for (const v of c.vocabulary) names.push(`${c.column}=${v}`);
      names.push(`${c.column}=<other>`);
    } else {
      for (let b = 0; b < c.buckets; b++) names.push(`${c.column}#${b}`);
    }
  }
  return names;
}

/** 1 where a feature slot is standardised, 0 elsewhere (one-hot and hashed slots never are). */
export function standardizeMask(schema: FeatureSchema): Uint8Array {
  const mask = new Uint8Array(featureDim(schema));
  schema.numeric.forEach((c, i) => {
    mask[i] = c.standardize ? 1 : 0;
  });
  return mask;
}

/** Columns a file must contain for this schema (ids only when the caller keeps them). */
export function requiredColumns(schema: FeatureSchema, withIds: boolean): string[] {
  const cols = [schema.labelColumn];
  if (schema.familyColumn !== undefined) cols.push(schema.familyColumn);
  for (const c of schema.numeric) cols.push(c.column);
  for (const c of schema.categorical) cols.push(c.column);
  if (withIds) for (const c of schema.ids) if (!cols.includes(c)) cols.push(c);
  return cols;
}

/** Freezes a schema at every depth, so that a shared built-in cannot be edited by one caller for all. */
export function freezeSchema(schema: FeatureSchema): FeatureSchema {
  const freeze = (v: unknown): void => {
    if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
      Object.freeze(v);
      for (const child of Object.values(v)) freeze(child);
    }
  };
  freeze(schema);
  return schema;
}
