import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isFedmetaError } from '../src/errors.js';
import { identityFromCredential, openSession, SecAggClient, SecAggServer, simulateSecAggRound } from '../src/secagg/index.js';
import type {
  SecAggAdvertiseMessage,
  SecAggConfig,
  SecAggDeliveryMessage,
  SecAggKeysMessage,
  SecAggMaskedMessage,
  SecAggServerMessage,
  SecAggSiteMessage,
  SecAggSurvivorsMessage,
  SecAggUnmaskMessage,
} from '../src/secagg/index.js';
import { agree, generateX25519, identitySigningKey, openShare, sealShare, x25519PublicKey } from '../src/secagg/crypto.js';
import { signAdvertise } from '../src/secagg/payloads.js';
import { makeQuantizer, quantize } from '../src/secagg/quantize.js';
import { federation, roundConfig, updates } from './secagg-fixtures.js';
import type { Federation } from './secagg-fixtures.js';

const auth = (e: unknown): boolean => isFedmetaError(e, ErrorCode.SECAGG_AUTH);
const code = (c: ErrorCode) => (e: unknown): boolean => isFedmetaError(e, c);

/** A round driven by hand up to the end of the masked-input phase (the tests then misbehave as a server would). */
function driveToSurvivors(fed: Federation, config: SecAggConfig) {
  const n = fed.seeds.length;
  const server = new SecAggServer(config);
  const clients = Array.from({ length: n }, (_, i) => new SecAggClient(config, i + 1, fed.seeds[i] as Uint8Array));
  const inputs = updates(n, config.dim, 11);
  for (const c of clients) server.receiveAdvertise(c.advertise());
  for (const [site, k] of server.closeAdvertise()) server.receiveShares((clients[site - 1] as SecAggClient).shareKeys(k));
  for (const [site, d] of server.closeShares()) {
    server.receiveMasked((clients[site - 1] as SecAggClient).maskInput(d, (inputs[site - 1] as { vector: Float32Array }).vector));
  }
  return { server, clients, survivors: server.closeMasked() };
}

// ---------------------------------------------------------------------------------------------- what the server sees

/** Pearson correlation. */
function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i] as number;
    mb += b[i] as number;
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = (a[i] as number) - ma;
    const db = (b[i] as number) - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return sab / Math.sqrt(saa * sbb);
}

function chiSquare(counts: number[], total: number): number {
  const expected = total / counts.length;
  return counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
}

/** Upper 1e-6 quantile of chi-square with k degrees of freedom (Wilson–Hilferty, z = 4.753). */
function chiCritical(k: number): number {
  const z = 4.753;
  return k * (1 - 2 / (9 * k) + z * Math.sqrt(2 / (9 * k))) ** 3;
}

function uniformityStats(words: Uint32Array, input: Float32Array): { bytesChi: number; topChi: number; r: number } {
  const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
  const byteCounts = new Array<number>(256).fill(0);
  for (const b of bytes) byteCounts[b] = (byteCounts[b] as number) + 1;
  const top = new Array<number>(16).fill(0);
  for (const w of words) top[w >>> 28] = (top[w >>> 28] as number) + 1;
  const signed = Int32Array.from(words.subarray(0, input.length), (w) => w | 0);
  return { bytesChi: chiSquare(byteCounts, bytes.length), topChi: chiSquare(top, words.length), r: correlation(input, signed) };
}

test('a single masked update of 50,000 values looks like uniform noise and does not correlate with the input', () => {
  const fed = federation(3);
  const dim = 50_000;
  const config = roundConfig(fed, dim, 2);
  // A strongly structured input at the clip norm: a slow sine wave.
  const wave = Float32Array.from({ length: dim }, (_, i) => Math.sin(i / 40) * Math.sqrt(2 / dim));
  const inputs = [{ vector: wave, weight: 1 }, ...updates(2, dim, 12)];
  let masked: Uint8Array | null = null;
  const intercept = <M extends SecAggSiteMessage | SecAggServerMessage>(dir: string, site: number, m: M): M => {
    if (dir === 'to-server' && site === 1 && m.type === 'secagg-masked') masked = (m as SecAggMaskedMessage).masked.slice();
    return m;
  };
  simulateSecAggRound(config, { seeds: fed.seeds, inputs, intercept });
  assert.ok(masked !== null);
  const y = new Uint32Array((masked as Uint8Array).buffer);
  const masks = uniformityStats(y, wave);
  assert.ok(masks.bytesChi < chiCritical(255), `byte histogram chi-square ${masks.bytesChi.toFixed(1)} >= ${chiCritical(255).toFixed(1)}`);
  assert.ok(masks.topChi < chiCritical(15), `top-4-bit histogram chi-square ${masks.topChi.toFixed(1)} >= ${chiCritical(15).toFixed(1)}`);
  assert.ok(Math.abs(masks.r) < 5 / Math.sqrt(dim), `correlation with the input ${masks.r.toFixed(4)}`);

  // The same statistics on the unmasked encoding reject it at once: the tests have the power to see structure.
  const plain = uniformityStats(quantize(makeQuantizer(3, 1, 1), wave, 1), wave);
  assert.ok(plain.bytesChi > 10 * chiCritical(255));
  assert.ok(plain.topChi > 10 * chiCritical(15));
  assert.ok(plain.r > 0.99);
});

