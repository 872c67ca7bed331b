import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, isFedmetaError } from '@fedmeta/shared';
import {
  checkServeConfig,
  describeOptions,
  loadCoordinatorConfig,
  redactConfig,
} from '../src/config.js';
import { engineConfigFrom } from '../src/serve.js';
import { quorumFor } from '../src/engine/config.js';
import { tempDir } from './store-helpers.js';

const configError = (pattern: RegExp) => (e: unknown) => {
  assert.ok(isFedmetaError(e, ErrorCode.CONFIG), String(e));
  assert.match(e.message, pattern);
  return true;
};

test('the defaults are secure: loopback only, no plain HTTP, no client certs assumed, no admin API', () => {
  const c = loadCoordinatorConfig({ env: {}, flags: {}, cwd: '/srv/fedmeta' });
  assert.equal(c.server.host, '127.0.0.1');
  assert.equal(c.server.port, 8443);
  assert.equal(c.server.allowInsecureHttp, false);
  assert.equal(c.server.requireClientCert, false);
  assert.equal(c.adminToken, undefined);
  assert.equal(c.dataDir, '/srv/fedmeta/fedmeta-state');
  assert.deepEqual(c.optimizer, { kind: 'adam', lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
  assert.deepEqual(c.aggregator, { kind: 'mean' });
  assert.deepEqual(c.rounds.quorum, { kind: 'fraction', value: 0.5 });
  assert.equal(c.rounds.algorithm, 'fomaml');
  assert.equal(c.keepCheckpoints, 20);
  // Serving needs a certificate unless plain HTTP is explicitly allowed.
  assert.throws(() => checkServeConfig(c), configError(/server\.tlsCert: the coordinator serves HTTPS only/));
  const demo = loadCoordinatorConfig({ env: {}, flags: { 'server.allow-insecure-http': true } });
  assert.deepEqual(
    checkServeConfig(demo).filter((w) => /admin API/.test(w)).length,
    1,
    'a missing admin token is a warning',
  );
});

test('precedence is file < environment < flags, key by key', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'coordinator.yaml');
  await writeFile(
    file,
    ['server:', '  port: 9000', '  maxConnections: 50', 'rounds:', '  innerSteps: 7', 'logLevel: debug', ''].join('\n'),
  );
  const c = loadCoordinatorConfig({
    file,
    env: { FEDMETA_COORDINATOR_SERVER_PORT: '9001', FEDMETA_COORDINATOR_ROUNDS_INNER_STEPS: '8', HOME: '/x' },
    flags: { 'server.port': 9002, _: [], $0: 'fedmeta-coordinator', config: file },
  });
  assert.equal(c.server.port, 9002, 'flag beats env and file');
  assert.equal(c.rounds.innerSteps, 8, 'env beats file');
  assert.equal(c.server.maxConnections, 50, 'file beats default');
  assert.equal(c.logLevel, 'debug');
  assert.equal(c.rounds.shots, 10, 'untouched keys keep their defaults');
  assert.equal(c.server.host, '127.0.0.1', 'a section set in the file keeps its other defaults');
});

test('JSON files, nested flags, kebab-case flags and the config file named by the environment all work', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'c.json');
  await writeFile(file, JSON.stringify({ rounds: { minSites: 3 }, model: { hidden: [32] } }));
  const c = loadCoordinatorConfig({
    env: { FEDMETA_COORDINATOR_CONFIG: file, FEDMETA_COORDINATOR_MODEL_HIDDEN: '64,16' },
    flags: { rounds: { 'deadline-seconds': 30 }, 'server.require-client-cert': 'false' },
  });
  assert.equal(c.rounds.minSites, 3);
  assert.deepEqual(c.model.hidden, [64, 16]);
  assert.equal(c.rounds.deadlineSeconds, 30);
  assert.equal(c.server.requireClientCert, false);
});

test('an unknown key is rejected with its path and where it came from', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'c.yaml');
  await writeFile(file, 'server:\n  prot: 9000\n');
  assert.throws(
    () => loadCoordinatorConfig({ file, env: {}, flags: {} }),
    configError(/server\.prot: unknown key \(from config file .*c\.yaml\)/),
  );
  assert.throws(
    () => loadCoordinatorConfig({ env: { FEDMETA_COORDINATOR_SERVER_PROT: '1' }, flags: {} }),
    configError(/unknown environment variable FEDMETA_COORDINATOR_SERVER_PROT/),
  );
  assert.throws(
    () => loadCoordinatorConfig({ env: {}, flags: { 'rounds.inner-stpes': 3 } }),
    configError(/unknown option --rounds\.innerStpes/),
  );
  assert.throws(
    () => loadCoordinatorConfig({ env: {}, flags: { aggregator: { kind: 'trimmed-mean', trim: 1, extra: 2 } } }),
    configError(/aggregator\.extra: unknown key/),
  );
});

