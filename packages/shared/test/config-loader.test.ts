import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ErrorCode, defineConfig, isFedmetaError } from '../src/index.js';

// A small configuration with one leaf of every kind the loader handles: scalars, an enum, lists of numbers and
// of paths, a nested section, a name-or-path key, a secret and a `kind`-tagged union with a bare-word shorthand.
const shapeSchema = z.preprocess(
  (v) => (typeof v === 'string' ? { kind: v } : v),
  z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('circle'), r: z.number().positive().default(1) }).strict(),
    z.object({ kind: z.literal('square'), side: z.number().positive() }).strict(),
  ]),
);

const schema = z
  .object({
    server: z
      .object({
        host: z.string().min(1).describe('Address to listen on.'),
        port: z.number().int().min(0).max(65535).describe('TCP port to listen on.'),
        tls: z.object({ cert: z.string().min(1).optional().describe('PEM certificate file.') }).strict(),
      })
      .strict(),
    verbose: z.boolean().describe('Log every request.'),
    level: z.enum(['low', 'high']).describe('How hard to try.'),
    widths: z.array(z.number().int().positive()).describe('Layer widths, e.g. 64,32.'),
    files: z.array(z.string().min(1)).describe('Input files to read.'),
    dataDir: z.string().min(1).describe('Folder for state files.'),
    schema: z.string().min(1).describe('A built-in schema name or a schema file.'),
    token: z.string().min(16).optional().describe('Secret access token.'),
    shape: shapeSchema.describe('A shape as JSON, or just its kind.'),
  })
  .strict();

const DEFAULTS = {
  server: { host: '127.0.0.1', port: 8000, tls: {} },
  verbose: false,
  level: 'low',
  widths: [8],
  files: [],
  dataDir: 'state',
  schema: 'builtin',
  shape: { kind: 'circle', r: 1 },
} as const;

const define = (sourceDetail: 'exact' | 'layer' = 'exact') =>
  defineConfig({
    name: 'test',
    schema,
    defaults: DEFAULTS,
    envPrefix: 'FM_TEST_',
    pathKeys: ['server.tls.cert', 'files', 'dataDir', 'schema'],
    nameOrPathKeys: ['schema'],
    secretKeys: ['token', 'server.tls.cert'],
    sourceDetail,
  });
const cfg = define();

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'fedmeta-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeText(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

const configError = (pattern: RegExp, secret?: string) => (e: unknown) => {
  assert.ok(isFedmetaError(e, ErrorCode.CONFIG), String(e));
  assert.match(e.message, pattern);
  if (secret !== undefined) assert.ok(!e.message.includes(secret), `the message quotes ${secret}: ${e.message}`);
  return true;
};

test('layers stack defaults < file < environment < flags, key by key within sections', (t) => {
  const dir = tempDir(t);
  const file = writeText(dir, 'c.yaml', ['server:', '  port: 9000', '  host: 0.0.0.0', 'level: high', 'verbose: true', ''].join('\n'));
  const c = cfg.load({ file, env: { FM_TEST_SERVER_PORT: '9001', FM_TEST_VERBOSE: 'false', OTHER_VAR: 'x' }, flags: { 'server.port': 9002 } });
  assert.equal(c.server.port, 9002, 'a flag beats the environment and the file');
  assert.equal(c.verbose, false, 'the environment beats the file');
  assert.equal(c.server.host, '0.0.0.0', 'the file beats the defaults');
  assert.equal(c.level, 'high');
  assert.deepEqual(c.widths, [8], 'untouched keys keep their defaults');

  // The file may also be named by <prefix>CONFIG, and may be JSON; an empty file sets nothing.
  const json = writeText(dir, 'c.json', JSON.stringify({ server: { port: 7000 } }));
  assert.equal(cfg.load({ env: { FM_TEST_CONFIG: json } }).server.port, 7000);
  assert.equal(cfg.load({ file: writeText(dir, 'empty.yaml', ''), env: {} }).server.port, 8000);
});

