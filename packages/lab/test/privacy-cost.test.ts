import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { main } from '../src/cli.js';
import { withTinyConfig } from './helpers/tiny-config.js';
import type { PrivacyCostResults } from '../src/privacy-cost/index.js';

test('fedmeta-lab privacy-cost measures F1 without DP, with central DP at each σ and with local DP-SGD, and the ε each reaches', async () => {
  await withTinyConfig(async (config, dir) => {
    const out = join(dir, 'out');
    const code = await main(['privacy-cost', '--config', config, '--out', out, '--seeds', '1', '--rounds', '2', '--sites', '5', '--sampled', '3', '--K', '2', '--draws', '1', '--sigmas', '2,0.5,1']);
    assert.equal(code, 0);
    const r = JSON.parse(await readFile(join(out, 'privacy-cost.json'), 'utf8')) as PrivacyCostResults;
    assert.deepEqual(r.families, ['Botnet']);
    assert.equal(r.samplingRate, 3 / 5);
    const rows = r.rows['Botnet']!;
    assert.deepEqual(
      rows.map((x) => x.setting),
      ['init', 'no-dp', 'central', 'central', 'central', 'local'],
    );
    for (const row of rows) {
      assert.ok(Number.isFinite(row.f1) && row.f1 >= 0 && row.f1 <= 1, `${row.label}: F1 ${row.f1} is a measurement in [0, 1]`);
      assert.equal(row.f1PerSeed.length, 1);
    }
    for (const row of rows.filter((x) => x.setting === 'init' || x.setting === 'no-dp')) assert.equal(row.epsilon, null, `${row.label} has no guarantee`);
    const dp = rows.filter((x) => x.setting === 'central' || x.setting === 'local');
    for (const row of dp) {
      assert.ok(row.epsilon !== null && Number.isFinite(row.epsilon) && row.epsilon > 0, `${row.label}: a finite ε from the engine's accountant (${row.epsilon})`);
      assert.ok(row.clipNorm !== null && row.clipNorm > 0, `${row.label} reports its clip bound`);
    }
    assert.equal(dp.at(-1)!.clipNorm, 1, 'local DP-SGD clips each flow to --local-clip');
    for (const row of dp.slice(0, -1)) assert.equal(row.samplingRate, 3 / 5, 'a central round samples 3 of 5 sites');
    const q = dp.at(-1)!.samplingRate!;
    assert.ok(q > 0 && q <= 1, `a flow's sampling rate under DP-SGD is a probability (${q})`);
    // Listed from least to most noise; less noise, less privacy: ε grows as σ falls.
    const central = rows.filter((x) => x.setting === 'central');
    assert.deepEqual(central.map((x) => x.sigma), [0.5, 1, 2]);
    for (let i = 1; i < central.length; i++) assert.ok(central[i - 1]!.epsilon! > central[i]!.epsilon!, `ε at σ=${central[i - 1]!.sigma} exceeds ε at σ=${central[i]!.sigma}`);
    const text = await readFile(join(out, 'privacy-cost.txt'), 'utf8');
    for (const label of ['no DP', 'central DP σ=0.5', 'local DP-SGD σ=1', 'Botnet held out']) assert.ok(text.includes(label), `the table shows ${label}`);
  });
});

test('fedmeta-lab privacy-cost refuses more sampled sites than sites, and a noise multiplier that is not a number', async () => {
  await withTinyConfig(async (config, dir) => {
    assert.equal(await main(['privacy-cost', '--config', config, '--out', dir, '--sites', '5', '--sampled', '6', '--rounds', '1', '--seeds', '1']), 1);
    assert.equal(await main(['privacy-cost', '--config', config, '--out', dir, '--sigmas', '0.5,x', '--rounds', '1', '--seeds', '1']), 1);
  });
});
