// Shared fixtures for the protocol tests: one valid message of every type (and the variants that matter),
// a packer that writes anything without validation, and small helpers.
import { Packr } from 'msgpackr';
import {
  PROTOCOL_VERSION,
  createRng,
  isFedmetaError,
  type Message,
  type ModelSpec,
  type ParamManifest,
  type RoundTask,
  type UpdateMessage,
} from '@fedmeta/shared';

/** The model every sample offer and release carries, and the manifest it gives. */
export const SPEC: ModelSpec = { inputDim: 4, hidden: [3], activation: 'tanh', task: { kind: 'binary' } };
export const MANIFEST: ParamManifest = [
  { name: 'dense0/kernel', shape: [4, 3], dtype: 'float32' },
  { name: 'dense0/bias', shape: [3], dtype: 'float32' },
  { name: 'dense1/kernel', shape: [3, 1], dtype: 'float32' },
  { name: 'dense1/bias', shape: [1], dtype: 'float32' },
];
export const MANIFEST_SIZE = 19;

/** A one-layer binary model of `n` parameters (n - 1 inputs), for tests that need a vector of a given length. */
export function linearModel(n: number): { spec: ModelSpec; manifest: ParamManifest } {
  return {
    spec: { inputDim: n - 1, hidden: [], activation: 'relu', task: { kind: 'binary' } },
    manifest: [
      { name: 'dense0/kernel', shape: [n - 1, 1], dtype: 'float32' },
      { name: 'dense0/bias', shape: [1], dtype: 'float32' },
    ],
  };
}

export const TASK: RoundTask = {
  algorithm: 'fomaml',
  innerSteps: 5,
  innerLr: 0.01,
  shots: 10,
  queryShots: 32,
  episodes: 4,
  seed: 4242,
};

/** Deterministic values that include the float32 edge cases a byte-exact codec must keep. */
export function edgeVector(n: number, seed = 1): Float32Array {
  const special = [-0, 0, 1.401298464324817e-45, -1.401298464324817e-45, 3.4028234663852886e38, -3.4028234663852886e38, 1.1754943508222875e-38];
  const rand = rng(seed);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = i < special.length ? (special[i] as number) : (rand() - 0.5) * 2e-2;
  return v;
}

/** Uniform [0, 1) numbers from the project's seeded generator, for reproducible fixtures and fuzzing. */
export function rng(seed: number): () => number {
  const r = createRng(seed);
  return () => r.next();
}

export function sampleUpdate(overrides: Partial<UpdateMessage> = {}): UpdateMessage {
  return {
    type: 'update',
    round: 7,
    version: 6,
    counts: { episodes: 4, examples: 168 },
    metrics: { supportLoss: 0.69, queryLoss: 0.41 },
    update: edgeVector(MANIFEST_SIZE, 2),
    chunks: 0,
    secagg: null,
    privacy: null,
    ...overrides,
  };
}

/** One valid message of every type, plus the variants (inline/chunked, optional fields) that change the schema path. */
export function sampleMessages(): Message[] {
  return [
    {
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      site: 'branch-lyon.01',
      schemaFingerprint: 'cicflowmeter:3f2a9c0d11',
      agentVersion: '0.1.0',
      auth: { kind: 'enroll', token: 'enr_5eVQmZ2a8Kx1' },
    },
    {
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      site: 'branch_nantes',
      schemaFingerprint: 'sha256:AbC+/=',
      agentVersion: '0.1.0-dev',
      auth: { kind: 'credential', credential: 'cred_9x!~' },
    },
    sampleUpdate(),
    sampleUpdate({
      metrics: { supportLoss: 0, queryLoss: 1e-8, queryAccuracy: 1, valF1: 0.875 },
      privacy: { epsilon: 2.5, delta: 1e-5, noiseMultiplier: 1.1, clipNorm: 1, sampleRate: 0.01, steps: 1200 },
    }),
    sampleUpdate({ update: null, chunks: 3 }),
    { type: 'update-chunk', round: 7, index: 1, count: 3, values: edgeVector(7, 3) },
    {
      type: 'welcome',
      protocolVersion: PROTOCOL_VERSION,
      site: 'branch-lyon.01',
      currentVersion: 0,
      round: null,
      released: null,
      chunkValues: 19,
      maxMessageBytes: 65_612,
    },
    {
      type: 'welcome',
      protocolVersion: PROTOCOL_VERSION,
      site: 'branch-lyon.01',
      credential: 'cred_long_lived_0123456789',
      currentVersion: 6,
      round: 7,
      released: 5,
      chunkValues: 262_144,
      maxMessageBytes: 1_114_112,
    },
    {
      type: 'round-offer',
      round: 7,
      version: 6,
      task: TASK,
      spec: SPEC,
      manifest: MANIFEST,
      params: edgeVector(MANIFEST_SIZE, 4),
      chunks: 0,
      deadline: 1_767_225_600_000,
    },
    {
      type: 'round-offer',
      round: 8,
      version: 7,
      task: { ...TASK, algorithm: 'maml' },
      spec: { ...SPEC, hidden: [...SPEC.hidden], task: { ...SPEC.task } },
      manifest: MANIFEST,
      params: null,
      chunks: 2,
      deadline: 1_767_225_660_000,
    },
    { type: 'params-chunk', version: 7, index: 0, count: 2, values: edgeVector(10, 5) },
    { type: 'ack', round: 7, accepted: true },
    { type: 'ack', round: 7, accepted: true, chunk: 2 },
    { type: 'ack', round: 6, accepted: false, error: { code: 'FEDMETA_ERR_STALE_ROUND', message: 'round 6 is closed; wait for the next offer' } },
    { type: 'release', version: 5, spec: SPEC, manifest: MANIFEST, params: edgeVector(MANIFEST_SIZE, 6), chunks: 0 },
    { type: 'release', version: 5, spec: SPEC, manifest: MANIFEST, params: null, chunks: 1 },
    { type: 'error', code: 'FEDMETA_ERR_NOT_READY', message: 'the coordinator is restoring its state; retry in a few seconds' },
    ...secAggSamples(),
  ];
}

