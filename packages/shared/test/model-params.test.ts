import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, initParams, isFedmetaError, layerWidths, manifestFor, manifestSize, modelParamCount, validateSpec } from '@fedmeta/shared';
import type { ModelSpec } from '@fedmeta/shared';

const spec: ModelSpec = { inputDim: 78, hidden: [256, 128], activation: 'relu', task: { kind: 'multiclass', classes: 2 } };

test('the manifest names dense{i}/kernel [in, out] and dense{i}/bias [out], in layer order', () => {
  const m = manifestFor(spec);
  assert.deepEqual(
    m.map((e) => `${e.name}:${e.shape.join('x')}`),
    ['dense0/kernel:78x256', 'dense0/bias:256', 'dense1/kernel:256x128', 'dense1/bias:128', 'dense2/kernel:128x2', 'dense2/bias:2'],
  );
  assert.ok(m.every((e) => e.dtype === 'float32'));
  assert.equal(manifestSize(m), modelParamCount(spec));
  assert.deepEqual(layerWidths(spec), [78, 256, 128, 2]);
  const withSizes = manifestFor(spec, { metaSgd: true });
  assert.equal(withSizes.length, 12);
  assert.equal(withSizes[6]!.name, 'metasgd/dense0/kernel');
  assert.equal(manifestSize(withSizes), 2 * modelParamCount(spec));
  assert.equal(manifestFor({ ...spec, task: { kind: 'binary' } }).at(-1)!.shape[0], 1);
});

test('initParams is deterministic per seed and differs across seeds', () => {
  const a = initParams(spec, 42);
  const b = initParams(spec, 42);
  const c = initParams(spec, 43);
  assert.deepEqual(a.values, b.values);
  assert.notDeepEqual(a.values, c.values);
  assert.deepEqual(a.manifest, manifestFor(spec));
});

test('initialisation scale: He for relu/elu hidden layers, Glorot otherwise and for the output; zero biases', () => {
  for (const activation of ['relu', 'tanh'] as const) {
    const s: ModelSpec = { ...spec, activation };
    const v = initParams(s, 1).values;
    const k0 = v.subarray(0, 78 * 256);
    const bound = activation === 'relu' ? Math.sqrt(6 / 78) : Math.sqrt(6 / (78 + 256));
    const maxAbs = k0.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    assert.ok(maxAbs <= bound && maxAbs > 0.95 * bound, `${activation}: max |w| ${maxAbs} vs bound ${bound}`);
    const mean = k0.reduce((m, x) => m + x, 0) / k0.length;
    assert.ok(Math.abs(mean) < 0.01);
    assert.ok(v.subarray(78 * 256, 78 * 256 + 256).every((x) => x === 0));
    const outStart = 78 * 256 + 256 + 256 * 128 + 128;
    const outBound = Math.sqrt(6 / (128 + 2));
    assert.ok(v.subarray(outStart, outStart + 256).every((x) => Math.abs(x) <= outBound));
  }
  const sized = initParams(spec, 1, { metaSgd: true, metaSgdLr: 0.05 }).values;
  assert.ok(sized.subarray(modelParamCount(spec)).every((x) => Math.abs(x - 0.05) < 1e-9));
});

test('specs that build no network are refused with a coded error', () => {
  const bad: unknown[] = [
    { ...spec, inputDim: 0 },
    { ...spec, hidden: [16, 0] },
    { ...spec, activation: 'gelu' },
    { ...spec, task: { kind: 'multiclass', classes: 1 } },
    { ...spec, task: { kind: 'regression' } },
  ];
  for (const s of bad) assert.throws(() => validateSpec(s as ModelSpec), (e) => isFedmetaError(e, ErrorCode.CONFIG));
  assert.throws(() => initParams(spec, 1.5), (e) => isFedmetaError(e, ErrorCode.CONFIG));
});