test('text from the environment and flags is coerced to each leaf type', () => {
  const c = cfg.load({
    env: { FM_TEST_SERVER_PORT: ' 81 ', FM_TEST_VERBOSE: 'yes', FM_TEST_WIDTHS: '64, 32', FM_TEST_FILES: 'a.csv,b.csv' },
    flags: { level: 'high', shape: '{"kind":"square","side":2}' },
    cwd: '/base',
  });
  assert.equal(c.server.port, 81);
  assert.equal(c.verbose, true);
  assert.deepEqual(c.widths, [64, 32], 'list items take the list item type');
  assert.deepEqual(c.files, ['/base/a.csv', '/base/b.csv']);
  assert.equal(c.level, 'high');
  assert.deepEqual(c.shape, { kind: 'square', side: 2 });

  for (const [raw, want] of [['on', true], ['1', true], ['OFF', false], ['no', false]] as const) {
    assert.equal(cfg.load({ env: { FM_TEST_VERBOSE: raw } }).verbose, want, raw);
  }
  assert.deepEqual(cfg.load({ env: { FM_TEST_WIDTHS: '[16,4]' } }).widths, [16, 4], 'a list may be a JSON array');
  assert.deepEqual(cfg.load({ env: {}, flags: { widths: ['5', 6] } }).widths, [5, 6], 'list flags are coerced item by item');
  assert.deepEqual(cfg.load({ env: {}, flags: { files: [2024] }, cwd: '/base' }).files, ['/base/2024'], 'a numeric file name stays a name');
  assert.deepEqual(cfg.load({ env: { FM_TEST_SHAPE: 'circle' } }).shape, { kind: 'circle', r: 1 }, 'a bare word is left to the schema shorthand');

  assert.throws(() => cfg.load({ env: { FM_TEST_SERVER_PORT: 'eighty' } }), configError(/server\.port: Expected number, received string/));
  assert.throws(() => cfg.load({ env: { FM_TEST_VERBOSE: 'maybe' } }), configError(/verbose: Expected boolean/));
  assert.throws(() => cfg.load({ env: { FM_TEST_WIDTHS: '64,x' } }), configError(/widths\.1: Expected number/));
  assert.throws(() => cfg.load({ env: {}, flags: { shape: '{"kind":' } }), configError(/shape \(from flag --shape\) is not valid JSON/));
});

test('an object leaf given again with the same kind (or none) is patched; another kind replaces it', (t) => {
  const dir = tempDir(t);
  const file = writeText(dir, 'c.yaml', 'shape:\n  r: 3\n');
  assert.deepEqual(cfg.load({ file, env: {} }).shape, { kind: 'circle', r: 3 });
  assert.deepEqual(cfg.load({ file, env: {}, flags: { shape: { kind: 'square', side: 1 } } }).shape, { kind: 'square', side: 1 });
  assert.throws(() => cfg.load({ env: {}, flags: { shape: { kind: 'square' } } }), configError(/shape\.side: is required/));
});

test('relative paths resolve against the config file folder, or the cwd for the environment and flags', (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'etc'));
  const file = writeText(dir, 'etc/c.yaml', ['dataDir: ../state', 'files: [in/a.csv, /abs/b.csv]', 'schema: my-schema.yaml', 'server:', '  tls:', '    cert: cert.pem', ''].join('\n'));
  const c = cfg.load({ file, env: {}, cwd: '/work/here' });
  assert.equal(c.dataDir, join(dir, 'state'));
  assert.deepEqual(c.files, [join(dir, 'etc/in/a.csv'), '/abs/b.csv']);
  assert.equal(c.schema, join(dir, 'etc/my-schema.yaml'), 'a name-or-path value that looks like a path is resolved');
  assert.equal(c.server.tls.cert, join(dir, 'etc/cert.pem'));

  const d = cfg.load({ env: { FM_TEST_DATA_DIR: 'st' }, flags: { 'server.tls.cert': 'c.pem', schema: 'other-builtin' }, cwd: '/work/here' });
  assert.equal(d.dataDir, '/work/here/st');
  assert.equal(d.server.tls.cert, '/work/here/c.pem');
  assert.equal(d.schema, 'other-builtin', 'a built-in name is not a path');
  assert.equal(cfg.load({ env: {}, cwd: '/srv' }).dataDir, '/srv/state', 'a relative default resolves against the cwd');
});

test('errors name the key and where its value came from', (t) => {
  const dir = tempDir(t);
  const file = writeText(dir, 'c.yaml', 'server:\n  prot: 9000\n');
  assert.throws(() => cfg.load({ file, env: {} }), configError(/^.*invalid test configuration: server\.prot: unknown key \(from config file .*c\.yaml\)/));
  assert.throws(() => cfg.load({ env: { FM_TEST_SERVER_PORT: '70000' } }), configError(/server\.port: .*65535 \(from environment FM_TEST_SERVER_PORT\)/));
  assert.throws(() => cfg.load({ env: {}, flags: { server: { port: -1 } } }), configError(/server\.port: .* \(from flag --server\.port\)/));
  assert.throws(
    () => define('layer').load({ env: { FM_TEST_SERVER_PORT: '70000' } }),
    configError(/server\.port: .*\(from the environment\)/),
  );
  assert.throws(() => define('layer').load({ env: {}, flags: { 'server.port': -1 } }), configError(/server\.port: .*\(from a flag\)/));
  assert.throws(() => cfg.load({ env: { FM_TEST_SERVER_PROT: '1' } }), configError(/unknown environment variable FM_TEST_SERVER_PROT; --help lists the FM_TEST_ variables/));
  assert.throws(() => cfg.load({ env: {}, flags: { 'server.pot-number': 1 } }), configError(/unknown option --server\.potNumber/));
  assert.throws(() => cfg.load({ env: {}, flags: { shape: { kind: 'circle', extra: 1 } } }), configError(/shape\.extra: unknown key \(from flag --shape\)/));
  assert.throws(
    () => cfg.load({ file: writeText(dir, 'list.yaml', '- a\n- b\n'), env: {} }),
    configError(/must hold a mapping of options at its top level/),
  );
  assert.throws(() => cfg.load({ file: join(dir, 'missing.yaml'), env: {} }), configError(/cannot read the config file .*missing\.yaml \(ENOENT\)/));

  // Flags that are not configuration: yargs' own, --config, and those the caller lists, in either spelling.
  const c = cfg.load({ env: {}, flags: { _: [], $0: 'x', config: 'c.yaml', help: false, 'metrics-port': 9, metricsPort: 9 }, ignoreFlags: ['metricsPort'] });
  assert.equal(c.server.port, 8000);
});

