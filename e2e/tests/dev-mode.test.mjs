// `braid serve --dev` as a newcomer meets it, in a real browser (Debian's Chromium through
// playwright-core): one command, then the demo app at /dev/app. Sign in with development
// provider A as a verified email (a new user), then with provider B and the same verified
// email (linked: the same user, two identities), then unverified (a new user). Every page
// carries the "not for production" banner, and the log says so too. Screenshots of each page
// are saved under e2e/artifacts/ (dev-mode-*.png).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { braidBinFromEnv, braidSkipReason, startBraid } from '../lib/braid.mjs';
import { chromiumSkipReason, clickButton, describePage, launchChromium, navigate, openPage } from '../lib/chromium.mjs';
import { freePort } from '../lib/util.mjs';

const SKIP = braidSkipReason() || chromiumSkipReason();
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const BANNER = 'not for production';

const env = {}; // braid, browser

before(
  async () => {
    if (SKIP) return;
    mkdirSync(ARTIFACTS, { recursive: true });
    env.browser = await launchChromium();
    env.braid = await startBraid({ bin: braidBinFromEnv(), port: await freePort(), dev: true });
  },
  { timeout: 60_000 },
);

after(async () => {
  await env.browser?.close();
  await env.braid?.stop();
});

const shot = (page, name) => page.screenshot({ path: `${ARTIFACTS}dev-mode-${name}.png`, fullPage: true });

/** Runs `steps` with a page; on failure, says where the browser was and saves a screenshot. */
async function withPage(context, name, steps) {
  const page = await openPage(context);
  try {
    await steps(page);
  } catch (err) {
    await shot(page, `failure-${name}`).catch(() => {});
    err.message += `\n(screenshot artifacts/dev-mode-failure-${name}.png)\n${await describePage(page)}\n--- braid output ---\n${env.braid.output().slice(-4000)}`;
    throw err;
  }
}

/** From the demo app: a provider's button, its sign-in page (email, verified), back at the demo. */
async function signIn(page, { provider, email, verified, name }) {
  await navigate(page, () => page.getByRole('link', { name: `Sign in with ${provider}` }).first().click());
  assert.match(new URL(page.url()).pathname, /^\/dev\/idp\/dev-[ab]\/authorize$/);
  assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), provider);
  assert.ok((await page.locator('body').innerText()).includes(BANNER), 'banner on the provider page');
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('The provider has verified this email').setChecked(verified);
  await shot(page, `${name}-provider`);
  const landed = await clickButton(page, 'Sign in');
  assert.equal(landed.status(), 200);
  assert.equal(new URL(page.url()).pathname, '/dev/app/callback');
  await shot(page, `${name}-signed-in`);
  const text = await page.locator('body').innerText();
  assert.ok(text.includes(BANNER), 'banner on the demo page');
  assert.match(text, /POST \/auth\/exchange-code → 200/);
  assert.match(text, /GET \/auth\/me → 200/);
  const me = JSON.parse(await page.locator('#me').innerText());
  assert.equal(JSON.parse(await page.locator('#access-claims').innerText()).sub, me.id);
  assert.equal(JSON.parse(await page.locator('#access-header').innerText()).typ, 'at+jwt');
  return { me, text };
}

test('braid serve --dev: the demo app shows automatic linking by a verified email', { skip: SKIP, timeout: 90_000 }, async () => {
  assert.match(env.braid.output(), /development mode: not for production/);
  const context = await env.browser.newContext();
  try {
    await withPage(context, 'linking', async (page) => {
      const home = await navigate(page, () => page.goto(`${env.braid.url}/`));
      assert.equal(home.status(), 200);
      assert.equal(new URL(page.url()).pathname, '/dev/app');
      assert.ok((await page.locator('body').innerText()).includes(BANNER));
      await shot(page, 'home');

      const first = await signIn(page, { provider: 'Dev provider A', email: 'alice@example.com', verified: true, name: '1-a-verified' });
      assert.equal(first.me.identities.length, 1);
      assert.deepEqual(first.me.emails.map((e) => [e.email, e.verified]), [['alice@example.com', true]]);

      const second = await signIn(page, { provider: 'Dev provider B', email: 'alice@example.com', verified: true, name: '2-b-verified' });
      assert.equal(second.me.id, first.me.id, 'linked to the same user');
      assert.deepEqual(second.me.identities.map((i) => i.provider).sort(), ['dev-a', 'dev-b']);
      assert.match(second.text, /The same user as the previous sign-in/);

      const third = await signIn(page, { provider: 'Dev provider B', email: 'alice@example.com', verified: false, name: '3-b-unverified' });
      assert.notEqual(third.me.id, first.me.id, 'an unverified email links to no one');
      assert.equal(third.me.identities.length, 1);
      assert.match(third.text, /A different user from the previous sign-in/);
    });
  } finally {
    await context.close();
  }
});

test('braid serve --dev: the throw-away database is removed when Braid stops', { skip: SKIP, timeout: 30_000 }, async () => {
  const braid = await startBraid({ bin: braidBinFromEnv(), port: await freePort(), dev: true });
  let file;
  try {
    const database = braid
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l))
      .find((l) => l.fields?.message === 'database');
    file = database?.fields?.backend === 'sqlite' ? database.fields.location : undefined;
    assert.ok(file && existsSync(file), `a temp database in the log: ${braid.output().slice(-2000)}`);
  } catch (e) {
    await braid.stop();
    throw e;
  }
  const stopped = await braid.stop();
  assert.equal(stopped.code, 0);
  assert.equal(existsSync(file), false);
});
