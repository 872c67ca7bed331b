import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeMessage, ErrorCode, isFedmetaError } from '@fedmeta/shared';
import { startCoordinator } from '../src/serve.js';
import { addSite } from '../src/state/registry.js';

import type { ErrorMessage } from '@fedmeta/shared';
import { ADMIN_TOKEN, captureLogger, connect, hello, onOffers, quadraticUpdate, sendUpdate, startTest, testConfig, waitFor } from './transport-fixtures.js';
import type { SiteSocket } from './transport-fixtures.js';

async function call(url: string, path: string, opts: { method?: string; token?: string | null; body?: unknown } = {}) {
  const headers: Record<string, string> = {};
  if (opts.token !== null) headers['authorization'] = `Bearer ${opts.token ?? ADMIN_TOKEN}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url + path, { method: opts.method ?? 'GET', headers, ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

test('the admin API requires the admin token; the health probes do not', async (t) => {
  const { c, log } = await startTest(t);
  for (const path of ['/healthz', '/readyz', '/admin/v1/healthz', '/admin/v1/readyz']) {
    const r = await call(c.url, path, { token: null });
    assert.equal(r.status, 200, path);
  }
  assert.deepEqual((await call(c.url, '/readyz', { token: null })).body, { ready: true });

  const routes: [string, string][] = [
    ['GET', '/admin/v1/status'],
    ['GET', '/admin/v1/sites'],
    ['POST', '/admin/v1/sites'],
    ['POST', '/admin/v1/sites/alpha/revoke'],
    ['POST', '/admin/v1/rounds'],
    ['POST', '/admin/v1/release'],
    ['POST', '/admin/v1/rollback'],
  ];
  for (const [method, path] of routes) {
    for (const token of [null, 'wrong-token-of-some-length', `${ADMIN_TOKEN}x`, ADMIN_TOKEN.slice(0, -1)]) {
      const r = await call(c.url, path, method === 'POST' ? { method, token, body: { name: 'alpha' } } : { method, token });
      assert.equal(r.status, 401, `${method} ${path} with ${token === null ? 'no token' : 'a wrong token'}`);
      assert.equal(r.body.error.code, ErrorCode.UNAUTHENTICATED);
    }
  }
  // Nothing was done by the refused requests.
  assert.deepEqual(await c.store.listSites(), []);
  assert.ok(!log.text().includes(ADMIN_TOKEN.slice(0, 12)), 'the token is never logged');

  const ok = await call(c.url, '/admin/v1/status');
  assert.equal(ok.status, 200);
  assert.equal(ok.body.version, 0);
  assert.equal(ok.body.ready, true);
  assert.deepEqual(ok.body.sitesOnline, []);

  assert.equal((await call(c.url, '/admin/v1/nope')).status, 404);
  const wrongMethod = await call(c.url, '/admin/v1/status', { method: 'POST' });
  assert.equal(wrongMethod.status, 405);
  const badBody = await call(c.url, '/admin/v1/sites', { method: 'POST', body: { name: 42 } });
  assert.equal(badBody.status, 400);
  assert.equal(badBody.body.error.code, ErrorCode.SCHEMA);
});

test('without an admin token configured the admin API is off', async (t) => {
  const { c } = await startTest(t, { flags: { adminToken: undefined } });
  const r = await call(c.url, '/admin/v1/status', { token: 'anything-at-all-here' });
  assert.equal(r.status, 403);
  assert.equal(r.body.error.code, ErrorCode.UNAUTHENTICATED);
  assert.equal((await call(c.url, '/healthz', { token: null })).status, 200);
});

test('sites, rounds, releases and rollback through the admin API', async (t) => {
  const { c } = await startTest(t);
  const sockets: SiteSocket[] = [];
  for (const name of ['s1', 's2', 's3']) {
    const added = await call(c.url, '/admin/v1/sites', { method: 'POST', body: { name } });
    assert.equal(added.status, 201);
    assert.match(added.body.token, /^fmE_/);
    const { socket } = await connect(c.url, hello(name, { kind: 'enroll', token: added.body.token }), t);
    onOffers(socket, (offer, params) => void sendUpdate(socket, quadraticUpdate(offer, params, 1)));
    sockets.push(socket);
  }
  const dup = await call(c.url, '/admin/v1/sites', { method: 'POST', body: { name: 's1' } });
  assert.equal(dup.status, 409);
  assert.equal(dup.body.error.code, ErrorCode.PRECONDITION);

  const sites = await call(c.url, '/admin/v1/sites');
  assert.deepEqual(sites.body.sites.map((s: { name: string; enrolled: boolean; online: boolean }) => [s.name, s.enrolled, s.online]), [
    ['s1', true, true],
    ['s2', true, true],
    ['s3', true, true],
  ]);
  assert.ok(!JSON.stringify(sites.body).includes('Hash'), 'no hashes leave the coordinator');
  assert.ok(sites.body.sites.every((s: { lastSeen: string | null }) => typeof s.lastSeen === 'string'), 'connected sites have been seen');

  const started = await call(c.url, '/admin/v1/rounds', { method: 'POST', body: { count: 2 } });
  assert.equal(started.status, 202);
  assert.equal(started.body.job.running, true);
  const again = await call(c.url, '/admin/v1/rounds', { method: 'POST', body: { count: 1 } });
  assert.equal(again.status, 409);
  assert.equal(again.body.error.code, ErrorCode.ROUND_IN_FLIGHT);
  let status: Record<string, any> = {};
  for (let i = 0; i < 200 && (status.rounds?.running ?? true); i++) {
    status = (await call(c.url, '/admin/v1/status')).body;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.equal(status.rounds.done, 2);
  assert.equal(status.rounds.lastError, null);
  assert.equal(status.version, 2);
  assert.equal(status.lastRound.status, 'committed');
  assert.equal(status.lastRound.accepted, 3);
  assert.deepEqual(status.sitesOnline, ['s1', 's2', 's3']);

  const rel1 = await call(c.url, '/admin/v1/release', { method: 'POST', body: { version: 1 } });
  assert.deepEqual(rel1.body, { version: 1, releases: [1] });
  const best = await call(c.url, '/admin/v1/release', { method: 'POST', body: { best: true } });
  assert.equal(best.status, 200);
  assert.ok([1, 2].includes(best.body.version));
  const rel2 = await call(c.url, '/admin/v1/release', { method: 'POST', body: { version: 2 } });
  assert.deepEqual(rel2.body.releases.at(-1), 2);
  const back = await call(c.url, '/admin/v1/rollback', { method: 'POST' });
  assert.equal(back.status, 200);
  assert.equal(back.body.version, rel2.body.releases.at(-2));
  const missing = await call(c.url, '/admin/v1/release', { method: 'POST', body: { version: 99 } });
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, ErrorCode.UNKNOWN_VERSION);

  // Revoking tells the site why and closes its connection.
  const told = new Promise<ErrorMessage>((r) => sockets[0]?.once('error', (p) => r(decodeMessage(p, { maxBytes: 1 << 16 }) as ErrorMessage)));
  const revoked = await call(c.url, '/admin/v1/sites/s1/revoke', { method: 'POST' });
  assert.equal(revoked.status, 200);
  assert.equal(revoked.body.site.revoked, true);
  assert.equal((await told).code, ErrorCode.REVOKED);
  await waitFor(() => !c.hub.online().includes('s1'), 2000, 's1 offline');
  const unknown = await call(c.url, '/admin/v1/sites/nobody/revoke', { method: 'POST' });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error.code, ErrorCode.UNKNOWN_SITE);
});

test('continuous mode runs rounds while enough sites are online, up to rounds.maxRounds', async (t) => {
  const { c } = await startTest(t, { flags: { 'rounds.continuous': true, 'rounds.maxRounds': 2 } });
  const status = () => c.runner.status();
  assert.equal(status().mode, 'continuous');
  assert.equal(status().running, true);
  for (const name of ['s1', 's2']) {
    const { token } = await addSite(c.store, name);
    const { socket } = await connect(c.url, hello(name, { kind: 'enroll', token }), t);
    onOffers(socket, (offer, params) => void sendUpdate(socket, quadraticUpdate(offer, params, 1)));
  }
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(c.engine.status().version, 0, 'no round starts while fewer than the quorum of sites are online');
  assert.equal(c.engine.status().roundInFlight, null);
  const { token } = await addSite(c.store, 's3');
  const { socket } = await connect(c.url, hello('s3', { kind: 'enroll', token }), t);
  onOffers(socket, (offer, params) => void sendUpdate(socket, quadraticUpdate(offer, params, 1)));
  await waitFor(() => !status().running, 8000, 'two continuous rounds');
  assert.equal(status().done, 2);
  assert.equal(status().lastError, null);
  assert.equal(c.engine.status().version, 2);
});

test('a data directory whose checkpoints are all damaged stops start-up with STATE_CORRUPT', async (t) => {
  const { c, dir } = await startTest(t);
  await c.close();
  for (const f of await readdir(dir)) if (f.startsWith('checkpoint-')) await writeFile(join(dir, f), 'not a checkpoint');
  const log = captureLogger();
  const err = await startCoordinator(testConfig(dir), { logger: log.logger }).then(
    (running) => {
      t.after(() => running.close());
      return assert.fail('started on damaged state');
    },
    (e: unknown) => e,
  );
  assert.ok(isFedmetaError(err, ErrorCode.STATE_CORRUPT), String(err));
  assert.match((err as Error).message, /restore the directory from a backup/);
  assert.ok(!(await readdir(dir)).includes('LOCK'), 'the data directory was released');
});
