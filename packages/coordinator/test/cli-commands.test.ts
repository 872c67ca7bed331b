import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '@fedmeta/shared';
import { describeOptions } from '../src/config.js';
import { runCli } from '../src/cli/main.js';
import type { CliIo } from '../src/cli/context.js';
import { ADMIN_TOKEN, connect, hello, onOffers, quadraticUpdate, sendUpdate, startTest } from './transport-fixtures.js';

function cli(env: NodeJS.ProcessEnv = {}) {
  let out = '';
  let err = '';
  const io: CliIo = { stdout: (s) => (out += `${s}\n`), stderr: (s) => (err += `${s}\n`), env, cwd: process.cwd() };
  return {
    run: async (...args: string[]) => {
      out = '';
      err = '';
      const code = await runCli(args, io);
      return { code, out, err };
    },
  };
}

test('the site, round, release and status commands work through the admin API', async (t) => {
  const { c, dir } = await startTest(t);
  const api = ['--url', c.url, '--admin-token', ADMIN_TOKEN];
  const { run } = cli();

  const tokens = new Map<string, string>();
  for (const name of ['s1', 's2', 's3']) {
    const r = await run('sites', 'add', name, ...api, '--json');
    assert.equal(r.code, 0, r.err);
    const body = JSON.parse(r.out) as { name: string; token: string };
    assert.equal(body.name, name);
    tokens.set(name, body.token);
  }
  const human = await run('sites', 'add', 's4', ...api);
  assert.equal(human.code, 0);
  assert.match(human.out, /site s4 registered/);
  assert.match(human.out, /^ {2}fmE_\S+$/m);

  // The data directory belongs to the running coordinator: offline changes are refused with a pointer to --url.
  const locked = await run('sites', 'add', 's5', '--data-dir', dir);
  assert.equal(locked.code, 1);
  assert.match(locked.err, new RegExp(`${ErrorCode.STATE_LOCKED}.*--url`));

  for (const [name, token] of tokens) {
    const { socket } = await connect(c.url, hello(name, { kind: 'enroll', token }), t);
    onOffers(socket, (offer, params) => void sendUpdate(socket, quadraticUpdate(offer, params, 1)));
  }
  const rounds = await run('rounds', 'run', '--count', '2', ...api);
  assert.equal(rounds.code, 0, rounds.err);
  assert.match(rounds.out, /^1\/2 round 0 committed \(version 0 -> 1\): 3 of 3 sampled sites accepted/m);
  assert.match(rounds.out, /^2\/2 round 1 committed/m);
  assert.match(rounds.out, /rounds: 2 of 2 done, finished; model version 2/);

  const status = await run('status', ...api);
  assert.equal(status.code, 0);
  assert.match(status.out, /model version 2, next round 2; nothing released yet/);
  assert.match(status.out, /sites online \(3\): s1, s2, s3/);
  assert.match(status.out, /last round: round 1 committed/);

  const env = cli({ FEDMETA_ADMIN_URL: c.url, FEDMETA_ADMIN_TOKEN: ADMIN_TOKEN });
  const listed = await env.run('sites', 'list', '--json');
  assert.equal(listed.code, 0, listed.err);
  const sites = (JSON.parse(listed.out) as { sites: { name: string; online: boolean; enrolled: boolean }[] }).sites;
  assert.deepEqual(sites.map((s) => [s.name, s.online, s.enrolled]), [['s1', true, true], ['s2', true, true], ['s3', true, true], ['s4', false, false]]);

  const rel = await env.run('release', '1', '--json');
  assert.equal(rel.code, 0, rel.err);
  assert.deepEqual(JSON.parse(rel.out), { version: 1, releases: [1] });
  const best = await env.run('release', '--best');
  assert.equal(best.code, 0, best.err);
  assert.match(best.out, /^released version [12] for detection/);
  const back = await env.run('rollback');
  if (JSON.stringify(c.engine.status().releases) === '[1]') {
    assert.equal(back.code, 1, 'release --best chose the current release, so there is nothing to roll back to');
  } else {
    assert.equal(back.code, 0, back.err);
    assert.match(back.out, /version 1 is the current release again/);
  }
  const bad = await env.run('release', '99');
  assert.equal(bad.code, 1);
  assert.match(bad.err, new RegExp(ErrorCode.UNKNOWN_VERSION));

  const revoke = await env.run('sites', 'revoke', 's3');
  assert.equal(revoke.code, 0, revoke.err);
  assert.match(revoke.out, /site s3 revoked/);

  const noToken = await run('status', '--url', c.url);
  assert.equal(noToken.code, 1);
  assert.match(noToken.err, /--admin-token/);
  const wrong = await run('status', '--url', c.url, '--admin-token', 'not-the-admin-token', '--json');
  assert.equal(wrong.code, 1);
  assert.equal((JSON.parse(wrong.out) as { error: { code: string } }).error.code, ErrorCode.UNAUTHENTICATED);
});

test('offline site commands work on the data directory when no coordinator runs there', async (t) => {
  const { c, dir } = await startTest(t);
  await c.close();
  const { run } = cli();
  const added = await run('sites', 'add', 'branch-1', '--data-dir', dir, '--json');
  assert.equal(added.code, 0, added.err);
  assert.match((JSON.parse(added.out) as { token: string }).token, /^fmE_/);
  assert.equal((await run('sites', 'add', 'branch-2', '--data-dir', dir)).code, 0);
  assert.equal((await run('sites', 'revoke', 'branch-2', '--data-dir', dir)).code, 0);
  const list = await run('sites', 'list', '--data-dir', dir);
  assert.equal(list.code, 0);
  assert.match(list.out, /^SITE\s+STATE\s+ONLINE\s+ENROLLED AT$/m);
  assert.match(list.out, /^branch-1\s+awaiting enrollment\s+-\s+-$/m);
  assert.match(list.out, /^branch-2\s+revoked/m);
  const again = await run('sites', 'add', 'branch-1', '--data-dir', dir);
  assert.equal(again.code, 1);
  assert.match(again.err, /already registered/);
  const usage = await run('sites');
  assert.equal(usage.code, 2);
  assert.match(usage.err, /choose a sites command/);
});

test('serve --help lists every option with its flag and environment variable', async () => {
  const r = await cli().run('serve', '--help');
  assert.equal(r.code, 0, r.err);
  for (const o of describeOptions()) {
    assert.ok(r.out.includes(o.flag), `--help lists ${o.flag}`);
    assert.ok(r.out.includes(o.env), `--help names ${o.env}`);
    if (o.help) assert.ok(r.out.replace(/\s+/g, ' ').includes(o.help.replace(/\s+/g, ' ').slice(0, 40)), `--help explains ${o.key}`);
  }
});
