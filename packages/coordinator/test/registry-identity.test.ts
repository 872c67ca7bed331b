import { test } from 'node:test';
import assert from 'node:assert/strict';
import { identityFromCredential } from '@fedmeta/shared';
import { FileStateStore, addSite, authenticate, enroll } from '../src/state/index.js';
import { siteIdentity } from '../src/state/registry.js';
import { tempDir } from './store-helpers.js';

async function openStore(t: Parameters<typeof tempDir>[0]): Promise<FileStateStore> {
  const store = new FileStateStore(await tempDir(t));
  await store.open();
  t.after(() => store.close());
  return store;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

test('enrollment records the identity public key derived from the credential, and never the credential', async (t) => {
  const store = await openStore(t);
  const { token } = await addSite(store, 'branch-1');
  const credential = await enroll(store, 'branch-1', token);
  const rec = await store.getSite('branch-1');
  assert.equal(rec?.identityKey, hex(identityFromCredential(credential).publicKey));
  assert.ok(!JSON.stringify(rec).includes(credential.slice(4)));
});

test('a site enrolled before identity keys were kept gets its key derived at its next connection', async (t) => {
  const store = await openStore(t);
  const { token } = await addSite(store, 'old-site');
  const credential = await enroll(store, 'old-site', token);
  // As the registry of an earlier version left it: no identity key.
  await store.updateSite('old-site', (cur) => {
    const { identityKey: _drop, ...rest } = cur as NonNullable<typeof cur>;
    return rest;
  });
  assert.equal((await store.getSite('old-site'))?.identityKey, undefined);
  const rec = await authenticate(store, 'old-site', credential);
  const key = await siteIdentity(store, rec, credential);
  assert.equal(hex(key), hex(identityFromCredential(credential).publicKey));
  assert.equal((await store.getSite('old-site'))?.identityKey, hex(key), 'stored for the rounds to come');
});
