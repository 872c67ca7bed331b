import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';
import { addSite, revoke } from '../src/state/registry.js';
import { ADMIN_TOKEN, connect, hello, onOffers, quadraticUpdate, sendUpdate, startTest, waitFor } from './transport-fixtures.js';

/**
 * The dashboard in a real headless Chromium (Debian's package, driven by playwright-core; nothing is downloaded):
 * a coordinator with three socket sites runs two rounds and releases a version, and the page, given the admin
 * token, shows them. A screenshot is left in out/dashboard.png.
 */
const CHROMIUM = process.env['FEDMETA_CHROMIUM'] ?? '/usr/bin/chromium';
const SCREENSHOT = fileURLToPath(new URL('../../../out/dashboard.png', import.meta.url));

async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    assert.fail(`no Chromium at ${CHROMIUM}: install Debian's package (apt-get install -y chromium) or set FEDMETA_CHROMIUM to a Chromium binary`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
}

test('the dashboard asks for the token, then shows sites, rounds, the released version and the privacy budget', { timeout: 90_000 }, async (t) => {
  const { c } = await startTest(t);
  for (const name of ['branch-lyon', 'branch-oslo', 'branch-porto']) {
    const { token } = await addSite(c.store, name);
    const { socket } = await connect(c.url, hello(name, { kind: 'enroll', token }), t);
    onOffers(socket, (offer, params) => void sendUpdate(socket, quadraticUpdate(offer, params, 1)));
  }
  await addSite(c.store, 'branch-new');
  await addSite(c.store, 'branch-old');
  await revoke(c.store, 'branch-old');
  await waitFor(() => c.hub.online().length === 3, 4000, 'sites online');
  await c.engine.runRounds(2);
  await c.engine.release(2);

  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1200, height: 1300 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  const requested: string[] = [];
  page.on('request', (r) => requested.push(r.url()));

  const res = await page.goto(`${c.url}/admin`);
  assert.equal(res?.status(), 200);
  assert.equal(new URL(page.url()).pathname, '/admin/', '/admin redirects to the page');
  assert.match(res?.headers()['content-security-policy'] ?? '', /default-src 'none'/);
  assert.ok(await page.isVisible('#login-form'));
  assert.ok(await page.isHidden('#dash'), 'nothing is shown before the token is given');

  // A wrong token is refused and the form comes back.
  await page.fill('#token', 'not-the-admin-token-at-all');
  await page.click('#login-form button');
  await page.waitForFunction("(document.getElementById('login-error')?.textContent ?? '').includes('refused')");
  assert.ok(await page.isVisible('#login-form'));
  // The browser logs the refused calls themselves; anything else logged is a problem.
  const refused = problems.splice(0).filter((p) => !/status of 401/.test(p));
  assert.deepEqual(refused, []);

  await page.fill('#token', ADMIN_TOKEN);
  await page.click('#login-form button');
  await page.waitForSelector('#dash[data-loaded="true"]', { timeout: 10_000 });

  assert.equal(await page.textContent('#released'), 'v2');
  assert.equal(await page.textContent('#version'), 'v2');
  assert.equal(await page.textContent('#online'), '3');
  assert.equal(await page.textContent('#privacy'), 'off');
  assert.match((await page.textContent('#coord')) ?? '', /^coordinator \S+ · up /);

  const sites = await page.$$eval('#sites tbody tr', (rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)));
  const state = new Map(sites.map((r) => [r[0], r[1]]));
  assert.equal(state.get('branch-lyon'), 'online');
  assert.equal(state.get('branch-porto'), 'online');
  assert.equal(state.get('branch-old'), 'revoked');
  assert.equal(state.get('branch-new'), 'awaiting enrollment');

  const rounds = await page.$$eval('#rounds tbody tr', (rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)));
  assert.equal(rounds.length, 2);
  assert.deepEqual(rounds.map((r) => [r[0], r[1], r[2], r[3]]), [
    ['1', 'committed', 'v1 → v2', '3 / 3'],
    ['0', 'committed', 'v0 → v1', '3 / 3'],
  ]);
  assert.match(rounds[0]![5] ?? '', /^\d+\.\d{4}$/, 'the round\'s mean query loss');
  assert.equal(await page.$$eval('#chart polyline.loss', (p) => p.length), 1, 'the chart draws the loss over rounds');
  assert.equal(await page.$$eval('#chart circle.loss', (p) => p.length), 2);

  // The token travels in a header only.
  assert.ok(requested.every((u) => !u.includes(ADMIN_TOKEN)), 'the token is never in a URL');
  assert.ok(requested.every((u) => u.startsWith(c.url)), 'no request leaves the coordinator');
  assert.deepEqual(problems, [], 'no script error and no CSP violation');

  await mkdir(dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  assert.ok(existsSync(SCREENSHOT));

  // "Forget token" returns to the form and shows nothing.
  await page.click('#logout');
  assert.ok(await page.isVisible('#login-form'));
  assert.ok(await page.isHidden('#dash'));
});
