// Rebuilds the small dataset samples shipped in data/ from full copies of the source datasets (each data/*/README.md
// says where to get them). A developer runs it by hand; tests and the demo only read the committed samples.
//
//   node --import tsx scripts/make-samples.ts --from <folder holding the source datasets> [--out data] [--seed 2017]
//
// Each sample is drawn per class with a seeded reservoir (uniform over the class, reproducible), rows keep
// their original order, fields are written back unchanged (RFC 4180 quoting only where a field needs it),
// with LF line endings and no BOM, then gzip level 9 (deterministic: no name, mtime 0).
import { createReadStream } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, createGunzip } from 'node:zlib';
import { parse } from 'csv-parse';
import { createRng, deriveSeed, type Rng } from '../packages/shared/src/episodes/rng.js';

interface SampleSpec {
  /** Folder under data/ and file name of the sample. */
  outDir: string;
  outFile: string;
  /** Source files, relative to --from, read in this order. */
  sources: (from: string) => Promise<string[]>;
  labelColumn: string;
  /** Rows kept per class at most; classes below the cap are kept whole. */
  cap: (label: string) => number;
}

const SPECS: SampleSpec[] = [
  {
    outDir: 'cic-ids2017',
    outFile: 'cic-ids2017-sample.csv.gz',
    sources: async (from) => {
      const dir = join(from, 'cic-ids2017-improved-cns2022-sample');
      return (await readdir(dir)).filter((f) => f.endsWith('.csv')).sort().map((f) => join(dir, f));
    },
    labelColumn: 'Label',
    // Sites each need their own benign slice, so benign keeps all 5,000 source rows.
    cap: (label) => (label === 'BENIGN' ? 5000 : 1500),
  },
  {
    outDir: 'unsw-nb15',
    outFile: 'unsw-nb15-sample.csv.gz',
    sources: async (from) => [join(from, 'unsw-nb15', 'UNSW_NB15_testing-set.first4528rows.csv')],
    labelColumn: 'attack_cat',
    cap: () => 260,
  },
  {
    outDir: 'nf-bot-iot-v2',
    outFile: 'nf-bot-iot-v2-sample.csv.gz',
    sources: async (from) => [join(from, 'nf-bot-iot-v2-reduced', 'botiot_reduced.csv.gz')],
    labelColumn: 'Attack',
    cap: () => 750,
  },
];

interface Kept {
  order: number;
  fields: string[];
}

/** Per-class reservoirs over a stream of records; `order` keeps the source order for the output. */
class ClassReservoirs {
  private readonly seen = new Map<string, number>();
  readonly kept = new Map<string, Kept[]>();

  constructor(
    private readonly cap: (label: string) => number,
    private readonly rng: Rng,
  ) {}

  offer(label: string, item: Kept): void {
    const k = (this.seen.get(label) ?? 0) + 1;
    this.seen.set(label, k);
    const bucket = this.kept.get(label) ?? [];
    this.kept.set(label, bucket);
    const cap = this.cap(label);
    if (bucket.length < cap) bucket.push(item);
    else {
      const j = this.rng.int(k);
      if (j < cap) bucket[j] = item;
    }
  }

  counts(): { label: string; seen: number; kept: number }[] {
    return [...this.seen.entries()]
      .sort((a, b) => a[0].localeCompare(b[0]))
      .map(([label, seen]) => ({ label, seen, kept: this.kept.get(label)?.length ?? 0 }));
  }
}

function csvField(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

async function* records(path: string): AsyncGenerator<string[]> {
  const file = createReadStream(path);
  const parser = parse({ bom: true });
  (path.endsWith('.gz') ? file.pipe(createGunzip()) : file).pipe(parser);
  yield* parser as AsyncIterable<string[]>;
}

async function makeSample(spec: SampleSpec, from: string, out: string, seed: number): Promise<void> {
  const rng = createRng(deriveSeed(seed, spec.outDir));
  const reservoirs = new ClassReservoirs(spec.cap, rng);
  let header: string[] | null = null;
  let order = 0;
  for (const path of await spec.sources(from)) {
    let fileHeader: string[] | null = null;
    let labelIdx = -1;
    for await (const rec of records(path)) {
      if (fileHeader === null) {
        fileHeader = rec.map((h) => h.trim());
        if (header === null) header = fileHeader;
        else if (header.join('\u0000') !== fileHeader.join('\u0000')) throw new Error(`${path}: header differs from the first file`);
        labelIdx = fileHeader.indexOf(spec.labelColumn);
        if (labelIdx < 0) throw new Error(`${path}: no ${spec.labelColumn} column`);
        continue;
      }
      reservoirs.offer(rec[labelIdx]!.trim(), { order: order++, fields: rec });
    }
  }
  if (header === null) throw new Error(`${spec.outDir}: no source rows`);
  const rows = [...reservoirs.kept.values()].flat().sort((a, b) => a.order - b.order);
  const text = [header, ...rows.map((r) => r.fields)].map((f) => f.map(csvField).join(',')).join('\n') + '\n';
  const gz = gzipSync(Buffer.from(text, 'utf8'), { level: 9 });
  await mkdir(join(out, spec.outDir), { recursive: true });
  const target = join(out, spec.outDir, spec.outFile);
  await writeFile(target, gz);
  const sha = createHash('sha256').update(gz).digest('hex');
  console.log(`\n${spec.outDir}/${spec.outFile}: ${rows.length} rows, ${header.length} columns, ${gz.length} bytes gzip (${text.length} raw)`);
  console.log(`sha256 ${sha}`);
  for (const c of reservoirs.counts()) console.log(`  ${c.label}: ${c.kept} of ${c.seen}`);
}

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined) {
    process.stderr.write(`--${name} is required: the folder holding the full source datasets (see data/*/README.md for where to get them)\n`);
    process.exit(2);
  }
  return v;
}

const root = fileURLToPath(new URL('..', import.meta.url));
const from = resolve(root, arg('from'));
const out = resolve(root, arg('out', 'data'));
const seed = Number(arg('seed', '2017'));
for (const spec of SPECS) await makeSample(spec, from, out, seed);
