// Small real inputs for the agent's tests: rows of the committed CIC-IDS2017 sample, a temp folder, a logger
// whose output is kept in memory.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { createLogger, type Logger } from '@fedmeta/shared';

export const CIC_SAMPLE = fileURLToPath(new URL('../../../data/cic-ids2017/cic-ids2017-sample.csv.gz', import.meta.url));

let lines: string[] | undefined;
function sampleLines(): string[] {
  lines ??= gunzipSync(readFileSync(CIC_SAMPLE)).toString('utf8').split('\n').filter((l) => l !== '');
  return lines;
}

export function header(): string {
  return sampleLines()[0]!;
}

/** The label of a data line (the sample has no quoted fields; Label is the second-to-last column). */
export function labelOf(line: string): string {
  const f = line.split(',');
  return f[f.length - 2]!;
}

/**
 * Rows of the sample per label, spread over each class (every k-th row), skipping the first `offset` picks so
 * that two calls with different offsets give disjoint rows.
 */
export function rowsOf(label: string, count: number, offset = 0): string[] {
  const all = sampleLines().slice(1).filter((l) => labelOf(l) === label);
  const stride = Math.max(1, Math.floor(all.length / (count + offset)));
  const out: string[] = [];
  for (let i = offset; out.length < count && i * stride < all.length; i++) out.push(all[i * stride]!);
  return out;
}

/** A CSV text: the sample's header and the given rows. */
export function csv(rows: readonly string[]): string {
  return `${header()}\n${rows.join('\n')}\n`;
}

export function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'fedmeta-agent-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function writeText(dir: string, name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** A pino logger whose JSON lines are collected in `lines`. */
export function captureLogger(level = 'debug'): { logger: Logger; lines: string[]; text: () => string } {
  const captured: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      captured.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      cb();
    },
  });
  const logger = createLogger('agent', { level, destination });
  return { logger, lines: captured, text: () => captured.join('\n') };
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` holds, or fails after `ms`. */
export async function waitFor(check: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}

/** A CSV of one small site: benign traffic and three attack families, `perFamily` rows each. */
export function siteCsv(perFamily = 24, offset = 0): string {
  return csv([
    ...rowsOf('BENIGN', perFamily * 2, offset),
    ...rowsOf('DoS Hulk', perFamily, offset),
    ...rowsOf('Portscan', perFamily, offset),
    ...rowsOf('SSH-Patator', perFamily, offset),
  ]);
}
