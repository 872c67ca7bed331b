import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { initRuntime, tf } from '@fedmeta/shared';
import type { Tensor } from '@fedmeta/shared';
import { ColSum, Epilogue, nativeKernels } from '../src/runtime/native.js';
import type { NativeKernels } from '../src/runtime/native.js';
import { KERNELS_SOURCE_SHA256, KERNELS_WASM_BASE64 } from '../src/runtime/native-module.js';

// The compiled kernels write into the wasm backend's own memory, so each is checked against tfjs's own ops
// (matMul, add, relu, step, sub, mul, sum, transpose) on shapes that reach every tail of the 4 x 8 tiling,
// and for writing nothing outside its outputs.

const GUARD = 8;
const SENTINEL = 12345.5;

test('the embedded kernels were built from the committed kernels.c', () => {
  const source = readFileSync(new URL('../src/runtime/native/kernels.c', import.meta.url));
  const hash = createHash('sha256').update(source).digest('hex');
  assert.equal(hash, KERNELS_SOURCE_SHA256, 'kernels.c changed: run packages/shared/src/runtime/native/build.sh');
});

/** The slice of the WebAssembly API used here (the project compiles without DOM typings). */
interface ModuleApi {
  new (bytes: Uint8Array): object;
  imports(m: object): Array<{ module: string; name: string; kind: string }>;
  exports(m: object): Array<{ name: string; kind: string }>;
}
const WasmModule = (globalThis as unknown as { WebAssembly: { Module: ModuleApi } }).WebAssembly.Module;

