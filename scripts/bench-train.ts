// Training, inference and meta-learning throughput of the detector MLP (78 -> 256 -> 128 -> 2, softmax) on
// one backend, next to the ceiling that matters for a training step: the time of the step's own matMuls
// alone, measured in the same run. Prints a table with the commit and the machine; `--json` prints one JSON
// object on the last line.
// Usage: npm run bench:train -- [--backend=wasm|cpu|tensorflow] [--clock=cpu|wall] [--json] [--quick]
//
// The ceiling per layer is the forward product, the input-gradient product (not for the first layer: no step
// needs the gradient of the input) and the weight-gradient product, operands already transposed and fixed,
// nothing else. Fixed operands let the wasm backend pack each right operand once and never again, which no
// real step can do (its weights and gradients are new every step), so the ceiling is strict.
//
// On wasm the step runs on the project's compiled kernels (its own GEMM, which reads operands in place);
// the same products on those kernels alone, fixed operands, are reported too, as the step's own floor:
// the gap between it and the step is the step's overhead, the gap between the two ceilings is the GEMM's.
//
// Each figure is the best of several rounds, and training and its ceiling alternate round by round, so a
// busy neighbour slows both alike. The clock is this process's CPU time by default (wasm and cpu run on one
// thread, so on an idle machine it equals wall time, and on a shared one it leaves out the time the thread
// waited for a core); the tensorflow backend runs several threads, so it defaults to wall time.
import { execSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import {
  Detector,
  MlpTrainer,
  initParams,
  initRuntime,
  layerWidths,
  metaGradientMean,
  tf,
  uploadBatch,
} from '../packages/shared/src/index.js';
import type { BackendName, Batch, Episode, MetaAlgorithm, ModelSpec } from '../packages/shared/src/index.js';
import { Epilogue, nativeKernels } from '../packages/shared/src/runtime/native.js';

function arg(name: string): string | undefined {
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (eq !== undefined) return eq.slice(name.length + 3);
  const i = process.argv.indexOf(`--${name}`);
  const next = i >= 0 ? process.argv[i + 1] : undefined;
  return next !== undefined && !next.startsWith('--') ? next : undefined;
}

const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
const backendArg = arg('backend') as BackendName | undefined;
const ROUNDS = quick ? 3 : 7;
const ROUND_MS = quick ? 120 : 300;
let clock: 'cpu' | 'wall' = 'cpu';

/** Milliseconds on the chosen clock. */
function now(): number {
  if (clock === 'wall') return performance.now();
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
}

const spec: ModelSpec = { inputDim: 78, hidden: [256, 128], activation: 'relu', task: { kind: 'multiclass', classes: 2 } };
const widths = layerWidths(spec);

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

function makeBatch(n: number, seed: number): Batch {
  const r = rng(seed);
  const x = new Float32Array(n * spec.inputDim).map(() => 2 * r() - 1);
  const y = new Int32Array(n).map(() => (r() < 0.5 ? 0 : 1));
  return { x, y, n, dim: spec.inputDim };
}

interface Measure {
  /** One call; i counts calls within a round. */
  fn: (i: number) => void;
  /** Calls per round (default: as many as fit in about ROUND_MS). */
  perRound?: number;
  /** Untimed, before each round. */
  setup?: () => void;
  best: number;
}

/**
 * Milliseconds per call of each measure: rounds of about ROUND_MS, the measures taking turns round by
 * round, best round kept per measure.
 */
function bestSeconds(...measures: Measure[]): number[] {
  for (const m of measures) {
    m.setup?.();
    m.fn(0); // warm-up: JIT, kernel set-up, operator caches
    if (m.perRound === undefined) {
      const t0 = now();
      let k = 0;
      while (now() - t0 < ROUND_MS / 4) m.fn(++k);
      m.perRound = Math.max(3, Math.round((k * ROUND_MS) / Math.max(1, 4 * (now() - t0))));
    }
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (const m of measures) {
      m.setup?.();
      const t0 = now();
      for (let i = 0; i < m.perRound!; i++) m.fn(i);
      m.best = Math.min(m.best, (now() - t0) / m.perRound!);
    }
  }
  return measures.map((m) => m.best / 1000);
}

const measure = (fn: (i: number) => void, extra: Partial<Measure> = {}): Measure => ({ fn, best: Infinity, ...extra });

/** The step's own products for batch b: [a shape, b shape, is it a weight gradient]. */
function stepProducts(b: number): Array<[[number, number], [number, number], boolean]> {
  const out: Array<[[number, number], [number, number], boolean]> = [];
  for (let l = 0; l + 1 < widths.length; l++) {
    const i = widths[l]!;
    const o = widths[l + 1]!;
    out.push([[b, i], [i, o], false]); // forward
    if (l > 0) out.push([[b, o], [o, i], false]); // input gradient
    out.push([[i, b], [b, o], true]); // weight gradient
  }
  return out;
}

/** The step's own products with fixed operands (caller disposes the returned tensors). */
function ceilingMeasure(b: number): { m: Measure; tensors: tf.Tensor[] } {
  const products = stepProducts(b);
  const left = products.map(([a]) => tf.randomNormal(a));
  const right = products.map(([, r]) => tf.randomNormal(r));
  const m = measure(() => {
    for (let k = 0; k < left.length; k++) tf.matMul(left[k]!, right[k]!).dispose();
  });
  return { m, tensors: [...left, ...right] };
}

/**
 * The same products on the project's kernels, fixed operands, laid out as the step lays them out (the
 * weight gradient reads the layer input [b, i] as Aᵀ); undefined where the kernels are not in use.
 */
function nativeCeilingMeasure(b: number): { m: Measure; tensors: tf.Tensor[] } | undefined {
  const k = nativeKernels();
  if (k === undefined) return undefined;
  const calls: Array<() => void> = [];
  const tensors: tf.Tensor[] = [];
  for (const [[m, kk], [, n], weightGrad] of stepProducts(b)) {
    const a = tf.randomNormal(weightGrad ? [kk, m] : [m, kk]);
    const r = tf.randomNormal([kk, n]);
    const c = tf.zeros([m, n]);
    tensors.push(a, r, c);
    const [rsa, csa] = weightGrad ? [1, m] : [kk, 1];
    calls.push(() => k.gemm(k.offset(a), rsa, csa, k.offset(r), k.offset(c), m, n, kk, Epilogue.store, 0, 0, 0, 0));
  }
  return { m: measure(() => calls.forEach((f) => f())), tensors };
}

/** One SGD step per call on a freshly uploaded minibatch, as localTrain does. */
function trainMeasure(b: number): { m: Measure; dispose: () => void } {
  const params = initParams(spec, 1).values;
  const batches = Array.from({ length: 8 }, (_, i) => makeBatch(b, 100 + i));
  const trainer = new MlpTrainer(spec, params);
  const m = measure((i) => {
    const up = uploadBatch(spec, batches[i % batches.length]!);
    trainer.step(up, 0.01);
    up.dispose();
  });
  return { m, dispose: () => trainer.dispose() };
}

/** Training at batch b, its ceiling and (on wasm) the kernels' own products, alternating rounds. */
function trainAndCeiling(b: number): [number, number, number | undefined] {
  const train = trainMeasure(b);
  const ceiling = ceilingMeasure(b);
  const own = nativeCeilingMeasure(b);
  const [t, c, o] = bestSeconds(train.m, ceiling.m, ...(own ? [own.m] : []));
  train.dispose();
  tf.dispose(ceiling.tensors);
  if (own) tf.dispose(own.tensors);
  return [t!, c!, o];
}

function inferSeconds(n: number): number {
  const detector = new Detector(spec, initParams(spec, 2).values);
  const x = makeBatch(n, 7).x;
  const [t] = bestSeconds(measure(() => detector.predict(x, n)));
  detector.dispose();
  return t!;
}

function episodeSeconds(algorithm: MetaAlgorithm): number {
  const params = initParams(spec, 3).values;
  const episodes: Episode[] = Array.from({ length: 8 }, (_, i) => ({
    support: makeBatch(20, 200 + i), // 10 shots per class
    query: makeBatch(64, 300 + i),
  }));
  const inner = { steps: 5, lr: 0.05 };
  const [t] = bestSeconds(measure(() => metaGradientMean(algorithm, spec, params, episodes, inner), { perRound: algorithm === 'maml' ? 1 : 2 }));
  return t! / episodes.length;
}

function gitCommit(): string {
  try {
    return execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
}

let info: Awaited<ReturnType<typeof initRuntime>>;
try {
  info = await initRuntime(backendArg ? { backend: backendArg } : {});
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}
const clockArg = arg('clock');
clock = clockArg === 'cpu' || clockArg === 'wall' ? clockArg : info.backend === 'tensorflow' ? 'wall' : 'cpu';
const cpu = cpus();
const machine = `${cpu[0]?.model ?? 'unknown cpu'} x ${cpu.length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`;
const commit = gitCommit();

const before = tf.memory().numTensors;
const [trainB512, ceilB512, ownB512] = trainAndCeiling(512);
const [trainB64, ceilB64, ownB64] = trainAndCeiling(64);
const infer = inferSeconds(4096);
const fomaml = episodeSeconds('fomaml');
const maml = episodeSeconds('maml');
const reptile = episodeSeconds('reptile');
const leaked = tf.memory().numTensors - before;

const round = (v: number, d = 0): number => Number(v.toFixed(d));
const result = {
  commit,
  machine,
  node: process.version,
  backend: info.backend,
  model: widths,
  train_samples_per_s: round(512 / trainB512),
  train_b64_samples_per_s: round(64 / trainB64),
  infer_flows_per_s: round(4096 / infer),
  fomaml_episodes_per_s: round(1 / fomaml, 1),
  maml_episodes_per_s: round(1 / maml, 1),
  reptile_episodes_per_s: round(1 / reptile, 1),
  ceiling_b512_samples_per_s: round(512 / ceilB512),
  ceiling_b64_samples_per_s: round(64 / ceilB64),
  train_b512_of_ceiling: round(ceilB512 / trainB512, 3),
  train_b64_of_ceiling: round(ceilB64 / trainB64, 3),
  ...(ownB512 !== undefined && ownB64 !== undefined
    ? {
        kernels_ceiling_b512_samples_per_s: round(512 / ownB512),
        kernels_ceiling_b64_samples_per_s: round(64 / ownB64),
        train_b512_of_kernels_ceiling: round(ownB512 / trainB512, 3),
        train_b64_of_kernels_ceiling: round(ownB64 / trainB64, 3),
      }
    : {}),
  clock,
  leaked_tensors: leaked,
};

const rows: Array<[string, string, string]> = [
  ['train, batch 512 (samples/s)', String(result.train_samples_per_s), `${(100 * result.train_b512_of_ceiling).toFixed(0)}% of the ceiling`],
  ['train, batch 64 (samples/s)', String(result.train_b64_samples_per_s), `${(100 * result.train_b64_of_ceiling).toFixed(0)}% of the ceiling`],
  ['ceiling, batch 512 (samples/s)', String(result.ceiling_b512_samples_per_s), "the step's matMuls alone"],
  ['ceiling, batch 64 (samples/s)', String(result.ceiling_b64_samples_per_s), "the step's matMuls alone"],
  ...(result.kernels_ceiling_b512_samples_per_s !== undefined
    ? ([
        ['same products, own kernels, b512', String(result.kernels_ceiling_b512_samples_per_s), `the step reaches ${(100 * result.train_b512_of_kernels_ceiling!).toFixed(0)}% of it`],
        ['same products, own kernels, b64', String(result.kernels_ceiling_b64_samples_per_s), `the step reaches ${(100 * result.train_b64_of_kernels_ceiling!).toFixed(0)}% of it`],
      ] as Array<[string, string, string]>)
    : []),
  ['inference, batch 4096 (flows/s)', String(result.infer_flows_per_s), ''],
  ['FOMAML (episodes/s)', String(result.fomaml_episodes_per_s), '20-row support (10 shots x 2), 64-row query, 5 inner steps'],
  ['MAML, second order (episodes/s)', String(result.maml_episodes_per_s), 'same episodes'],
  ['Reptile (episodes/s)', String(result.reptile_episodes_per_s), 'same episodes'],
];
console.log(`fedmeta bench-train  commit ${commit}  node ${process.version}`);
console.log(`machine: ${machine}`);
console.log(`backend: ${info.backend}${info.fellBack ? ' (wasm failed to start; cpu fallback)' : ''}  model: ${widths.join('-')} ${spec.activation}, softmax, SGD  clock: ${clock === 'cpu' ? 'process CPU time' : 'wall time'}\n`);
for (const [name, value, note] of rows) console.log(`${name.padEnd(34)}${value.padStart(10)}   ${note}`);
if (leaked !== 0) console.log(`\nwarning: ${leaked} tensors leaked during the benchmark`);
if (json) console.log(JSON.stringify(result));
