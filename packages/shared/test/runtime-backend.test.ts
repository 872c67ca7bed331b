import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, adapt, initParams, initRuntime, isFedmetaError, metaGradient, predictScores, runtimeInfo, tf } from '@fedmeta/shared';
import type { ModelSpec } from '@fedmeta/shared';

test('before initRuntime, training and scoring are refused with a coded error that says what to do', () => {
  assert.equal(runtimeInfo(), undefined);
  const spec: ModelSpec = { inputDim: 2, hidden: [3], activation: 'relu', task: { kind: 'binary' } };
  const p = initParams(spec, 1).values;
  const b = { x: new Float32Array(4), y: Int32Array.of(0, 1), n: 2, dim: 2 };
  const refused = (e: unknown): boolean => isFedmetaError(e, ErrorCode.PRECONDITION) && /initRuntime/.test(String(e));
  assert.throws(() => adapt(spec, p, b, { steps: 1, lr: 0.1 }), refused);
  assert.throws(() => metaGradient('maml', spec, p, { support: b, query: b }, { steps: 1, lr: 0.1 }), refused);
  assert.throws(() => predictScores(spec, p, b.x, 2), refused);
});

test('the default backend is wasm, and initRuntime is idempotent', async () => {
  const saved = process.env['FEDMETA_BACKEND'];
  delete process.env['FEDMETA_BACKEND'];
  try {
    const a = await initRuntime();
    assert.equal(a.backend, 'wasm');
    assert.equal(a.fellBack, false);
    const b = await initRuntime();
    assert.equal(b, a);
    assert.equal(tf.getBackend(), 'wasm');
    assert.equal(runtimeInfo(), a);
  } finally {
    if (saved !== undefined) process.env['FEDMETA_BACKEND'] = saved;
  }
});

test('threads must be a positive integer', async () => {
  await assert.rejects(initRuntime({ threads: 0 }), (e) => isFedmetaError(e, ErrorCode.CONFIG));
});

test('FEDMETA_BACKEND picks the backend; an unknown value is a coded configuration error', async () => {
  const saved = process.env['FEDMETA_BACKEND'];
  try {
    process.env['FEDMETA_BACKEND'] = 'cpu';
    assert.equal((await initRuntime()).backend, 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
    process.env['FEDMETA_BACKEND'] = 'webgpu';
    await assert.rejects(initRuntime(), (e) => isFedmetaError(e, ErrorCode.CONFIG));
    // An explicit option wins over the environment.
    assert.equal((await initRuntime({ backend: 'wasm' })).backend, 'wasm');
  } finally {
    if (saved === undefined) delete process.env['FEDMETA_BACKEND'];
    else process.env['FEDMETA_BACKEND'] = saved;
  }
});

test('asking for tensorflow without it installed gives the install instruction and leaves the runtime working', async () => {
  await initRuntime({ backend: 'wasm' });
  let installed = false;
  try {
    const info = await initRuntime({ backend: 'tensorflow' });
    installed = true;
    assert.equal(info.backend, 'tensorflow');
  } catch (e) {
    assert.ok(isFedmetaError(e, ErrorCode.BACKEND_UNAVAILABLE), String(e));
    assert.match((e as Error).message, /npm install @tensorflow\/tfjs-node/);
    assert.match((e as Error).message, /tfjs-node-gpu/);
  }
  if (!installed) {
    assert.equal(tf.getBackend(), 'wasm');
    const t = tf.add(tf.scalar(1), tf.scalar(2));
    assert.equal(t.dataSync()[0], 3);
    t.dispose();
  }
  await initRuntime({ backend: 'wasm' });
});
