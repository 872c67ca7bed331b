import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkResults } from '../src/eval/index.js';

const bin = fileURLToPath(new URL('../bin/fedmeta-lab', import.meta.url));
const data = fileURLToPath(new URL('../../../data/nf-bot-iot-v2/nf-bot-iot-v2-sample.csv.gz', import.meta.url));

/** Every method, a tiny model and a few rounds: the whole pipeline, in seconds. */
function tinyConfig(): string {
  return `
dataset: nf-bot-iot-v2-tiny
data: { files: [${JSON.stringify(data)}], maxPerFamily: 150 }
schema: netflow-v2
sites:
  - { name: office-ddos, families: [DDoS] }
  - { name: office-dos, families: [DoS] }
validationFamily: Theft
evalFamilies: [Reconnaissance]
model: { hidden: [8], activation: relu }
rounds: 3
local: { episodes: 2, shots: 4, queryShots: 4, innerSteps: 2, innerLr: 0.05 }
K: [1, 5]
seeds: 2
supportDraws: 2
tuning: { steps: [2, 4], lr: [0.05], draws: 1 }
validateEvery: 2
target: { K: 1, metric: f1At50, value: 0.5 }
curves: { every: 1, draws: 1 }
baselines: { forest: { trees: 10 } }
`;
}

const METHODS = ['scratch', 'local-rf', 'local-lr', 'fedavg', 'fedavg+ft', 'centralized+ft', 'reptile', 'fomaml', 'maml'];
const FEDERATED = ['fedavg', 'fedavg+ft', 'reptile', 'fomaml', 'maml'];

test('fedmeta-lab evaluate runs every method on a tiny config and writes a valid results.json', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fedmeta-lab-e2e-'));
  try {
    const config = join(dir, 'tiny.yaml');
    await writeFile(config, tinyConfig());
    const out = join(dir, 'out');
    const r = spawnSync(process.execPath, [bin, 'evaluate', '--config', config, '--out', out], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);

    const raw = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as unknown;
    const results = checkResults(raw);
    assert.equal(results.dataset, 'nf-bot-iot-v2-tiny');
    assert.deepEqual(results.evalFamilies, ['Reconnaissance']);
    assert.equal(results.seeds, 2);
    assert.deepEqual(Object.keys(results.methods), METHODS);
    for (const m of METHODS) {
      assert.deepEqual(Object.keys(results.methods[m]!), ['1', '5']);
      for (const k of ['1', '5']) {
        const s = results.methods[m]![k]!;
        for (const metric of [s.f1, s.f1At50, s.detectionRate, s.fpr, s.prAuc]) {
          assert.ok(metric.mean >= 0 && metric.mean <= 1 && metric.std >= 0, `${m} K=${k}`);
        }
      }
    }
    assert.deepEqual(Object.keys(results.communication).sort(), [...FEDERATED].sort());
    for (const c of Object.values(results.communication)) {
      assert.equal(c.targetF1, 0.5);
      assert.equal(c.roundsToTarget === null, c.bytesUploadedPerSite === null);
    }
    // Curves: one point per round (0..3) for every trained start, scores in [0, 1].
    for (const m of [...FEDERATED, 'centralized+ft']) {
      assert.deepEqual(results.curves[m]!.map((p) => p.round), [0, 1, 2, 3]);
      assert.ok(results.curves[m]!.every((p) => p.f1 >= 0 && p.f1 <= 1 && p.f1At50 >= 0 && p.f1At50 <= 1));
    }
    // Released versions come from the rounds that ran; schedules come from the tuning grid.
    for (const versions of Object.values(results.releases['Reconnaissance']!)) {
      assert.equal(versions.length, 2);
      assert.ok(versions.every((v) => v >= 0 && v <= 3));
    }
    assert.ok([2, 4].includes(results.adaptation['fomaml']!['1']!.steps));
    assert.ok(results.paired['Reconnaissance']!['fomaml']!['1']!.pairs === 2);

    // The table goes to stdout; progress to stderr as JSON lines (stderr is not a terminal here).
    assert.match(r.stdout, /Reconnaissance held out/);
    assert.match(r.stdout, /communication: rounds until f1At50 >= 0.5/);
    const events = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { event: string }).event);
    assert.ok(events.includes('trained') && events.includes('evaluate-done'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('fedmeta-lab refuses a bad config with a coded message and exit status 1', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fedmeta-lab-bad-'));
  try {
    const config = join(dir, 'bad.yaml');
    await writeFile(config, tinyConfig().replace('rounds: 3', 'rounds: 3\nroundz: 4'));
    const r = spawnSync(process.execPath, [bin, 'evaluate', '--config', config, '--out', join(dir, 'out')], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /FEDMETA_ERR_CONFIG: .*roundz/);
    const usage = spawnSync(process.execPath, [bin, 'evaluate', '--out', dir], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /config/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