/** Bytes 0, 1, 2, ... (mod 256) of a given length: a stand-in for keys, signatures and ciphertexts. */
export function fakeBytes(n: number, from = 0): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (from + i) % 256);
}

/** The secure-aggregation parts of the protocol: a secure offer and update, and one message of every phase. */
export function secAggSamples(): Message[] {
  const head = { round: 7, attempt: 1 };
  // What a site sends also names the offer's round id.
  const from = { ...head, roundId: fakeBytes(32, 9) };
  const keys = { site: 2, cPublic: fakeBytes(32), sPublic: fakeBytes(32, 1), signature: fakeBytes(64, 2) };
  return [
    {
      type: 'round-offer',
      round: 7,
      version: 6,
      task: TASK,
      spec: SPEC,
      manifest: MANIFEST,
      params: edgeVector(MANIFEST_SIZE, 7),
      chunks: 0,
      deadline: 1_767_225_600_000,
      secagg: { attempt: 1, roundId: fakeBytes(32, 9), roster: [fakeBytes(32, 3), fakeBytes(32, 4), fakeBytes(32, 5)], site: 2, threshold: 2, degree: 0, clipNorm: 1, maxWeight: 10_000 },
    },
    sampleUpdate({ update: null, chunks: 0, secagg: { attempt: 1, roundId: fakeBytes(32, 9), advertise: keys } }),
    { type: 'secagg-shares', ...from, site: 2, shares: [{ to: 1, ciphertext: fakeBytes(102) }, { to: 3, ciphertext: fakeBytes(102, 5) }], selfMaskCommitment: fakeBytes(32) },
    // Pieces of the masked update over MANIFEST_SIZE + 1 = 20 words: two of 10.
    { type: 'secagg-masked', ...from, site: 2, index: 1, count: 2, masked: fakeBytes(40) },
    { type: 'secagg-confirm', ...from, site: 2, signature: fakeBytes(64) },
    { type: 'secagg-unmask', ...from, site: 2, selfMaskShares: [{ of: 1, value: fakeBytes(33) }], keyShares: [{ of: 3, value: fakeBytes(33, 1) }] },
    { type: 'secagg-keys', ...head, keys: [keys, { ...keys, site: 1 }] },
    { type: 'secagg-delivery', ...head, shares: [{ from: 1, ciphertext: fakeBytes(102) }] },
    { type: 'secagg-survivors', ...head, survivors: [1, 2, 3] },
    { type: 'secagg-confirmations', ...head, signatures: [{ site: 1, signature: fakeBytes(64) }, { site: 2, signature: fakeBytes(64, 1) }] },
  ];
}

/** Writes any value as msgpack with the codec's own settings, bypassing validation: the tests' hostile peer. */
export const rawPackr = new Packr({ moreTypes: true, useRecords: false, structuredClone: false });

/** A peer that uses every msgpackr extension. */
export const cloningPackr = new Packr({ moreTypes: true, useRecords: false, structuredClone: true });

export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isFedmetaError(e)) return e.code;
    return `non-fedmeta error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`;
  }
  return 'no error';
}

export function bytesOf(v: Float32Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}
