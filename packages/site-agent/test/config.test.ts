import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ErrorCode, isFedmetaError } from '@fedmeta/shared';
import { credentialPath, describeOptions, loadAgentConfig, redactConfig } from '../src/config.js';
import { readRefusal, isRetryable } from '../src/refusal.js';
import { tempDir, writeText } from './fixtures.js';

const configError = (pattern: RegExp) => (e: unknown) => {
  assert.ok(isFedmetaError(e, ErrorCode.CONFIG), String(e));
  assert.match(e.message, pattern);
  return true;
};

test('file < environment < flags, with relative paths resolved against the config file, and the result frozen', (t) => {
  const dir = tempDir(t);
  const file = writeText(
    dir,
    'agent.yaml',
    ['site: branch-7', 'coordinatorUrl: https://soc.example.org:8443', 'logLevel: warn', 'threads: 2', 'data:', '  files: [flows/a.csv, flows/b.csv.gz]', 'tls:', '  ca: ca.pem', 'schema: my-schema.yaml'].join('\n'),
  );
  const c = loadAgentConfig({
    file,
    env: { FEDMETA_AGENT_LOG_LEVEL: 'debug', FEDMETA_AGENT_THREADS: '4', FEDMETA_AGENT_TLS_REJECT_UNAUTHORIZED: 'true' },
    flags: { threads: 8 },
    cwd: '/elsewhere',
  });
  assert.equal(c.site, 'branch-7');
  assert.equal(c.logLevel, 'debug', 'the environment overrides the file');
  assert.equal(c.threads, 8, 'a flag overrides the environment');
  assert.deepEqual(c.data.files, [join(dir, 'flows/a.csv'), join(dir, 'flows/b.csv.gz')]);
  assert.equal(c.tls.ca, join(dir, 'ca.pem'));
  assert.equal(c.tls.rejectUnauthorized, true);
  assert.equal(c.schema, join(dir, 'my-schema.yaml'));
  assert.equal(c.backend, 'wasm');
  assert.equal(credentialPath(c), join('/elsewhere', 'fedmeta-agent-state', 'credential'));
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.data.files));
  const built = loadAgentConfig({ env: { FEDMETA_AGENT_SITE: 's1' }, flags: { schema: 'unsw-nb15' } });
  assert.equal(built.schema, 'unsw-nb15', 'a built-in schema name is not a path');
});

test('unknown keys, bad values and plain HTTP are refused with the key and its source, never the value', (t) => {
  const dir = tempDir(t);
  assert.throws(() => loadAgentConfig({ file: writeText(dir, 'a.yaml', 'site: s1\nthreds: 2\n'), env: {} }), configError(/threds: unknown key \(from config file/));
  assert.throws(() => loadAgentConfig({ env: { FEDMETA_AGENT_SITE: 's1', FEDMETA_AGENT_COLOUR: 'x' } }), configError(/unknown environment variable FEDMETA_AGENT_COLOUR/));
  assert.throws(() => loadAgentConfig({ env: {}, flags: { site: 's1', bogus: 1 } }), configError(/unknown option --bogus/));
  assert.throws(() => loadAgentConfig({ env: {} }), configError(/site: is required/));
  assert.throws(
    () => loadAgentConfig({ env: { FEDMETA_AGENT_SITE: 's1', FEDMETA_AGENT_THREADS: 'many' } }),
    configError(/threads: .*\(from the environment\)/),
  );
  assert.throws(
    () => loadAgentConfig({ env: {}, flags: { site: 's1', coordinatorUrl: 'http://10.0.0.1:8443' } }),
    configError(/http:\/\/.*allowInsecureHttp/),
  );
  assert.throws(
    () => loadAgentConfig({ env: {}, flags: { site: 's1', enrollmentToken: 'tok-1', credential: 'secret-cred-1' } }),
    (e) => isFedmetaError(e, ErrorCode.CONFIG) && !e.message.includes('secret-cred-1'),
  );
  const ok = loadAgentConfig({ env: { FEDMETA_AGENT_ENROLLMENT_TOKEN: 'tok-123' }, flags: { site: 's1', coordinatorUrl: 'http://127.0.0.1:9', allowInsecureHttp: true } });
  assert.equal(ok.enrollmentToken, 'tok-123');
  assert.equal(redactConfig(ok)['enrollmentToken'], '[redacted]');
});

test('--help describes every option with its environment variable and default', () => {
  const opts = describeOptions();
  const byKey = new Map(opts.map((o) => [o.key, o]));
  for (const key of ['config', 'coordinatorUrl', 'site', 'enrollmentToken', 'credentialFile', 'tls.ca', 'tls.rejectUnauthorized', 'data.files', 'data.watchDir', 'schema', 'threads', 'backend', 'seed', 'logLevel', 'stateDir']) {
    const o = byKey.get(key);
    assert.ok(o, key);
    assert.ok(o.help.length > 10, `${key} has help`);
  }
  assert.equal(byKey.get('tls.rejectUnauthorized')?.env, 'FEDMETA_AGENT_TLS_REJECT_UNAUTHORIZED');
  assert.equal(byKey.get('tls.rejectUnauthorized')?.default, true);
  assert.deepEqual(byKey.get('backend')?.choices, ['wasm', 'cpu', 'tensorflow']);
  assert.equal(byKey.get('privacy.epsilonBudget')?.env, 'FEDMETA_AGENT_PRIVACY_EPSILON_BUDGET');
  assert.equal(byKey.get('privacy.epsilonBudget')?.default, 10);
  assert.equal(byKey.get('privacy.delta')?.default, 1e-5);
  const c = loadAgentConfig({ env: { FEDMETA_AGENT_SITE: 's1', FEDMETA_AGENT_PRIVACY_EPSILON_BUDGET: '2.5' } });
  assert.deepEqual(c.privacy, { epsilonBudget: 2.5, delta: 1e-5 });
  assert.throws(() => loadAgentConfig({ env: { FEDMETA_AGENT_SITE: 's1', FEDMETA_AGENT_PRIVACY_DELTA: '1' } }), (e) => isFedmetaError(e, ErrorCode.CONFIG) && /privacy\.delta/.test(e.message));
});

test('coded refusals are told apart from transport failures, and only temporary ones are retried', () => {
  assert.deepEqual(readRefusal({ message: 'x', data: { code: 'FEDMETA_ERR_REVOKED', message: 'FEDMETA_ERR_REVOKED: site s1 was revoked' } }), {
    code: 'FEDMETA_ERR_REVOKED',
    message: 'site s1 was revoked',
  });
  assert.equal(readRefusal({ message: 'websocket error' }), null);
  assert.equal(readRefusal({ message: 'FEDMETA_ERR_NOT_READY: restoring' })?.code, 'FEDMETA_ERR_NOT_READY');
  assert.equal(readRefusal({ message: 'x', data: { code: 'FEDMETA_ERR_REVOKED', message: 'a\nforged\u0000line' } })?.message, 'a forged line');
  for (const code of [ErrorCode.REVOKED, ErrorCode.SCHEMA_MISMATCH, ErrorCode.PROTOCOL_VERSION, ErrorCode.UNAUTHENTICATED, ErrorCode.TOKEN_REUSED]) {
    assert.equal(isRetryable(code), false, code);
  }
  assert.equal(isRetryable(ErrorCode.NOT_READY), true);
  assert.equal(isRetryable(ErrorCode.RATE_LIMITED), true);
});
