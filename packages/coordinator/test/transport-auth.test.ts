import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { builtinSchema, ErrorCode, schemaFingerprint } from '@fedmeta/shared';
import { runCli } from '../src/cli/main.js';
import { addSite, revoke } from '../src/state/registry.js';
import { FileStateStore } from '../src/state/file-store.js';
import { SocketHub } from '../src/transport/socket-hub.js';
import { ADMIN_TOKEN, captureLogger, connect, hello, startTest, tempDir } from './transport-fixtures.js';

const FP = schemaFingerprint(builtinSchema('cicflowmeter'));

test('every bad handshake is refused at connection with its code, and no handler ever sees the socket', async (t) => {
  const { c, log } = await startTest(t, { flags: { schema: 'cicflowmeter', 'model.inputDim': undefined } });
  let connections = 0;
  c.hub.io.on('connection', () => connections++);
  const presence: string[] = [];
  c.hub.onPresence((site, online) => presence.push(`${site}:${online}`));

  const alpha = await addSite(c.store, 'alpha');
  const beta = await addSite(c.store, 'beta');
  await revoke(c.store, 'beta');
  const good = (site: string, auth: Parameters<typeof hello>[1], over = {}) => hello(site, auth, { schemaFingerprint: FP, ...over });

  const refusals: [string, unknown, string][] = [
    ['no handshake at all', {}, ErrorCode.UNAUTHENTICATED],
    ['a malformed hello', { ...good('alpha', { kind: 'enroll', token: alpha.token }), site: '../etc' }, ErrorCode.SCHEMA],
    ['no token', { ...good('alpha', { kind: 'enroll', token: 'x' }), auth: undefined }, ErrorCode.UNAUTHENTICATED],
    ['a wrong token', good('alpha', { kind: 'enroll', token: `fmE_${'A'.repeat(43)}` }), ErrorCode.UNAUTHENTICATED],
    ['a wrong credential', good('alpha', { kind: 'credential', credential: `fmC_${'B'.repeat(43)}` }), ErrorCode.UNAUTHENTICATED],
    ['an unknown site', good('gamma', { kind: 'enroll', token: alpha.token }), ErrorCode.UNKNOWN_SITE],
    ['a revoked site', good('beta', { kind: 'enroll', token: beta.token }), ErrorCode.REVOKED],
    ['another protocol version', good('alpha', { kind: 'enroll', token: alpha.token }, { protocolVersion: 99 }), ErrorCode.PROTOCOL_VERSION],
    ['another feature schema', good('alpha', { kind: 'enroll', token: alpha.token }, { schemaFingerprint: 'f'.repeat(64) }), ErrorCode.SCHEMA_MISMATCH],
  ];
  for (const [what, auth, code] of refusals) {
    const err = (await connect(c.url, auth).then(
      () => assert.fail(`${what}: connected`),
      (e: unknown) => e,
    )) as { code: string; message: string };
    assert.equal(err.code, code, what);
    assert.match(err.message, /; /, `${what}: the message says what to do`);
  }
  assert.equal(connections, 0);
  assert.deepEqual(presence, []);

  // The schema mismatch did not spend the token: enrollment works now, and hands out a credential once.
  const first = await connect(c.url, good('alpha', { kind: 'enroll', token: alpha.token }), t);
  assert.match(first.welcome.credential ?? '', /^fmC_/);
  assert.equal(first.welcome.site, 'alpha');
  assert.equal(first.welcome.currentVersion, 0);
  assert.deepEqual(c.hub.online(), ['alpha']);
  first.socket.disconnect();

  const reused = (await connect(c.url, good('alpha', { kind: 'enroll', token: alpha.token })).catch((e: unknown) => e)) as { code: string };
  assert.equal(reused.code, ErrorCode.TOKEN_REUSED);

  const again = await connect(c.url, good('alpha', { kind: 'credential', credential: first.welcome.credential as string }), t);
  assert.equal(again.welcome.credential, undefined, 'the credential is handed out at enrollment only');
  assert.equal(connections, 2);

  // Revoking through the registry shuts the credential out on the next connect.
  await revoke(c.store, 'alpha');
  const revoked = (await connect(c.url, good('alpha', { kind: 'credential', credential: first.welcome.credential as string })).catch((e: unknown) => e)) as { code: string };
  assert.equal(revoked.code, ErrorCode.REVOKED);

  const text = log.text();
  assert.ok(!text.includes(alpha.token) && !text.includes(first.welcome.credential as string), 'no secret in the log');
  assert.ok(log.lines().some((l) => l['msg'] === 'connection refused' && l['code'] === ErrorCode.TOKEN_REUSED));
});

