import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { parseEvalConfig } from '../src/config.js';
import { evaluate } from '../src/eval/index.js';

const data = fileURLToPath(new URL('../../../data/nf-bot-iot-v2/nf-bot-iot-v2-sample.csv.gz', import.meta.url));

test('--transport socket trains meta-learning over a real coordinator and enrolled agents on loopback', async () => {
  const config = parseEvalConfig(
    {
      dataset: 'nf-socket',
      data: { files: [data], maxPerFamily: 120 },
      schema: 'netflow-v2',
      sites: [
        { name: 'office-ddos', families: ['DDoS'] },
        { name: 'office-dos', families: ['DoS'] },
      ],
      validationFamily: 'Theft',
      evalFamilies: ['Reconnaissance'],
      model: { hidden: [8] },
      rounds: 2,
      local: { episodes: 2, shots: 4, queryShots: 4, innerSteps: 2, innerLr: 0.05 },
      methods: ['fomaml', 'fedavg+ft'],
      K: [1],
      seeds: 1,
      supportDraws: 1,
      tuning: { steps: [2], lr: [0.05], draws: 1 },
      target: { K: 1, metric: 'f1', value: 0.99 },
      curves: { draws: 1 },
    },
    '/',
  );
  const results = await evaluate(config, { transport: 'socket' });
  assert.deepEqual(results.settings['transportByTraining'], { fedavg: 'memory', fomaml: 'socket' });
  assert.deepEqual(results.curves['fomaml']!.map((p) => p.round), [0, 1, 2]);
  assert.ok(results.methods['fomaml']!['1']!.f1.mean >= 0);
  const released = results.releases['Reconnaissance']!['fomaml']!;
  assert.equal(released.length, 1);
  assert.ok(released[0]! >= 0 && released[0]! <= 2, 'the coordinator released one of the versions it committed');
});