test('a bad value names the key and its source; parse errors do not quote the file', async (t) => {
  assert.throws(
    () => loadCoordinatorConfig({ env: { FEDMETA_COORDINATOR_SERVER_PORT: 'eighty' }, flags: {} }),
    configError(/server\.port: Expected number, received string \(from environment FEDMETA_COORDINATOR_SERVER_PORT\)/),
  );
  assert.throws(
    () => loadCoordinatorConfig({ env: {}, flags: { 'server.port': 70000 } }),
    configError(/server\.port: Number must be less than or equal to 65535 \(from flag --server\.port\)/),
  );
  const dir = await tempDir(t);
  const file = join(dir, 'c.yaml');
  await writeFile(file, 'adminToken: "supersecretsupersecret\nserver: [\n');
  assert.throws(
    () => loadCoordinatorConfig({ file, env: {}, flags: {} }),
    (e) => configError(/is not valid YAML/)(e) && !(e as Error).message.includes('supersecret'),
  );
  assert.throws(
    () => loadCoordinatorConfig({ env: { FEDMETA_COORDINATOR_ADMIN_TOKEN: 'short-secret' }, flags: {} }),
    (e) => configError(/adminToken: String must contain at least 16/)(e) && !(e as Error).message.includes('short-secret'),
  );
});

test('cross-field rules: TLS pairs, mutual TLS needs a CA, robust aggregators need enough sites', () => {
  assert.throws(
    () => loadCoordinatorConfig({ env: {}, flags: { 'server.tlsCert': '/c.pem' } }),
    configError(/server\.tlsKey: tlsCert and tlsKey must be given together/),
  );
  assert.throws(
    () => loadCoordinatorConfig({ env: {}, flags: { 'server.tlsCert': '/c', 'server.tlsKey': '/k', 'server.requireClientCert': true } }),
    configError(/server\.tlsCa: requireClientCert needs tlsCa/),
  );
  assert.throws(
    () => loadCoordinatorConfig({ env: {}, flags: { aggregator: '{"kind":"trimmed-mean","trim":2}' } }),
    configError(/rounds\.minSites: trimmed-mean with trim 2 needs minSites of at least 5/),
  );
  const ok = loadCoordinatorConfig({
    env: {},
    flags: { aggregator: { kind: 'multi-krum', f: 1 }, 'rounds.minSites': 5 },
  });
  assert.deepEqual(ok.aggregator, { kind: 'multi-krum', f: 1 });
});

test('secure aggregation is refused with every aggregator that needs individual updates, and says why', () => {
  for (const aggregator of ['median', '{"kind":"trimmed-mean","trim":1}', '{"kind":"multi-krum","f":1}']) {
    assert.throws(
      () => loadCoordinatorConfig({ env: { FEDMETA_COORDINATOR_PRIVACY_SECURE_AGGREGATION_ENABLED: 'true' }, flags: { aggregator, 'rounds.minSites': 5 } }),
      configError(/aggregator: [a-z-]+ ranks or compares individual updates, which secure aggregation hides from the coordinator/),
    );
  }
  for (const aggregator of ['mean', '{"kind":"norm-clip","maxNorm":2}', '{"kind":"centered-clipping","tau":1}']) {
    const c = loadCoordinatorConfig({ env: {}, flags: { aggregator, 'privacy.secureAggregation.enabled': true } });
    assert.equal(c.privacy.secureAggregation.enabled, true);
  }
  assert.throws(
    () => loadCoordinatorConfig({ env: {}, flags: { 'privacy.secureAggregation.enabled': true, 'privacy.secureAggregation.degree': 3 } }),
    configError(/degree must be even/),
  );
  assert.throws(() => loadCoordinatorConfig({ env: {}, flags: { 'privacy.secureAggregation.threshold': 0.5 } }), configError(/threshold/));
});

