// A small federation on loopback for end-to-end tests: per-site CSV files cut from the shipped CIC-IDS2017 sample,
// the configuration files of a coordinator and its agents, their launchers, and a client of the admin API.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const COORDINATOR_BIN = join(ROOT, 'packages', 'coordinator', 'bin', 'fedmeta-coordinator');
export const AGENT_BIN = join(ROOT, 'packages', 'site-agent', 'bin', 'fedmeta-agent');
const SAMPLE = join(ROOT, 'data', 'cic-ids2017', 'cic-ids2017-sample.csv.gz');

export interface SiteFile {
  name: string;
  file: string;
  /** The CSV text written, header included: what must never leave the site. */
  csv: string;
}

/**
 * One CSV per site, each with its own benign flows and three attack families of its own (`perFamily` rows each,
 * twice that of benign traffic); no row is in two sites' files.
 */
export function writeSiteFiles(dir: string, families: Record<string, string[]>, perFamily: number): SiteFile[] {
  const lines = gunzipSync(readFileSync(SAMPLE)).toString('utf8').split('\n').filter((l) => l !== '');
  const header = lines[0] as string;
  const byLabel = new Map<string, string[]>();
  for (const l of lines.slice(1)) {
    const f = l.split(',');
    const label = f[f.length - 2] as string;
    let rows = byLabel.get(label);
    if (!rows) byLabel.set(label, (rows = []));
    rows.push(l);
  }
  const names = Object.keys(families);
  return names.map((name, i) => {
    // Every n-th benign row, offset by the site's index: disjoint, and spread over the whole capture.
    const benign = (byLabel.get('BENIGN') ?? []).filter((_, k) => k % names.length === i).slice(0, 2 * perFamily);
    const attacks = (families[name] ?? []).flatMap((family) => (byLabel.get(family) ?? []).slice(0, perFamily));
    const csv = `${header}\n${[...benign, ...attacks].join('\n')}\n`;
    const file = join(dir, `${name}.csv`);
    writeFileSync(file, csv);
    return { name, file, csv };
  });
}

export function writeJson(file: string, value: unknown): string {
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
  return file;
}

export class AdminClient {
  constructor(
    public url: string,
    private readonly token: string,
  ) {}

  async get(path: string): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.url}/admin/v1/${path}`, { headers: { authorization: `Bearer ${this.token}` } });
    const body = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${JSON.stringify(body)}`);
    return body;
  }

  async post(path: string, body: unknown): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.url}/admin/v1/${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const out = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(out)}`);
    return out;
  }

  status(): Promise<Status> {
    return this.get('status') as unknown as Promise<Status>;
  }
}

export interface RoundSummary {
  round: number;
  fromVersion: number;
  status: 'committed' | 'aborted';
  sampled: string[];
  accepted: number;
  rejected: Record<string, number>;
  startedAt: string;
  endedAt: string;
}

/** The parts of the admin status the tests read. */
export interface Status {
  ready: boolean;
  version: number;
  nextRound: number;
  roundInFlight: { round: number; phase: string; sampled: number; answered: number; accepted: number } | null;
  sitesOnline: string[];
  lastRound: RoundSummary | null;
  state: { version: number; params: string; optimizer: string } | null;
  rounds: { running: boolean; done: number; lastError: unknown };
}
