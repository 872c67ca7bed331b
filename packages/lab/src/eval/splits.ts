import {
  ErrorCode,
  FedmetaError,
  StatsAccumulator,
  createRng,
  deriveSeed,
  rowsOfFamilies,
  splitBenign,
  standardize,
  subsetTable,
} from '@fedmeta/shared';
import type { FeatureSchema, FeatureStats, FlowTable } from '@fedmeta/shared';

/**
 * Who holds which flows in one leave-one-family-out evaluation. Every office has its own benign slice, disjoint
 * from every other office's. Sites hold their families minus the evaluated and the validation family; the
 * validation office holds the validation family; the held-out office holds the evaluated family. Rows are
 * indices into the dataset's table, so that a test (and `checkSplit`) can prove nothing leaks.
 */
export type OfficeRole = 'site' | 'validation' | 'held-out';

export interface Office {
  name: string;
  role: OfficeRole;
  /** Attack families in this office's traffic. */
  families: string[];
  /** The dataset rows this office holds, ascending. */
  rows: Int32Array;
  /** Its flows, standardised as the config says (a copy; the dataset table is left as read). */
  table: FlowTable;
  stats: FeatureStats;
}

export interface FamilySplit {
  evalFamily: string;
  validationFamily: string;
  sites: Office[];
  validation: Office;
  heldOut: Office;
  /** Configured sites left without any family once the held-out ones are removed (not trained on). */
  emptySites: string[];
}

export interface SplitPlan {
  sites: ReadonlyArray<{ name: string; families: readonly string[] }>;
  validationFamily: string;
  normalization: 'site' | 'pooled';
}

function concatSorted(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out.sort();
}

function benignOf(table: FlowTable, rows: Int32Array): Int32Array {
  return rows.filter((r) => table.labels[r] === 0);
}

/** Refuses a family that the table does not hold as attack traffic, naming what it has. */
function requireAttackFamily(table: FlowTable, family: string, what: string): void {
  const f = table.families.indexOf(family);
  let count = 0;
  if (f >= 0) for (let i = 0; i < table.n; i++) if (table.family[i] === f && table.labels[i] === 1) count++;
  if (count === 0) {
    throw new FedmetaError(ErrorCode.CONFIG, `${what} "${family}" has no attack rows in the dataset; its families are ${table.families.map((n) => JSON.stringify(n)).join(', ')}`);
  }
}

/**
 * The offices of one evaluation. The benign split depends on the seed only (not on the evaluated family), so
 * that for one seed every family is measured against the same benign slices.
 */
export function splitForFamily(table: FlowTable, schema: FeatureSchema, plan: SplitPlan, evalFamily: string, seed: number): FamilySplit {
  requireAttackFamily(table, evalFamily, 'evaluation family');
  requireAttackFamily(table, plan.validationFamily, 'validation family');
  for (const s of plan.sites) for (const f of s.families) requireAttackFamily(table, f, `family of site ${s.name}`);
  const heldOutFamilies = new Set([evalFamily, plan.validationFamily]);
  const slices = splitBenign(table, plan.sites.length + 2, createRng(deriveSeed(seed, 'benign-slices')));
  const raw: Array<{ name: string; role: OfficeRole; families: string[]; rows: Int32Array }> = [];
  const emptySites: string[] = [];
  plan.sites.forEach((s, i) => {
    const families = s.families.filter((f) => !heldOutFamilies.has(f));
    if (families.length === 0) {
      emptySites.push(s.name);
      return;
    }
    raw.push({ name: s.name, role: 'site', families, rows: concatSorted(slices[i]!, rowsOfFamilies(table, families)) });
  });
  if (raw.length === 0) {
    throw new FedmetaError(ErrorCode.CONFIG, `with "${evalFamily}" and the validation family held out no site has an attack family left; give the sites other families`);
  }
  const n = plan.sites.length;
  raw.push({ name: 'validation-office', role: 'validation', families: [plan.validationFamily], rows: concatSorted(slices[n]!, rowsOfFamilies(table, [plan.validationFamily])) });
  raw.push({ name: 'held-out-office', role: 'held-out', families: [evalFamily], rows: concatSorted(slices[n + 1]!, rowsOfFamilies(table, [evalFamily])) });

  let pooled: FeatureStats | undefined;
  if (plan.normalization === 'pooled') {
    // The federation's statistics: sums over the sites' flows only; the other offices are not part of it.
    const acc = StatsAccumulator.forSchema(schema);
    for (const o of raw) if (o.role === 'site') acc.addTable(table, o.rows);
    pooled = acc.finalize();
  }
  const offices = raw.map((o): Office => {
    // Per-office statistics come from the office's benign traffic: its normal baseline, which it has in bulk
    // and unlabelled in practice; attack flows do not shift it.
    const stats = pooled ?? StatsAccumulator.forSchema(schema).addTable(table, benignOf(table, o.rows)).finalize();
    const sub = standardize(subsetTable(table, o.rows), stats);
    return { ...o, table: sub, stats };
  });
  const split: FamilySplit = {
    evalFamily,
    validationFamily: plan.validationFamily,
    sites: offices.filter((o) => o.role === 'site'),
    validation: offices.find((o) => o.role === 'validation')!,
    heldOut: offices.find((o) => o.role === 'held-out')!,
    emptySites,
  };
  checkSplit(table, split);
  return split;
}

/**
 * Proves the split does not leak: no site holds a row of the evaluated or the validation family, and no row
 * (benign ones included) is held by two offices. Throws PRECONDITION otherwise; runs on every split.
 */
export function checkSplit(table: FlowTable, split: FamilySplit): void {
  const banned = new Set([table.families.indexOf(split.evalFamily), table.families.indexOf(split.validationFamily)]);
  const owner = new Int32Array(table.n).fill(-1);
  const offices = [...split.sites, split.validation, split.heldOut];
  offices.forEach((o, k) => {
    for (const r of o.rows) {
      if (owner[r] !== -1) {
        throw new FedmetaError(ErrorCode.PRECONDITION, `a row is held by both ${offices[owner[r]!]!.name} and ${o.name}; the split leaks`);
      }
      owner[r] = k;
      if (o.role === 'site' && banned.has(table.family[r]!)) {
        throw new FedmetaError(ErrorCode.PRECONDITION, `site ${o.name} holds a row of a held-out family; the split leaks`);
      }
    }
  });
}
