// Secure aggregation over real sockets: a coordinator and three real SiteAgents in this process, on loopback
// (port 0), with chunked transfers both ways. One agent reaches the coordinator through a proxy that records every
// byte it sends. A securely aggregated round commits, the agent's update never appears on the wire (only a masked
// vector that looks nothing like it), and the new parameters match those of the same federation in the clear.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtinSchema, decodeMessage, initRuntime, makeQuantizer, schemaFingerprint } from '@fedmeta/shared';
import type { Message, SecAggMaskedWire, UpdateMessage } from '@fedmeta/shared';
import { addSite, loadCoordinatorConfig, startCoordinator } from '@fedmeta/coordinator';
import type { RoundRecord } from '@fedmeta/coordinator';
import { SiteAgent, loadAgentConfig, loadSiteData } from '@fedmeta/site-agent';
import type { ComputedUpdate, SiteData } from '@fedmeta/site-agent';
import { createLogger } from '@fedmeta/shared';
import { writeSiteFiles } from './helpers/federation.js';
import { RecordingProxy } from './helpers/ws-recorder.js';

const FAMILIES = {
  'office-a': ['DoS Hulk', 'Portscan', 'SSH-Patator'],
  'office-b': ['DDoS', 'FTP-Patator', 'DoS GoldenEye'],
  'office-c': ['DoS Slowloris', 'Infiltration - Portscan', 'DoS Slowhttptest'],
};
const SITES = Object.keys(FAMILIES);
const CHUNK_VALUES = 100;
const CLIP = 100;
const MAX_WEIGHT = 1000;
const schema = builtinSchema('cicflowmeter');
const fingerprint = schemaFingerprint(schema);
const silent = createLogger('secagg-test', { level: 'silent' });
const data = new Map<string, SiteData>();