test('the embedded module imports only a memory and has no static data or start function to run on it', () => {
  const bytes = Buffer.from(KERNELS_WASM_BASE64, 'base64');
  const mod = new WasmModule(bytes);
  assert.deepEqual(WasmModule.imports(mod), [{ module: 'env', name: 'memory', kind: 'memory' }]);
  assert.deepEqual(WasmModule.exports(mod).map((e) => e.name).sort(), ['colsum', 'gemm']);
  // Section ids after the 8-byte header: 8 is start, 11 data, 12 data count.
  const ids: number[] = [];
  for (let at = 8; at < bytes.length; ) {
    ids.push(bytes[at]!);
    let size = 0;
    let shift = 0;
    let byte: number;
    at++;
    do {
      byte = bytes[at++]!;
      size += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    at += size;
  }
  assert.ok(ids.length > 0 && !ids.some((id) => id === 8 || id === 11 || id === 12), `sections ${ids.join(',')}`);
});

async function kernels(): Promise<NativeKernels> {
  await initRuntime({ backend: 'wasm' });
  const k = nativeKernels();
  assert.ok(k, 'the kernels load on the wasm backend');
  return k;
}

/** An output area with sentinels on both sides; `at` is where the payload starts. */
function guarded(k: NativeKernels, size: number): { t: Tensor; at: number; payload: () => Float32Array; guardsIntact: () => boolean } {
  const t = tf.fill([size + 2 * GUARD], SENTINEL);
  const base = k.offset(t);
  const view = (): Float32Array => k.heap().subarray(base >>> 2, (base >>> 2) + size + 2 * GUARD);
  return {
    t,
    at: base + 4 * GUARD,
    payload: () => view().slice(GUARD, GUARD + size),
    guardsIntact: () => {
      const v = view();
      for (let i = 0; i < GUARD; i++) if (v[i] !== SENTINEL || v[GUARD + size + i] !== SENTINEL) return false;
      return true;
    },
  };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const MODES = ['store', 'bias', 'biasRelu', 'reluMask', 'sub', 'subMul'] as const;

test('gemm equals tfjs matMul with each epilogue, A·B and Aᵀ·B, across tile tails and k slices, and writes only its outputs', async () => {
  const k = await kernels();
  let seed = 1;
  let cases = 0;
  for (const M of [1, 2, 3, 4, 5, 7, 9]) {
    for (const N of [1, 3, 4, 6, 8, 11, 16, 19]) {
      // K = 300 reaches the slicing of long k (128 at a time) in the Aᵀ form.
      for (const K of M === 5 || M === 9 ? [1, 5, 32, 300] : [1, 5, 32]) {
        for (const transposedA of [false, true]) {
          const mode = MODES[cases % MODES.length]!;
          const alsoT = Math.floor(cases / MODES.length) % 2 === 1;
          cases++;
          tf.tidy(() => {
            const a = tf.randomNormal(transposedA ? [K, M] : [M, K], 0, 1, 'float32', seed++) as tf.Tensor2D;
            const b = tf.randomNormal([K, N], 0, 1, 'float32', seed++) as tf.Tensor2D;
            const bias = tf.randomNormal([N], 0, 1, 'float32', seed++);
            const aux = tf.randomNormal([M, N], 0, 1, 'float32', seed++);
            const aux2 = tf.randomNormal([M, N], 0, 1, 'float32', seed++);
            const p = tf.matMul(transposedA ? tf.transpose(a) : a, b);
            const want = {
              store: () => p,
              bias: () => tf.add(p, bias),
              biasRelu: () => tf.relu(tf.add(p, bias)),
              reluMask: () => tf.mul(p, tf.step(aux)),
              sub: () => tf.sub(aux, p),
              subMul: () => tf.sub(aux, tf.mul(aux2, p)),
            }[mode]();
            const c = guarded(k, M * N);
            const ct = guarded(k, M * N);
            const [rsa, csa] = transposedA ? [1, M] : [K, 1];
            const flags = Epilogue[mode] | (alsoT ? Epilogue.transposed : 0);
            k.gemm(k.offset(a), rsa, csa, k.offset(b), c.at, M, N, K, flags, k.offset(bias), k.offset(aux), k.offset(aux2), alsoT ? ct.at : 0);
            const what = `${mode}${alsoT ? '+T' : ''} ${transposedA ? 'AᵀB' : 'AB'} M=${M} N=${N} K=${K}`;
            assert.ok(maxAbsDiff(c.payload(), want.dataSync()) < 1e-5 * (1 + K), what);
            assert.ok(c.guardsIntact(), `${what}: wrote outside c`);
            if (alsoT) assert.ok(maxAbsDiff(ct.payload(), tf.transpose(want).dataSync()) < 1e-5 * (1 + K), `${what}: transposed`);
            assert.ok(ct.guardsIntact(), `${what}: wrote outside ct`);
          });
        }
      }
    }
  }
});

test('colsum gives column sums, and the bias step with and without step sizes, as tfjs does', async () => {
  const k = await kernels();
  let seed = 100;
  for (const n of [1, 3, 17]) {
    for (const N of [1, 5, 16, 21, 35]) {
      for (const mode of ['sum', 'sub', 'subMul'] as const) {
        tf.tidy(() => {
          const g = tf.randomNormal([n, N], 0, 1, 'float32', seed++);
          const old = tf.randomNormal([N], 0, 1, 'float32', seed++);
          const s = tf.randomNormal([N], 0, 1, 'float32', seed++);
          const sums = tf.sum(g, 0);
          const want = mode === 'sum' ? sums : mode === 'sub' ? tf.sub(old, sums) : tf.sub(old, tf.mul(s, sums));
          const out = guarded(k, N);
          k.colsum(k.offset(g), n, N, ColSum[mode], k.offset(old), k.offset(s), out.at);
          assert.ok(maxAbsDiff(out.payload(), want.dataSync()) < 1e-5 * (1 + n), `${mode} n=${n} N=${N}`);
          assert.ok(out.guardsIntact(), `${mode} n=${n} N=${N}: wrote outside out`);
        });
      }
    }
  }
});

test('the kernels are offered only while the wasm backend is active', async () => {
  await initRuntime({ backend: 'cpu' });
  assert.equal(nativeKernels(), undefined);
  await initRuntime({ backend: 'wasm' });
  assert.ok(nativeKernels());
});