// ---------------------------------------------------------------------------------------------- replay and tampering

test('keys replayed from another round fail their signature, at the server and at the sites', () => {
  const fed = federation(4);
  const roundA = roundConfig(fed, 16, 3);
  const roundB = roundConfig(fed, 16, 3);
  const oldAdvert = new SecAggClient(roundA, 2, fed.seeds[1] as Uint8Array).advertise();
  assert.throws(() => new SecAggServer(roundB).receiveAdvertise(oldAdvert), auth);

  // A server that slips the old keys of site 2 into site 1's key list is caught by site 1.
  const server = new SecAggServer(roundB);
  const clients = [1, 2, 3, 4].map((i) => new SecAggClient(roundB, i, fed.seeds[i - 1] as Uint8Array));
  for (const c of clients) server.receiveAdvertise(c.advertise());
  const keys = server.closeAdvertise().get(1) as SecAggKeysMessage;
  const forged: SecAggKeysMessage = { ...keys, keys: keys.keys.map((k) => (k.site === 2 ? { ...oldAdvert } : k)) };
  assert.throws(() => (clients[0] as SecAggClient).shareKeys(forged), auth);
  assert.equal((clients[0] as SecAggClient).phase, 'aborted');
  assert.throws(() => (clients[0] as SecAggClient).shareKeys(keys), code(ErrorCode.SECAGG_ABORTED), 'an aborted client stays aborted');
});

test('keys for site 2 signed with site 3\'s identity are refused', () => {
  const fed = federation(3);
  const config = roundConfig(fed, 8, 2);
  const s = openSession(config);
  const c = generateX25519();
  const d = generateX25519();
  const bySite3: SecAggAdvertiseMessage = {
    type: 'secagg-advertise',
    site: 2,
    cPublic: c.publicKey,
    sPublic: d.publicKey,
    signature: signAdvertise(s, identitySigningKey(fed.seeds[2] as Uint8Array), 2, c.publicKey, d.publicKey),
  };
  assert.throws(() => new SecAggServer(config).receiveAdvertise(bySite3), auth);
});

test('a low-order X25519 key is refused even when properly signed', () => {
  const fed = federation(3);
  const config = roundConfig(fed, 8, 2);
  const s = openSession(config);
  const server = new SecAggServer(config);
  const c1 = new SecAggClient(config, 1, fed.seeds[0] as Uint8Array);
  const c2 = new SecAggClient(config, 2, fed.seeds[1] as Uint8Array);
  server.receiveAdvertise(c1.advertise());
  server.receiveAdvertise(c2.advertise());
  const zero = new Uint8Array(32);
  server.receiveAdvertise({
    type: 'secagg-advertise',
    site: 3,
    cPublic: zero,
    sPublic: zero,
    signature: signAdvertise(s, identitySigningKey(fed.seeds[2] as Uint8Array), 3, zero, zero),
  });
  assert.throws(() => c1.shareKeys(server.closeAdvertise().get(1) as SecAggKeysMessage), auth);
});

test("another round's encrypted shares do not open: the AEAD binds the round context and the pair of sites", () => {
  const a = generateX25519();
  const b = generateX25519();
  const ctxA = new Uint8Array(32).fill(1);
  const ctxB = new Uint8Array(32).fill(2);
  const key = agree(a.privateKey, x25519PublicKey(b.publicKey), ctxA, 'share', 2, 1);
  const sealed = sealShare(key, ctxA, 2, 1, new Uint8Array(74));
  assert.equal(openShare(key, ctxA, 2, 1, sealed).length, 74);
  assert.throws(() => openShare(key, ctxB, 2, 1, sealed), auth, 'same key, other round');
  assert.throws(() => openShare(key, ctxA, 3, 1, sealed), auth, 'other sender');
  assert.throws(() => openShare(key, ctxA, 2, 4, sealed), auth, 'other recipient');
  // The keys themselves differ per round as well, and both ends of a pair derive the same one.
  assert.notDeepEqual(agree(a.privateKey, x25519PublicKey(b.publicKey), ctxB, 'share', 2, 1), key);
  assert.deepEqual(agree(b.privateKey, x25519PublicKey(a.publicKey), ctxA, 'share', 2, 1), key);
});