before(async () => {
  await initRuntime();
  const dir = mkdtempSync(join(tmpdir(), 'fedmeta-secagg-data-'));
  try {
    for (const s of writeSiteFiles(dir, FAMILIES, 30)) data.set(s.name, await loadSiteData({ files: [s.file], schema, seed: 1 }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

interface Run {
  record: RoundRecord;
  before: Float32Array;
  after: Float32Array;
  proxy: RecordingProxy;
  /** What office-a computed (its real update), captured in the agent. */
  computed: ComputedUpdate;
}

/** One round of a fresh federation; office-a goes through the recording proxy. */
async function oneRound(t: { after: (fn: () => Promise<void> | void) => void }, secure: boolean): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'fedmeta-secagg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = loadCoordinatorConfig({
    env: {},
    flags: {
      'server.host': '127.0.0.1',
      'server.port': 0,
      'server.allowInsecureHttp': true,
      dataDir: join(dir, 'state'),
      schema: 'cicflowmeter',
      seed: 11,
      model: { hidden: [8], activation: 'tanh', task: 'binary' },
      rounds: { algorithm: 'fomaml', innerSteps: 2, innerLr: 0.05, shots: 4, queryShots: 6, episodes: 2, sampleFraction: 1, minSites: 3, quorum: 3, deadlineSeconds: 30, continuous: false },
      aggregator: 'mean',
      optimizer: { kind: 'sgd', lr: 1 },
      privacy: {
        secureAggregation: { enabled: secure, threshold: 0.6, degree: 0, clipNorm: CLIP, maxWeight: MAX_WEIGHT, phaseSeconds: 10 },
        dp: { mode: 'off', clipNorm: 1, noiseMultiplier: 1, delta: 1e-5, epsilonBudget: 10 },
      },
      logLevel: 'silent',
    },
  });
  const c = await startCoordinator(config, { logger: silent, chunkValues: CHUNK_VALUES });
  t.after(() => c.close());
  const proxy = new RecordingProxy({ host: '127.0.0.1', port: c.port });
  const proxyPort = await proxy.start();
  t.after(() => proxy.close());
  let computed: ComputedUpdate | undefined;
  for (const [i, site] of SITES.entries()) {
    const { token } = await addSite(c.store, site);
    const agentConfig = loadAgentConfig({
      env: {},
      flags: {
        site,
        coordinatorUrl: `http://127.0.0.1:${site === 'office-a' ? proxyPort : c.port}`,
        allowInsecureHttp: true,
        enrollmentToken: token,
        stateDir: join(dir, site),
        reconnect: { initialDelayMs: 50, maxDelayMs: 400 },
        ackTimeoutMs: 10_000,
      },
    });
    const agent = new SiteAgent({
      config: agentConfig,
      schema,
      schemaFingerprint: fingerprint,
      data: data.get(site) as SiteData,
      siteSeed: 100 + i,
      logger: silent,
      ...(site === 'office-a' ? { onComputed: (u: ComputedUpdate) => (computed = u) } : {}),
    });
    t.after(() => agent.stop());
    await agent.start();
  }
  const deadline = Date.now() + 20_000;
  while (c.hub.online().length < SITES.length) {
    if (Date.now() > deadline) throw new Error('the agents did not come online');
    await new Promise((r) => setTimeout(r, 20));
  }
  const before = c.engine.params();
  const record = await c.engine.runRound();
  return { record, before, after: c.engine.params(), proxy, computed: computed as ComputedUpdate };
}

/** Every protocol message office-a sent, decoded from the recorded frames. */
function sentMessages(proxy: RecordingProxy): Message[] {
  return proxy.dataFrames().filter((f) => f.opcode === 2).map((f) => decodeMessage(f.payload, { maxBytes: 1 << 20 }));
}

/** How many of the update's float32 values appear, as their four bytes, anywhere in what the site sent. */
function valuesOnTheWire(bytes: Buffer, update: Float32Array): number {
  let found = 0;
  const seen = new Set<number>();
  const view = new DataView(update.buffer, update.byteOffset, update.byteLength);
  for (let i = 0; i < update.length; i++) {
    const bits = view.getUint32(4 * i, true);
    // Small or repeated values (0, ±1 ...) could appear by chance in any message: look for distinctive ones.
    if (Math.abs(update[i] as number) < 1e-6 || seen.has(bits)) continue;
    seen.add(bits);
    const pattern = Buffer.alloc(4);
    pattern.writeUInt32LE(bits);
    if (bytes.indexOf(pattern) !== -1) found++;
  }
  return found;
}

test('a securely aggregated round over sockets: committed, no plaintext update on the wire, the same step as in the clear', { timeout: 120_000 }, async (t) => {
  const plain = await oneRound(t, false);
  const secure = await oneRound(t, true);

  assert.equal(secure.record.status, 'committed');
  assert.equal(secure.record.accepted, 3);
  assert.equal(secure.record.secureAggregation?.contributors, 3);
  assert.deepEqual(secure.record.rejected, {});
  assert.equal(plain.record.status, 'committed');

  // The same federation and seeds: the secure step equals the plaintext one within the quantization error.
  let moved = 0;
  let diff = 0;
  for (let i = 0; i < secure.after.length; i++) {
    moved = Math.max(moved, Math.abs((plain.after[i] as number) - (plain.before[i] as number)));
    diff = Math.max(diff, Math.abs((secure.after[i] as number) - (plain.after[i] as number)));
  }
  assert.deepEqual(secure.before, plain.before);
  assert.ok(moved > 1e-3, `the round moved the parameters (${moved})`);
  assert.ok(diff < 1e-4, `secure and plaintext steps differ by ${diff}`);

  // The plaintext federation does show office-a's update on the wire: the search finds what it looks for.
  const dim = secure.after.length;
  assert.ok(valuesOnTheWire(plain.proxy.plainBytes(), plain.computed.update) > dim / 2, 'the plaintext update is found in the clear');

  // The secure one: an update message without a vector, then masked pieces, and none of the update's values.
  const sent = sentMessages(secure.proxy);
  const updates = sent.filter((m): m is UpdateMessage => m.type === 'update');
  assert.equal(updates.length, 1);
  assert.equal(updates[0]?.update, null);
  assert.equal(updates[0]?.chunks, 0);
  assert.ok(updates[0]?.secagg !== null, 'the update message carries the signed keys');
  assert.equal(sent.filter((m) => m.type === 'update-chunk').length, 0, 'no update chunk was sent');
  assert.deepEqual(
    [...new Set(sent.map((m) => m.type))].sort(),
    ['secagg-confirm', 'secagg-masked', 'secagg-shares', 'secagg-unmask', 'update'],
  );
  assert.equal(valuesOnTheWire(secure.proxy.plainBytes(), secure.computed.update), 0, 'a value of the update in what office-a sent');

  // The masked vector, read back as the quantizer would, is nothing like the weighted update.
  const pieces = sent.filter((m): m is SecAggMaskedWire => m.type === 'secagg-masked').sort((a, b) => a.index - b.index);
  assert.ok(pieces.length > 1, 'the masked update went in pieces');
  const masked = Buffer.concat(pieces.map((p) => p.masked));
  assert.equal(masked.length, 4 * (dim + 1));
  const q = makeQuantizer(3, CLIP, MAX_WEIGHT);
  const w = Math.min(secure.computed.counts.examples, MAX_WEIGHT);
  let err = 0;
  let norm = 0;
  let dot = 0;
  let mm = 0;
  for (let i = 0; i < dim; i++) {
    const y = masked.readInt32LE(4 * i) / q.scale;
    const x = w * (secure.computed.update[i] as number);
    err += (y - x) ** 2;
    norm += x * x;
    dot += x * y;
    mm += y * y;
  }
  assert.ok(Math.sqrt(err / norm) > 100, `the masked vector is far from the update (relative error ${Math.sqrt(err / norm)})`);
  assert.ok(Math.abs(dot / Math.sqrt(norm * mm)) < 0.2, `and uncorrelated with it (${dot / Math.sqrt(norm * mm)})`);
});
