import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../src/cli.js';
import { AGGREGATORS, ATTACKS } from '../src/attacks/index.js';
import type { AttackMatrixResults } from '../src/attacks/index.js';

const data = fileURLToPath(new URL('../../../data/cic-ids2017/cic-ids2017-sample.csv.gz', import.meta.url));

/** The shipped offices on a thinned sample, a tiny model and two rounds: the whole matrix in seconds. */
function tinyConfig(): string {
  return `
dataset: cic-tiny
data: { files: [${JSON.stringify(data)}], maxPerFamily: 300 }
schema: cicflowmeter
sites:
  - { name: office-ftp, families: [FTP-Patator] }
  - { name: office-dos, families: [DoS GoldenEye, DoS Hulk, DoS Slowhttptest, DoS Slowloris] }
  - { name: office-ddos-scan, families: [DDoS, Portscan] }
  - { name: office-web-infil, families: [Web Attack - Brute Force, Web Attack - SQL Injection, Web Attack - XSS, Infiltration, Infiltration - Portscan] }
validationFamily: SSH-Patator
evalFamilies: [Botnet]
model: { hidden: [8], activation: relu }
rounds: 2
local: { episodes: 1, shots: 4, queryShots: 4, innerSteps: 1, innerLr: 0.05 }
K: [2]
seeds: 1
supportDraws: 1
tuning: { steps: [2], lr: [0.05], draws: 1 }
target: { K: 2, metric: f1, value: 0.5 }
`;
}

test('fedmeta-lab attack runs every attack and aggregator with a backdoor and writes the matrix', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fedmeta-attack-'));
  try {
    const config = join(dir, 'tiny.yaml');
    await writeFile(config, tinyConfig());
    const out = join(dir, 'out');
    const code = await main(['attack', '--config', config, '--out', out, '--seeds', '1', '--rounds', '2', '--sites', '5', '--fractions', '0.2', '--K', '2', '--draws', '1']);
    assert.equal(code, 0);
    const r = JSON.parse(await readFile(join(out, 'attack-matrix.json'), 'utf8')) as AttackMatrixResults;
    assert.equal(r.family, 'Botnet');
    assert.equal(r.malicious['0.2'], 1, '20% of 5 sites');
    assert.deepEqual(r.aggregators, [...AGGREGATORS]);
    assert.deepEqual(r.attacks, [...ATTACKS]);
    const inUnit = (v: number): boolean => Number.isFinite(v) && v >= 0 && v <= 1;
    for (const agg of AGGREGATORS) {
      assert.ok(inUnit(r.clean[agg]!['0.2']!.f1));
      assert.ok(inUnit(r.backdoor[agg]!['0.2']!.triggeredBenign));
      for (const atk of ATTACKS) assert.ok(inUnit(r.attacked[atk]![agg]!['0.2']!.f1), `${atk} × ${agg}`);
    }
    assert.ok(AGGREGATORS.includes(r.summary['0.2']!.bestAggregator as (typeof AGGREGATORS)[number]));
    const text = await readFile(join(out, 'attack-matrix.txt'), 'utf8');
    for (const name of [...ATTACKS, ...AGGREGATORS, 'backdoor']) assert.ok(text.includes(name), `the table names ${name}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('fedmeta-lab attack refuses an unknown aggregator and a fraction Multi-Krum cannot tolerate', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fedmeta-attack-'));
  try {
    const config = join(dir, 'tiny.yaml');
    await writeFile(config, tinyConfig());
    assert.equal(await main(['attack', '--config', config, '--out', dir, '--aggregators', 'mean,krum']), 1);
    assert.equal(await main(['attack', '--config', config, '--out', dir, '--sites', '5', '--fractions', '0.4', '--aggregators', 'multi-krum', '--rounds', '1', '--seeds', '1']), 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
