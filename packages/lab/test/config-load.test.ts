import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isFedmetaError } from '@fedmeta/shared';
import { applyOverrides, loadEvalConfig, parseEvalConfig } from '../src/config.js';
import { parseMethod } from '../src/methods/index.js';

const configs = fileURLToPath(new URL('../configs/', import.meta.url));

function minimal(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    dataset: 'x',
    data: { files: ['flows.csv.gz'] },
    schema: 'cicflowmeter',
    sites: [
      { name: 'a', families: ['DDoS'] },
      { name: 'b', families: ['Portscan'] },
    ],
    validationFamily: 'SSH-Patator',
    evalFamilies: ['Botnet'],
    rounds: 3,
    target: { K: 1, metric: 'f1', value: 0.9 },
    ...extra,
  };
}

const refused = (e: unknown): boolean => isFedmetaError(e) && e.code === 'FEDMETA_ERR_CONFIG';

test('the shipped configs load, name files that exist, hold Botnet out for CIC and use at least 5 seeds', async () => {
  for (const name of ['cic-ids2017', 'unsw-nb15', 'nf-bot-iot-v2']) {
    const c = await loadEvalConfig(`${configs}${name}.yaml`);
    assert.equal(c.dataset, name);
    for (const f of c.files) assert.ok(existsSync(f), `${name}: ${f} exists`);
    assert.ok(c.seeds >= 5);
    assert.deepEqual(c.K, [1, 5, 10, 20]);
    for (const m of ['scratch', 'local-rf', 'local-lr', 'fedavg', 'fedavg+ft', 'centralized+ft', 'reptile', 'fomaml', 'maml']) {
      assert.ok(c.methods.includes(m), `${name} runs ${m}`);
    }
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.sites));
  }
  const cic = await loadEvalConfig(`${configs}cic-ids2017.yaml`);
  assert.ok(cic.evalFamilies.includes('Botnet'));
  assert.equal(cic.validationFamily, 'SSH-Patator');
});

test('defaults fill in and relative paths resolve against the config file', () => {
  const c = parseEvalConfig(minimal(), '/data/here');
  assert.deepEqual(c.files, ['/data/here/flows.csv.gz']);
  assert.equal(c.schemaRef, 'cicflowmeter');
  assert.equal(c.targetFamily, 'Botnet');
  assert.deepEqual(c.model, { hidden: [64, 64], activation: 'relu' });
  assert.equal(c.normalization, 'site');
  assert.equal(c.release, 'best');
  assert.equal(c.threshold, 'support');
  assert.equal(parseEvalConfig(minimal({ schema: 'my-schema.yaml' }), '/cfg').schemaRef, '/cfg/my-schema.yaml');
});

test('unknown keys, a family given to two sites and inconsistent targets are refused with the field named', () => {
  assert.throws(() => parseEvalConfig(minimal({ round: 3 }), '/'), (e) => refused(e) && /round/.test((e as Error).message));
  assert.throws(() => parseEvalConfig(minimal({ local: { shot: 3 } }), '/'), refused);
  const twice = minimal({ sites: [{ name: 'a', families: ['DDoS'] }, { name: 'b', families: ['DDoS'] }] });
  assert.throws(() => parseEvalConfig(twice, '/'), (e) => refused(e) && /DDoS/.test((e as Error).message));
  assert.throws(() => parseEvalConfig(minimal({ evalFamilies: ['SSH-Patator'] }), '/'), refused);
  assert.throws(() => parseEvalConfig(minimal({ target: { K: 3, metric: 'f1', value: 0.9 } }), '/'), (e) => refused(e) && /target\.K/.test((e as Error).message));
  assert.throws(() => parseEvalConfig(minimal({ target: { family: 'DDoS', K: 1, metric: 'f1', value: 0.9 } }), '/'), refused);
  assert.throws(() => parseEvalConfig(minimal({ methods: ['fedprox'] }), '/'), refused);
  assert.throws(() => parseEvalConfig(minimal({ methods: ['reptile+metasgd'] }), '/'), refused);
});

test('method names: the nine methods and the meta-learning variants', () => {
  assert.equal(parseMethod('fedavg+ft').trainingKey, 'fedavg');
  assert.equal(parseMethod('fedavg').fineTune, false);
  assert.equal(parseMethod('centralized+ft').federated, false);
  const v = parseMethod('fomaml+metasgd+anil');
  assert.equal(v.name, 'fomaml+anil+metasgd');
  assert.ok(v.anil && v.metaSgd && v.federated && v.fineTune);
  assert.equal(parseMethod('local-rf').trained, false);
});

test('command-line overrides replace seeds and rounds, and --quick shrinks the run', () => {
  const c = parseEvalConfig(minimal({ rounds: 200, seeds: 5 }), '/');
  const o = applyOverrides(c, { seeds: 7, rounds: 12 });
  assert.equal(o.seeds, 7);
  assert.equal(o.rounds, 12);
  assert.equal(c.rounds, 200, 'the loaded config is not changed');
  const q = applyOverrides(c, { quick: true });
  assert.ok(q.rounds <= 10 && q.seeds <= 2 && q.supportDraws <= 2);
  assert.throws(() => applyOverrides(c, { seeds: 0 }), refused);
});
