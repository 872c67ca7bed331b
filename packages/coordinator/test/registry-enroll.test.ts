import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import { ErrorCode, isFedmetaError } from '@fedmeta/shared';
import type { ErrorCode as Code } from '@fedmeta/shared';
import {
  FileStateStore,
  addSite,
  authenticate,
  createEnrollment,
  enroll,
  hashSecret,
  revoke,
} from '../src/state/index.js';
import { allFiles, tempDir } from './store-helpers.js';

const isCode = (code: Code) => (e: unknown) => isFedmetaError(e, code);

async function openStore(t: Parameters<typeof tempDir>[0]): Promise<{ dir: string; store: FileStateStore }> {
  const dir = await tempDir(t);
  const store = new FileStateStore(dir);
  await store.open();
  t.after(() => store.close());
  return { dir, store };
}

test('an enrollment token is 32 random bytes behind fmE_, and the record keeps only its sha256', () => {
  const a = createEnrollment('branch-1');
  const b = createEnrollment('branch-1');
  assert.match(a.token, /^fmE_[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a.token, b.token);
  assert.equal(Buffer.from(a.token.slice(4), 'base64url').length, 32);
  assert.equal(a.record.enrollmentTokenHash, hashSecret(a.token));
  assert.equal(a.record.credentialHash, null);
  assert.ok(!JSON.stringify(a.record).includes(a.token.slice(4)));
  assert.throws(() => createEnrollment('../etc'), isCode(ErrorCode.PRECONDITION));
});

test('a token is exchanged once for a credential that then authenticates the site', async (t) => {
  const { store } = await openStore(t);
  const { token } = await addSite(store, 'branch-1');
  const credential = await enroll(store, 'branch-1', token);
  assert.match(credential, /^fmC_[A-Za-z0-9_-]{43}$/);
  const rec = await authenticate(store, 'branch-1', credential);
  assert.equal(rec.name, 'branch-1');
  assert.ok(rec.enrolledAt);

  await assert.rejects(enroll(store, 'branch-1', token), (e) => {
    assert.ok(isFedmetaError(e, ErrorCode.TOKEN_REUSED));
    assert.ok(!e.message.includes(token), 'no secret in the message');
    return true;
  });
  // The first credential is still the valid one after the refused reuse.
  await authenticate(store, 'branch-1', credential);
});

test('wrong token, wrong credential, unknown site, and a site that has not enrolled are each refused', async (t) => {
  const { store } = await openStore(t);
  const { token } = await addSite(store, 'branch-1');
  const other = createEnrollment('x').token;
  await assert.rejects(enroll(store, 'branch-1', other), isCode(ErrorCode.UNAUTHENTICATED));
  await assert.rejects(enroll(store, 'branch-1', 'garbage'), isCode(ErrorCode.UNAUTHENTICATED));
  await assert.rejects(enroll(store, 'nowhere', token), isCode(ErrorCode.UNKNOWN_SITE));
  await assert.rejects(authenticate(store, 'branch-1', 'fmC_' + 'A'.repeat(43)), (e) => {
    assert.ok(isFedmetaError(e, ErrorCode.UNAUTHENTICATED));
    assert.match(e.message, /has not enrolled yet/);
    return true;
  });

  const credential = await enroll(store, 'branch-1', token);
  const flipped = credential.slice(0, -1) + (credential.endsWith('A') ? 'B' : 'A');
  await assert.rejects(authenticate(store, 'branch-1', flipped), isCode(ErrorCode.UNAUTHENTICATED));
  await assert.rejects(authenticate(store, 'branch-1', token), (e) => {
    assert.ok(isFedmetaError(e, ErrorCode.UNAUTHENTICATED));
    assert.match(e.message, /enrollment token was given where the credential is expected/);
    return true;
  });
  await assert.rejects(authenticate(store, 'branch-2', credential), isCode(ErrorCode.UNKNOWN_SITE));
  await assert.rejects(authenticate(store, 'bad name\n{"x":1}', credential), (e) => {
    assert.ok(isFedmetaError(e, ErrorCode.UNKNOWN_SITE));
    assert.ok(!e.message.includes('\n'), 'a hostile name is not echoed into logs');
    return true;
  });
});

test('revoking a site stops its credential and its pending enrollment; reissue re-admits it', async (t) => {
  const { store } = await openStore(t);
  const one = await addSite(store, 'branch-1');
  const credential = await enroll(store, 'branch-1', one.token);
  const two = await addSite(store, 'branch-2');

  await revoke(store, 'branch-1');
  await revoke(store, 'branch-2');
  await assert.rejects(authenticate(store, 'branch-1', credential), isCode(ErrorCode.REVOKED));
  await assert.rejects(enroll(store, 'branch-2', two.token), isCode(ErrorCode.REVOKED));
  await assert.rejects(revoke(store, 'nowhere'), isCode(ErrorCode.UNKNOWN_SITE));
  await assert.rejects(addSite(store, 'branch-1'), isCode(ErrorCode.PRECONDITION));

  const again = await addSite(store, 'branch-1', { reissue: true });
  await assert.rejects(authenticate(store, 'branch-1', credential), isCode(ErrorCode.UNAUTHENTICATED));
  const fresh = await enroll(store, 'branch-1', again.token);
  await authenticate(store, 'branch-1', fresh);
});

test('two enrollments racing with one token: exactly one gets a credential', async (t) => {
  const { store } = await openStore(t);
  const { token } = await addSite(store, 'branch-1');
  const results = await Promise.allSettled([enroll(store, 'branch-1', token), enroll(store, 'branch-1', token)]);
  const won = results.filter((r) => r.status === 'fulfilled');
  const lost = results.filter((r) => r.status === 'rejected');
  assert.equal(won.length, 1);
  assert.equal(lost.length, 1);
  assert.ok(isFedmetaError((lost[0] as PromiseRejectedResult).reason, ErrorCode.TOKEN_REUSED));
  await authenticate(store, 'branch-1', (won[0] as PromiseFulfilledResult<string>).value);
});

test('only hashes reach the disk: no token or credential appears in any file of the data directory', async (t) => {
  const { dir, store } = await openStore(t);
  const secrets: string[] = [];
  for (const name of ['a', 'b', 'c']) {
    const { token } = await addSite(store, name);
    secrets.push(token);
    if (name !== 'c') secrets.push(await enroll(store, name, token));
  }
  await revoke(store, 'b');
  await store.close();

  const files = await allFiles(dir);
  assert.ok(files.size > 0);
  const everything = Buffer.concat([...files.values()]);
  for (const s of secrets) {
    assert.ok(!everything.includes(s), 'secret absent');
    assert.ok(!everything.includes(s.slice(4)), 'secret body absent');
    assert.ok(!everything.includes(Buffer.from(s.slice(4), 'base64url')), 'secret bytes absent');
  }
  // What is there instead: the hashes, and the registry survives a reopen.
  assert.ok(everything.includes(hashSecret(secrets[1]!)));
  const reopened = new FileStateStore(dir);
  await reopened.open();
  t.after(() => reopened.close());
  await authenticate(reopened, 'a', secrets[1]!);
  await assert.rejects(authenticate(reopened, 'b', secrets[3]!), isCode(ErrorCode.REVOKED));
  assert.deepEqual(
    (await reopened.listSites()).map((s) => [s.name, s.revoked, s.credentialHash !== null]),
    [
      ['a', false, true],
      ['b', true, true],
      ['c', false, false],
    ],
  );
});

test('a damaged site registry refuses the start: there is no older copy to fall back to', async (t) => {
  const { dir, store } = await openStore(t);
  await addSite(store, 'a');
  await store.close();
  const fh = await open(`${dir}/sites.fmst`, 'r+');
  await fh.write(Buffer.from([0xff]), 0, 1, 60);
  await fh.close();
  const again = new FileStateStore(dir);
  await assert.rejects(again.open(), (e) => {
    assert.ok(isFedmetaError(e, ErrorCode.STATE_CORRUPT));
    assert.match(e.message, /site registry .* is damaged/);
    return true;
  });
});