test('shorthands: kind names, quorum as fraction, percentage or count, optimizer patches keep their kind', async (t) => {
  const a = loadCoordinatorConfig({
    env: { FEDMETA_COORDINATOR_OPTIMIZER: 'sgd', FEDMETA_COORDINATOR_ROUNDS_QUORUM: '75%' },
    flags: { aggregator: 'median', 'model.task': '{"kind":"multiclass","classes":5}' },
  });
  assert.deepEqual(a.optimizer, { kind: 'sgd', lr: 1 });
  assert.deepEqual(a.aggregator, { kind: 'median' });
  assert.deepEqual(a.rounds.quorum, { kind: 'fraction', value: 0.75 });
  assert.deepEqual(a.model.task, { kind: 'multiclass', classes: 5 });
  assert.deepEqual(loadCoordinatorConfig({ env: {}, flags: { 'rounds.quorum': 3 } }).rounds.quorum, { kind: 'count', value: 3 });
  assert.deepEqual(loadCoordinatorConfig({ env: {}, flags: { 'rounds.quorum': '0.6' } }).rounds.quorum, {
    kind: 'fraction',
    value: 0.6,
  });

  // The engine gets the rule itself: a fraction is applied to each round's sample, not fixed in advance.
  const engine = engineConfigFrom(a, 1);
  assert.deepEqual(engine.rounds.quorum, { kind: 'fraction', value: 0.75 });
  assert.equal(quorumFor(engine.rounds.quorum as { kind: 'fraction'; value: number }, 4), 3);
  assert.equal(quorumFor(engine.rounds.quorum as { kind: 'fraction'; value: number }, 40), 30);
  const help = describeOptions().find((o) => o.key === 'rounds.quorum')?.help ?? '';
  assert.match(help, /fraction of the sites sampled in that round/);

  const dir = await tempDir(t);
  const file = join(dir, 'c.yaml');
  await writeFile(file, 'optimizer:\n  lr: 0.001\n');
  const b = loadCoordinatorConfig({ file, env: {}, flags: {} });
  assert.deepEqual(b.optimizer, { kind: 'adam', lr: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
});

test('relative paths in a file resolve against its folder; adminTokenFile is read; secrets are redacted', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'etc'));
  await writeFile(join(dir, 'etc', 'admin.token'), 'a-long-admin-token-value\n');
  const file = join(dir, 'etc', 'c.yaml');
  await writeFile(file, ['dataDir: ../state', 'adminTokenFile: admin.token', 'schema: cicflowmeter', ''].join('\n'));
  const c = loadCoordinatorConfig({ file, env: {}, flags: { 'server.tlsCa': 'ca.pem' }, cwd: '/work/here' });
  assert.equal(c.dataDir, join(dir, 'state'));
  assert.equal(c.adminToken, 'a-long-admin-token-value');
  assert.equal(c.schema, 'cicflowmeter', 'a built-in schema name is not a path');
  assert.equal(c.server.tlsCa, '/work/here/ca.pem', 'flag paths resolve against the working directory');
  assert.equal(redactConfig(c).adminToken, '[redacted]');
  assert.ok(!JSON.stringify(redactConfig(c)).includes('a-long-admin-token-value'));
  assert.throws(
    () => loadCoordinatorConfig({ env: { FEDMETA_COORDINATOR_ADMIN_TOKEN_FILE: join(dir, 'missing') }, flags: {} }),
    configError(/adminTokenFile: cannot read/),
  );
});

test('the result is frozen all the way down', () => {
  const c = loadCoordinatorConfig({ env: {}, flags: {} });
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.server) && Object.isFrozen(c.model.hidden));
  assert.throws(() => {
    (c.server as { port: number }).port = 1;
  }, TypeError);
});

test('describeOptions lists every key once, with its environment name, flag, default and a help sentence', () => {
  const opts = describeOptions();
  assert.equal(opts[0]?.key, 'config');
  const keys = opts.map((o) => o.key);
  const envs = opts.map((o) => o.env);
  assert.equal(new Set(keys).size, keys.length);
  assert.equal(new Set(envs).size, envs.length);
  for (const o of opts) assert.ok(o.help.length > 10, `${o.key} has help`);
  const port = opts.find((o) => o.key === 'server.port');
  assert.deepEqual(
    port && { env: port.env, flag: port.flag, type: port.type, default: port.default },
    { env: 'FEDMETA_COORDINATOR_SERVER_PORT', flag: '--server.port', type: 'number', default: 8443 },
  );
  assert.equal(
    opts.find((o) => o.key === 'server.perConnectionMessagesPerSecond')?.env,
    'FEDMETA_COORDINATOR_SERVER_PER_CONNECTION_MESSAGES_PER_SECOND',
  );
  assert.deepEqual(opts.find((o) => o.key === 'logLevel')?.choices, ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
  for (const k of ['adminToken', 'dataDir', 'model.inputDim', 'schema', 'seed', 'rounds.quorum', 'aggregator', 'optimizer', 'keepCheckpoints']) {
    assert.ok(keys.includes(k), `${k} listed`);
  }
  // Every listed environment variable is accepted by the loader.
  const sample = opts.find((o) => o.key === 'rounds.maxRounds')!;
  assert.equal(loadCoordinatorConfig({ env: { [sample.env]: '12' }, flags: {} }).rounds.maxRounds, 12);
});