test('shares replayed from another round, or moved between senders, or altered in one bit, are refused', () => {
  const fed = federation(4);
  let oldDelivery: SecAggDeliveryMessage | null = null;
  const capture = <M extends SecAggSiteMessage | SecAggServerMessage>(dir: string, site: number, m: M): M => {
    if (dir === 'to-site' && site === 1 && m.type === 'secagg-delivery') oldDelivery = m as SecAggDeliveryMessage;
    return m;
  };
  simulateSecAggRound(roundConfig(fed, 16, 3), { seeds: fed.seeds, inputs: updates(4, 16), intercept: capture });
  const old = oldDelivery as unknown as SecAggDeliveryMessage;

  const attempts: [string, (d: SecAggDeliveryMessage) => SecAggDeliveryMessage][] = [
    ['replayed from the previous round', (d) => ({ ...d, shares: d.shares.map((s) => (s.from === 2 ? (old.shares.find((o) => o.from === 2) as typeof s) : s)) })],
    ['moved from site 3 to site 2', (d) => ({ ...d, shares: d.shares.map((s) => (s.from === 2 ? { from: 2, ciphertext: (d.shares.find((o) => o.from === 3) as typeof s).ciphertext } : s)) })],
    [
      'one bit flipped',
      (d) => ({
        ...d,
        shares: d.shares.map((s) => {
          if (s.from !== 4) return s;
          const c = s.ciphertext.slice();
          c[20] = (c[20] as number) ^ 1;
          return { from: 4, ciphertext: c };
        }),
      }),
    ],
  ];
  for (const [what, alter] of attempts) {
    const intercept = <M extends SecAggSiteMessage | SecAggServerMessage>(dir: string, site: number, m: M): M =>
      dir === 'to-site' && site === 1 && m.type === 'secagg-delivery' ? (alter(m as SecAggDeliveryMessage) as M) : m;
    assert.throws(() => simulateSecAggRound(roundConfig(fed, 16, 3), { seeds: fed.seeds, inputs: updates(4, 16), intercept }), auth, what);
  }
});

test('a corrupted share sent for unmasking is caught when the secret is rebuilt, not folded into the sum', () => {
  const fed = federation(5);
  for (const kind of ['selfMaskShares', 'keyShares'] as const) {
    const intercept = <M extends SecAggSiteMessage | SecAggServerMessage>(dir: string, site: number, m: M): M => {
      if (dir !== 'to-server' || site !== 1 || m.type !== 'secagg-unmask') return m;
      const u = m as SecAggUnmaskMessage;
      const list = u[kind].map((s, i) => (i === 0 ? { of: s.of, value: Uint8Array.from(s.value, (b, j) => (j === 32 ? b ^ 1 : b)) } : s));
      return { ...u, [kind]: list } as M;
    };
    assert.throws(
      () => simulateSecAggRound(roundConfig(fed, 16, 3), { seeds: fed.seeds, inputs: updates(5, 16), drop: new Map([[5, 'mask']]), intercept }),
      (e) => auth(e) && /corrupted share/.test((e as Error).message),
      kind,
    );
  }
});

test('a server that shows one site a different survivor list cannot get its shares', () => {
  const fed = federation(6);
  const config = roundConfig(fed, 16, 4);
  const { server, clients, survivors } = driveToSurvivors(fed, config);
  // Site 1 is told site 6 dropped, hoping it reveals site 6's masking key while the others reveal its self-mask.
  const lie: SecAggSurvivorsMessage = { ...survivors, survivors: survivors.survivors.filter((v) => v !== 6) };
  const c1 = clients[0] as SecAggClient;
  const lying = c1.confirm(lie);
  assert.throws(() => server.receiveConfirm(lying), auth, 'the honest server notices');
  for (const c of clients.slice(1)) server.receiveConfirm(c.confirm(survivors));
  const confirmations = server.closeConfirm();
  assert.throws(() => c1.unmask(confirmations), auth, 'site 1 sees the others signed another list');
});

