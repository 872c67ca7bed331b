import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { StatsAccumulator, builtinSchema, initParams, initRuntime, loadFlowTable, predictScores, schemaFingerprint, standardizeRows, tf } from '@fedmeta/shared';
import type { ModelSpec } from '@fedmeta/shared';
import { main } from '../src/cli.js';
import { readLayersModel, writeLayersModel } from '../src/export/files.js';
import { toLayersModel } from '../src/export/layers-model.js';
import type { LayersModelJson } from '../src/export/layers-model.js';
import { MODEL_FILE_FORMAT, writeModelFile } from '../src/model-file.js';
import type { ModelFile } from '../src/model-file.js';
import { modelPath } from '../src/state.js';
import { csv, rowsOf, tempDir, writeText } from './fixtures.js';

before(async () => {
  await initRuntime();
});

/** Loads an exported folder with TensorFlow.js' own loader, through an IOHandler that reads the files. */
async function loadExported(dir: string): Promise<tfl.LayersModel> {
  const handler = { load: async () => (await readLayersModel(join(dir, 'model.json'))) as unknown as tf.io.ModelArtifacts };
  return tfl.loadLayersModel(handler);
}

function randomRows(n: number, dim: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const x = new Float32Array(n * dim);
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = (s / 2 ** 32) * 6 - 3;
  }
  return x;
}

function layersPredict(model: tfl.LayersModel, x: Float32Array, n: number, dim: number): Float32Array {
  const out = tf.tidy(() => model.predict(tf.tensor2d(x, [n, dim])) as tf.Tensor);
  const values = out.dataSync() as Float32Array;
  out.dispose();
  return values;
}

const SPECS: ModelSpec[] = [
  { inputDim: 85, hidden: [32, 16], activation: 'relu', task: { kind: 'binary' } },
  { inputDim: 20, hidden: [12], activation: 'tanh', task: { kind: 'binary' } },
  { inputDim: 9, hidden: [], activation: 'relu', task: { kind: 'binary' } },
  { inputDim: 30, hidden: [10], activation: 'elu', task: { kind: 'multiclass', classes: 4 } },
  { inputDim: 15, hidden: [8, 8], activation: 'softplus', task: { kind: 'binary' } },
  { inputDim: 15, hidden: [6], activation: 'sigmoid', task: { kind: 'multiclass', classes: 3 } },
];

for (const spec of SPECS) {
  test(`tf.loadLayersModel reads the export back and scores like fedmeta: ${spec.hidden.join('x') || 'no hidden layer'} ${spec.activation}, ${spec.task.kind}`, async (t) => {
    const dir = tempDir(t);
    const { values } = initParams(spec, 7);
    // Move the biases off zero, so that a bias written to the wrong place would show.
    for (let i = 0; i < values.length; i += 5) values[i] = values[i]! + 0.05;
    const exp = toLayersModel({ spec, params: values, version: 3, schemaFingerprint: 'fp' }, 'fedmeta-agent test');
    await writeLayersModel(dir, exp);
    const model = await loadExported(dir);
    t.after(() => model.dispose());

    const n = 64;
    const x = randomRows(n, spec.inputDim, 11);
    const ours = predictScores(spec, values, x, n);
    const theirs = layersPredict(model, x, n, spec.inputDim);
    assert.equal(theirs.length, ours.length);
    let worst = 0;
    for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i]! - theirs[i]!));
    assert.ok(worst < 2e-5, `largest difference ${worst}`);
    const last = model.layers.at(-1)!.getConfig()['activation'];
    assert.equal(last, spec.task.kind === 'binary' ? 'sigmoid' : 'softmax');
    assert.equal(model.layers.length, spec.hidden.length + 1);
  });
}