test('a second connection of a site replaces the first', async (t) => {
  const { c } = await startTest(t);
  const { token } = await addSite(c.store, 'alpha');
  const first = await connect(c.url, hello('alpha', { kind: 'enroll', token }), t);
  const presence: string[] = [];
  c.hub.onPresence((site, online) => presence.push(`${site}:${online}`));
  const closed = new Promise<string>((r) => first.socket.once('disconnect', r));
  const second = await connect(c.url, hello('alpha', { kind: 'credential', credential: first.welcome.credential as string }), t);
  assert.equal(await closed, 'io server disconnect');
  assert.ok(second.socket.connected);
  assert.deepEqual(c.hub.online(), ['alpha']);
  assert.deepEqual(presence, ['alpha:false', 'alpha:true']);
});

test('sites are refused with NOT_READY until the coordinator has restored its state', async (t) => {
  const dir = await tempDir(t);
  const store = new FileStateStore(dir);
  await store.open();
  t.after(() => store.close());
  const { token } = await addSite(store, 'alpha');
  const server = createServer();
  const hub = new SocketHub({ server, store, paramCount: 8, schemaFingerprint: null, logger: captureLogger().logger });
  t.after(() => hub.close());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const err = (await connect(url, hello('alpha', { kind: 'enroll', token })).catch((e: unknown) => e)) as { code: string };
  assert.equal(err.code, ErrorCode.NOT_READY);

  hub.activate({ welcome: () => ({ currentVersion: 3, round: null, released: null }), release: async () => assert.fail('no release') });
  const ok = await connect(url, hello('alpha', { kind: 'enroll', token }), t);
  assert.equal(ok.welcome.currentVersion, 3);
});

test('connections beyond server.maxConnections are refused with a code; a site may still replace its own', async (t) => {
  const { c } = await startTest(t, { flags: { 'server.maxConnections': 1 } });
  const a = await addSite(c.store, 'alpha');
  const b = await addSite(c.store, 'beta');
  const first = await connect(c.url, hello('alpha', { kind: 'enroll', token: a.token }), t);
  const err = (await connect(c.url, hello('beta', { kind: 'enroll', token: b.token })).catch((e: unknown) => e)) as { code: string };
  assert.equal(err.code, ErrorCode.RATE_LIMITED);
  const again = await connect(c.url, hello('alpha', { kind: 'credential', credential: first.welcome.credential as string }), t);
  assert.equal(again.welcome.site, 'alpha');
  assert.deepEqual(c.hub.online(), ['alpha']);
});

const fixture = (name: string) => fileURLToPath(new URL(`./transport-tls-fixtures/${name}`, import.meta.url));
const pem = (name: string) => readFileSync(fixture(name));

test('over HTTPS with mutual TLS a site needs a client certificate issued to its own name', async (t) => {
  const { c } = await startTest(t, {
    flags: {
      'server.allowInsecureHttp': false,
      'server.tlsCert': fixture('server.pem'),
      'server.tlsKey': fixture('server-key.pem'),
      'server.tlsCa': fixture('ca.pem'),
      'server.requireClientCert': true,
    },
  });
  assert.match(c.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const { token } = await addSite(c.store, 'alpha');
  const ca = pem('ca.pem');
  const as = (name: string) => ({ ca, cert: pem(`${name}.pem`), key: pem(`${name}-key.pem`) });

  const refusals: [string, { ca: Buffer; cert?: Buffer; key?: Buffer }][] = [
    ['no client certificate', { ca }],
    ["another site's certificate", as('beta')],
  ];
  for (const [what, tls] of refusals) {
    const err = (await connect(c.url, hello('alpha', { kind: 'enroll', token }), undefined, tls).then(
      () => assert.fail(`${what}: connected`),
      (e: unknown) => e,
    )) as { code: string; message: string };
    assert.equal(err.code, ErrorCode.UNAUTHENTICATED, what);
    assert.match(err.message, /certificate/, what);
  }
  const ok = await connect(c.url, hello('alpha', { kind: 'enroll', token }), t, as('alpha'));
  assert.match(ok.welcome.credential ?? '', /^fmC_/, 'the refusals did not spend the enrollment token');

  // The admin API shares the port and authenticates by token: the CLI needs only the CA, no client certificate.
  let text = '';
  const io = { stdout: (s: string) => (text += s), stderr: (s: string) => (text += s), env: {}, cwd: process.cwd() };
  assert.equal(await runCli(['status', '--url', c.url, '--admin-token', ADMIN_TOKEN, '--ca', fixture('ca.pem'), '--json'], io), 0, text);
  assert.deepEqual((JSON.parse(text) as { sitesOnline: string[] }).sitesOnline, ['alpha']);
  text = '';
  assert.equal(await runCli(['status', '--url', c.url, '--admin-token', ADMIN_TOKEN], io), 1, 'an untrusted certificate is refused');
  assert.match(text, /cannot reach the coordinator/);
});