test('each site reveals exactly one secret per neighbour: self-mask shares of survivors, key shares of the dropped', () => {
  const fed = federation(10);
  const sent: SecAggUnmaskMessage[] = [];
  const intercept = <M extends SecAggSiteMessage | SecAggServerMessage>(dir: string, _site: number, m: M): M => {
    if (dir === 'to-server' && m.type === 'secagg-unmask') sent.push(m as SecAggUnmaskMessage);
    return m;
  };
  const { result } = simulateSecAggRound(roundConfig(fed, 32, 7), {
    seeds: fed.seeds,
    inputs: updates(10, 32),
    drop: new Map([[3, 'mask'], [7, 'mask']]),
    intercept,
  });
  assert.equal(sent.length, 8);
  for (const m of sent) {
    const self = m.selfMaskShares.map((s) => s.of);
    const keys = m.keyShares.map((s) => s.of);
    assert.deepEqual(self, result.contributors);
    assert.deepEqual(keys, [3, 7]);
  }
});

// ---------------------------------------------------------------------------------------------- hostile or late messages

test('duplicates, late and malformed messages are refused with their codes and change nothing', () => {
  const fed = federation(4);
  const config = roundConfig(fed, 8, 3);
  const server = new SecAggServer(config);
  const clients = [1, 2, 3, 4].map((i) => new SecAggClient(config, i, fed.seeds[i - 1] as Uint8Array));
  const adverts = clients.map((c) => c.advertise());
  for (const a of adverts.slice(0, 3)) server.receiveAdvertise(a);
  assert.throws(() => server.receiveAdvertise(adverts[0]), code(ErrorCode.DUPLICATE_UPDATE));
  assert.throws(() => server.receiveAdvertise({ ...adverts[3], cPublic: new Uint8Array(31) }), code(ErrorCode.SCHEMA));
  assert.throws(() => server.receiveAdvertise({ ...adverts[3], site: 9 }), code(ErrorCode.SCHEMA));
  assert.throws(() => server.receiveAdvertise(null), code(ErrorCode.SCHEMA));
  assert.deepEqual(server.pending(), [4]);
  const keys = server.closeAdvertise();
  assert.throws(() => server.receiveAdvertise(adverts[3]), code(ErrorCode.STALE_ROUND), 'too late');
  assert.equal(keys.has(4), false);
  const shares = [1, 2, 3].map((i) => (clients[i - 1] as SecAggClient).shareKeys(keys.get(i) as SecAggKeysMessage));
  assert.throws(() => server.receiveShares({ ...shares[0], shares: (shares[0] as { shares: unknown[] }).shares.slice(1) }), code(ErrorCode.SCHEMA));
  for (const s of shares) server.receiveShares(s);
  const deliveries = server.closeShares();
  const masked = (clients[0] as SecAggClient).maskInput(deliveries.get(1) as SecAggDeliveryMessage, new Float32Array(8));
  assert.throws(() => server.receiveMasked({ ...masked, masked: masked.masked.subarray(4) }), code(ErrorCode.SCHEMA));
  assert.throws(() => server.receiveMasked({ ...masked, site: 4 }), code(ErrorCode.STALE_ROUND), 'site 4 dropped earlier');
  server.receiveMasked(masked);
  assert.throws(() => server.receiveMasked(masked), code(ErrorCode.DUPLICATE_UPDATE));
  // The client side: phases in order only, and a bad update is refused without aborting the client.
  const c2 = clients[1] as SecAggClient;
  assert.throws(() => c2.advertise(), code(ErrorCode.PRECONDITION));
  assert.throws(() => c2.maskInput(deliveries.get(2) as SecAggDeliveryMessage, new Float32Array(7)), code(ErrorCode.WRONG_LENGTH));
  assert.throws(() => c2.maskInput(deliveries.get(2) as SecAggDeliveryMessage, new Float32Array(8).fill(Number.NaN)), code(ErrorCode.NON_FINITE));
  assert.equal(c2.phase, 'mask');
  server.receiveMasked(c2.maskInput(deliveries.get(2) as SecAggDeliveryMessage, new Float32Array(8)));
});

test('the identity key derives from the credential, and a site cannot join under another identity', () => {
  const a = identityFromCredential('fmC_example-credential-one');
  assert.deepEqual(identityFromCredential('fmC_example-credential-one').publicKey, a.publicKey);
  assert.notDeepEqual(identityFromCredential('fmC_example-credential-two').publicKey, a.publicKey);
  const fed = federation(3);
  const config = roundConfig(fed, 8, 2);
  assert.throws(() => new SecAggClient(config, 1, a.privateKey), code(ErrorCode.CONFIG));
  assert.throws(() => new SecAggClient(config, 4, fed.seeds[0] as Uint8Array), code(ErrorCode.CONFIG));
});
