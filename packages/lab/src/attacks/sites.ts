import { ErrorCode, FedmetaError, createRng, deriveSeed, splitRows, subsetTable } from '@fedmeta/shared';
import type { Office } from '../eval/splits.js';

/**
 * The simulated federation of an attack run. Byzantine-robust aggregators need more sites than the benchmark's
 * four offices (Multi-Krum tolerates f faulty sites only with n >= 2f + 3: 7 sites for f = 2, 9 for f = 3),
 * so each configured office is cut into several sites. An office's sites share its standardisation statistics
 * (one network, one baseline) and split its flows: its benign rows evenly, each of its attack families evenly
 * when the family is large enough, otherwise whole to one site in turn. Offices get sites in proportion to
 * their attack flows (one each, the rest by largest remainder), so no site is left with a handful of flows.
 */

/** Families with fewer rows than this per site go whole to one site instead of being cut. */
const MIN_FAMILY_ROWS_PER_SITE = 20;

/** How many sites each office becomes: one each, the spare ones in proportion to attack rows. */
export function allocateSites(attackRows: readonly number[], count: number): number[] {
  const k = attackRows.length;
  if (!Number.isInteger(count) || count < k) {
    throw new FedmetaError(ErrorCode.CONFIG, `${count} simulated sites cannot cover ${k} offices; ask for at least ${k} sites`);
  }
  const total = attackRows.reduce((a, b) => a + b, 0);
  const spare = count - k;
  const exact = attackRows.map((r) => (total > 0 ? (r / total) * spare : spare / k));
  const out = exact.map((e) => 1 + Math.floor(e));
  let left = count - out.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => [e - Math.floor(e), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (left === 0) break;
    out[i]!++;
    left--;
  }
  return out;
}

/** Cuts one office into `parts` sites (see the file comment). */
export function splitOffice(office: Office, parts: number, seed: number): Office[] {
  if (parts === 1) return [office];
  const t = office.table;
  const rng = createRng(deriveSeed(seed, 'simulated-sites', office.name));
  const local: number[][] = Array.from({ length: parts }, () => []);
  const benign: number[] = [];
  const byFamily = new Map<string, number[]>(office.families.map((f) => [f, []]));
  for (let i = 0; i < t.n; i++) {
    if (t.labels[i] === 0) benign.push(i);
    else byFamily.get(t.families[t.family[i]!]!)?.push(i);
  }
  splitRows(benign, parts, rng).forEach((rows, p) => local[p]!.push(...rows));
  let turn = 0;
  for (const family of office.families) {
    const rows = byFamily.get(family)!;
    if (rows.length >= MIN_FAMILY_ROWS_PER_SITE * parts) {
      splitRows(rows, parts, rng).forEach((part, p) => local[p]!.push(...part));
    } else {
      local[turn % parts]!.push(...rows);
      turn++;
    }
  }
  return local.map((rowsOfPart, p) => {
    const rows = Int32Array.from(rowsOfPart).sort();
    const table = subsetTable(t, rows);
    const families = office.families.filter((f) => {
      const fi = t.families.indexOf(f);
      for (let i = 0; i < table.n; i++) if (table.labels[i] === 1 && table.family[i] === fi) return true;
      return false;
    });
    if (families.length === 0) {
      throw new FedmetaError(ErrorCode.CONFIG, `office ${office.name} is too small to be cut into ${parts} sites with attack flows each; ask for fewer simulated sites`);
    }
    return { name: `${office.name}-${p + 1}`, role: office.role, families, rows: Int32Array.from(rows, (r) => office.rows[r]!), table, stats: office.stats };
  });
}

/** The training offices of a split cut into `count` simulated sites. */
export function simulateSites(offices: readonly Office[], count: number, seed: number): Office[] {
  const attack = offices.map((o) => {
    let a = 0;
    for (let i = 0; i < o.table.n; i++) a += o.table.labels[i]!;
    return a;
  });
  const parts = allocateSites(attack, count);
  return offices.flatMap((o, i) => splitOffice(o, parts[i]!, seed));
}

/** ⌈fraction·n⌉ malicious sites (a tolerance of 1e-9 keeps 0.3 × 10 at 3 despite floating point). */
export function maliciousCount(n: number, fraction: number): number {
  if (!(fraction >= 0 && fraction < 0.5)) throw new FedmetaError(ErrorCode.CONFIG, 'the malicious fraction must be at least 0 and below 0.5');
  return Math.ceil(fraction * n - 1e-9);
}

/**
 * Which sites are malicious at each fraction: the first ⌈fraction·n⌉ of one seeded order of the sites, so the
 * malicious set at 20% is contained in the one at 30% (a larger fraction adds attackers, it does not swap them).
 */
export function maliciousSites(names: readonly string[], fraction: number, seed: number): string[] {
  const count = maliciousCount(names.length, fraction);
  return createRng(deriveSeed(seed, 'malicious-order')).shuffle([...names].sort()).slice(0, count);
}