test('the files are the layers-model format: model.json with its weights manifest, float32 weights in the .bin', async (t) => {
  const dir = tempDir(t);
  const spec: ModelSpec = { inputDim: 4, hidden: [3], activation: 'relu', task: { kind: 'binary' } };
  const metaSgd = initParams(spec, 1, { metaSgd: true });
  const files = await writeLayersModel(dir, toLayersModel({ spec, params: metaSgd.values, version: 12, schemaFingerprint: 'abc' }, 'x'));
  const json = JSON.parse(readFileSync(files.modelJson, 'utf8')) as LayersModelJson;
  assert.equal(json.format, 'layers-model');
  assert.equal(json.modelTopology.class_name, 'Sequential');
  assert.deepEqual(json.weightsManifest, [
    {
      paths: ['group1-shard1of1.bin'],
      weights: [
        { name: 'dense0/kernel', shape: [4, 3], dtype: 'float32' },
        { name: 'dense0/bias', shape: [3], dtype: 'float32' },
        { name: 'dense1/kernel', shape: [3, 1], dtype: 'float32' },
        { name: 'dense1/bias', shape: [1], dtype: 'float32' },
      ],
    },
  ]);
  // Only the detector's own 19 values: Meta-SGD step sizes are not part of it.
  assert.equal(statSync(files.weights).size, 19 * 4);
  const bytes = readFileSync(files.weights);
  assert.deepEqual(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)), metaSgd.values.slice(0, 19));
  assert.equal(json.userDefinedMetadata.fedmeta.modelVersion, 12);
  assert.equal(json.userDefinedMetadata.fedmeta.output, 'attack-probability');

  // A manifest that points outside its folder, or weights of the wrong size, are refused.
  writeFileSync(files.modelJson, JSON.stringify({ ...json, weightsManifest: [{ ...json.weightsManifest[0], paths: ['../x.bin'] }] }));
  await assert.rejects(readLayersModel(files.modelJson), /outside its folder/);
  writeFileSync(files.modelJson, JSON.stringify(json));
  writeFileSync(files.weights, Buffer.alloc(12));
  await assert.rejects(readLayersModel(files.modelJson), /bytes of weights/);
});

test('fedmeta-agent export writes the released version cached by run; standardised with its statistics it scores like detect', async (t) => {
  const schema = builtinSchema('cicflowmeter');
  const dir = tempDir(t);
  const stateDir = join(dir, 'state');
  const spec: ModelSpec = { inputDim: 85, hidden: [16], activation: 'relu', task: { kind: 'binary' } };
  const table = await loadFlowTable(writeText(dir, 'site.csv', csv([...rowsOf('BENIGN', 30, 5), ...rowsOf('DoS Hulk', 30, 5)])), schema);
  const stats = StatsAccumulator.forSchema(schema).addTable(table).finalize();
  const p = initParams(spec, 5);
  const cached: ModelFile = {
    format: MODEL_FILE_FORMAT,
    formatVersion: 1,
    version: 9,
    spec,
    manifest: p.manifest,
    params: p.values,
    schemaFingerprint: schemaFingerprint(schema),
    stats,
    inner: { steps: 5, lr: 0.05 },
    createdAt: new Date().toISOString(),
  };
  await writeModelFile(modelPath(stateDir), cached);
  const configFile = writeText(dir, 'agent.yaml', `site: branch-1\ncoordinatorUrl: https://coordinator.example:8443\nstateDir: ${stateDir}\n`);
  const out = join(dir, 'export');

  let printed = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => ((printed += String(chunk)), true)) as typeof process.stdout.write;
  let code: number;
  try {
    code = await main(['export', '--config', configFile, '--model', 'released', '--out', out, '--log-level', 'silent']);
  } finally {
    process.stdout.write = write;
  }
  assert.equal(code, 0);
  assert.deepEqual(JSON.parse(printed), { version: 9, modelJson: join(out, 'model.json'), weights: join(out, 'group1-shard1of1.bin') });

  const model = await loadExported(out);
  t.after(() => model.dispose());
  const meta = (model.getUserDefinedMetadata() as LayersModelJson['userDefinedMetadata']).fedmeta;
  assert.equal(meta.modelVersion, 9);
  assert.equal(meta.schemaFingerprint, schemaFingerprint(schema));
  assert.deepEqual(meta.inner, { steps: 5, lr: 0.05 });
  assert.ok(meta.standardization !== null);
  assert.equal(meta.standardization.mean.length, 85);

  // A user outside fedmeta: encoded features, standardised with the exported statistics, then the model.
  const x = table.x.slice();
  const std = { ...stats, mean: meta.standardization.mean, std: meta.standardization.std };
  standardizeRows(x, table.dim, std);
  const theirs = layersPredict(model, x, table.n, table.dim);
  const ours = predictScores(spec, p.values, standardizeRows(table.x.slice(), table.dim, stats), table.n);
  for (let i = 0; i < table.n; i++) assert.ok(Math.abs(ours[i]! - theirs[i]!) < 2e-5, `row ${i}`);
});