test('errors never quote the config file or a value', (t) => {
  const dir = tempDir(t);
  const yaml = writeText(dir, 'bad.yaml', 'token: "hunter2hunter2hunter2\nserver: [\n');
  assert.throws(() => cfg.load({ file: yaml, env: {} }), configError(/the config file .*bad\.yaml is not valid YAML \(line \d+, column \d+\)/, 'hunter2'));
  const json = writeText(dir, 'bad.json', '{"token": "hunter2hunter2hunter2",}');
  assert.throws(() => cfg.load({ file: json, env: {} }), configError(/the config file .*bad\.json is not valid JSON/, 'hunter2'));
  assert.throws(() => cfg.load({ env: { FM_TEST_TOKEN: 'hunter2-short' } }), configError(/token: String must contain at least 16/, 'hunter2'));
});

test('the result is frozen all the way down, after the completion hook has run', () => {
  const c = cfg.load({
    env: {},
    complete: (config) => {
      config.token = 'filled-in-by-the-hook';
    },
  });
  assert.equal(c.token, 'filled-in-by-the-hook');
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.server) && Object.isFrozen(c.server.tls) && Object.isFrozen(c.widths));
  assert.throws(() => {
    (c.server as { port: number }).port = 1;
  }, TypeError);
  assert.throws(
    () => cfg.load({ env: {}, complete: () => { throw new Error('checked after validation'); } }),
    /checked after validation/,
  );
  assert.equal(cfg.load({ env: {} }).server.port, 8000, 'loading again does not see an earlier result');
});

test('redact hides every secret key, nested ones too, and leaves the configuration as it was', () => {
  const c = cfg.load({ env: { FM_TEST_TOKEN: 'a-very-long-secret-token' }, flags: { 'server.tls.cert': '/c.pem' } });
  const r = cfg.redact(c);
  assert.equal(r['token'], '[redacted]');
  assert.deepEqual(r['server'], { host: '127.0.0.1', port: 8000, tls: { cert: '[redacted]' } });
  assert.ok(!JSON.stringify(r).includes('a-very-long-secret-token'));
  assert.equal(c.token, 'a-very-long-secret-token');
  assert.ok(!('token' in cfg.redact(cfg.load({ env: {} }))), 'an unset secret stays unset');
});

test('describeOptions lists the config file, then every leaf with its environment name, flag, type and default', () => {
  const opts = cfg.describeOptions();
  assert.deepEqual(opts.map((o) => o.key), [
    'config',
    'server.host',
    'server.port',
    'server.tls.cert',
    'verbose',
    'level',
    'widths',
    'files',
    'dataDir',
    'schema',
    'token',
    'shape',
  ]);
  assert.equal(opts[0]?.env, 'FM_TEST_CONFIG');
  const byKey = new Map(opts.map((o) => [o.key, o]));
  assert.deepEqual(byKey.get('server.tls.cert'), {
    key: 'server.tls.cert',
    env: 'FM_TEST_SERVER_TLS_CERT',
    flag: '--server.tls.cert',
    type: 'string',
    default: undefined,
    help: 'PEM certificate file.',
  });
  assert.deepEqual(
    ['server.port', 'verbose', 'level', 'widths', 'shape', 'dataDir'].map((k) => [byKey.get(k)?.type, byKey.get(k)?.default]),
    [['number', 8000], ['boolean', false], ['enum', 'low'], ['list', [8]], ['json', { kind: 'circle', r: 1 }], ['string', 'state']],
  );
  assert.deepEqual(byKey.get('level')?.choices, ['low', 'high']);
  assert.equal(byKey.get('shape')?.help, 'A shape as JSON, or just its kind.');
  assert.deepEqual([...cfg.sections], ['server', 'server.tls']);
  // Every environment name it lists is one the loader accepts.
  for (const o of opts.slice(1)) assert.ok(cfg.leafByEnv.get(o.env)?.key === o.key, o.env);
});
