import { mkdtemp, rm, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Checkpoint } from '../src/state/index.js';

export async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fedmeta-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Values that a lossy encoding would change: NaN with a payload, -0, infinities, subnormals, odd fractions. */
function trickyFloat32(n: number, salt: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 12.9898 + salt) * 43758.5453;
  const bits = new Uint32Array(a.buffer);
  if (n > 5) {
    bits[0] = 0x7fc01234; // NaN carrying a payload
    a[1] = -0;
    a[2] = Infinity;
    a[3] = -Infinity;
    bits[4] = 0x00000003; // subnormal
  }
  return a;
}

function trickyFloat64(n: number, salt: number): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.cos(i * 78.233 + salt) / 3;
  if (n > 3) {
    a[1] = -0;
    a[2] = 5e-324;
    new DataView(a.buffer).setBigUint64(0, 0x7ff8000000abcdefn, true);
  }
  return a;
}

/** A checkpoint of a 12-8-1 detector: 12*8 + 8 + 8 + 1 = 113 parameters, with Adam state. */
export function makeCheckpoint(version: number, overrides: Partial<Checkpoint> = {}): Checkpoint {
  const manifest = [
    { name: 'dense0/kernel', shape: [12, 8], dtype: 'float32' as const },
    { name: 'dense0/bias', shape: [8], dtype: 'float32' as const },
    { name: 'dense1/kernel', shape: [8, 1], dtype: 'float32' as const },
    { name: 'dense1/bias', shape: [1], dtype: 'float32' as const },
  ];
  const n = 113;
  return {
    formatVersion: 1,
    version,
    nextRound: version,
    spec: { inputDim: 12, hidden: [8], activation: 'relu', task: { kind: 'binary' } },
    manifest,
    params: trickyFloat32(n, version),
    optimizerConfig: { kind: 'adam', lr: 0.01 },
    optimizer: { kind: 'adam', step: version, buffers: { m: trickyFloat64(n, version), v: trickyFloat64(n, version + 0.5) } },
    aggregator: { kind: 'mean' },
    rngState: [version, 0xdeadbeef, 42, 7],
    schemaFingerprint: 'fp-test',
    history: [],
    released: [],
    createdAt: new Date(0).toISOString(),
    ...overrides,
  };
}

export function bytesOf(a: Float32Array | Float64Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

export function checkpointFile(dir: string, version: number): string {
  return join(dir, `checkpoint-${String(version).padStart(12, '0')}.fmck`);
}

/** Every file under `dir`, recursively, as bytes. */
export async function allFiles(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath ?? e.path, e.name);
    out.set(p, await readFile(p));
  }
  return out;
}
