import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { main } from '../src/cli.js';
import { withTinyConfig } from './helpers/tiny-config.js';
import { AGGREGATORS, ATTACKS } from '../src/attacks/index.js';
import type { AttackMatrixResults } from '../src/attacks/index.js';

test('fedmeta-lab attack runs every attack and aggregator with a backdoor and writes the matrix', async () => {
  await withTinyConfig(async (config, dir) => {
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
  });
});

test('fedmeta-lab attack refuses an unknown aggregator and a fraction Multi-Krum cannot tolerate', async () => {
  await withTinyConfig(async (config, dir) => {
    assert.equal(await main(['attack', '--config', config, '--out', dir, '--aggregators', 'mean,krum']), 1);
    assert.equal(await main(['attack', '--config', config, '--out', dir, '--sites', '5', '--fractions', '0.4', '--aggregators', 'multi-krum', '--rounds', '1', '--seeds', '1']), 1);
  });
});
