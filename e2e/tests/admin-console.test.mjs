// The admin console in a real browser (Debian's Chromium driven by playwright-core): a person
// signs in at two real OpenID providers (oidc-provider) and gets one user with two identities;
// an operator signs in to /admin with an admin key, finds the user, sees both identities and
// unlinks one. Screenshots: artifacts/admin-*.png.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { braidBinFromEnv, braidSkipReason, startBraid, tomlString } from '../lib/braid.mjs';
import { Browser, idpLogin } from '../lib/browser.mjs';
import { chromiumSkipReason, clickButton, describePage, launchChromium, navigate, openPage } from '../lib/chromium.mjs';
import { startIdp } from '../lib/idp.mjs';
import { freePort, randomToken } from '../lib/util.mjs';

const SKIP = braidSkipReason() || chromiumSkipReason();
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const APP = 'demo-app';

// A reused database (BRAID_E2E_DATABASE_URL) may hold earlier runs' users: tag this run's.
const TAG = randomToken(6).toLowerCase().replace(/[^a-z0-9]/g, 'x');
const EMAIL = `zoe.${TAG}@example.com`;
const ACCOUNT_A = `zoe-a-${TAG}`;
const ACCOUNT_B = `zoe-b-${TAG}`;

const env = {};

before(
  async () => {
    if (SKIP) return;
    mkdirSync(ARTIFACTS, { recursive: true });
    const bin = braidBinFromEnv();
    const port = await freePort();
    const braidUrl = `http://127.0.0.1:${port}`;
    env.app = { redirectUri: `http://127.0.0.1:${await freePort()}/callback`, secret: randomToken(32) };
    const secrets = { 'idp-a': randomToken(), 'idp-b': randomToken() };
    const client = (id) => ({
      client_id: 'braid',
      client_secret: secrets[id],
      redirect_uris: [`${braidUrl}/auth/connect/${id}/callback`],
      token_endpoint_auth_method: 'client_secret_basic',
    });
    env.idps = {
      'idp-a': await startIdp({ name: 'idp-a', accounts: { [ACCOUNT_A]: { email: EMAIL, email_verified: true, name: 'Zoe' } }, clients: [client('idp-a')] }),
      'idp-b': await startIdp({ name: 'idp-b', accounts: { [ACCOUNT_B]: { email: EMAIL, email_verified: true, name: 'Zoe at B' } }, clients: [client('idp-b')] }),
    };
    env.key = `braid_ak_${randomToken(32)}`;
    const hash = createHash('sha256').update(env.key).digest('hex');
    env.braid = await startBraid({
      bin,
      port,
      resolution: 'automatic',
      providers: Object.fromEntries(
        Object.entries(env.idps).map(([id, idp]) => [id, { issuer: idp.issuer, clientId: 'braid', clientSecret: secrets[id] }]),
      ),
      clients: { [APP]: { redirectUris: [env.app.redirectUri], secret: env.app.secret } },
      extraToml: `[admin]\nkeys = [{ name = "e2e", hash = ${tomlString(hash)} }]`,
    });
    env.browser = await launchChromium();
  },
  { timeout: 120_000 },
);

after(
  async () => {
    await env.browser?.close();
    await env.braid?.stop();
    for (const idp of Object.values(env.idps ?? {})) await idp.close();
  },
  { timeout: 30_000 },
);

/** A sign-in at `provider` as `account`, over plain HTTP, to the app's redirect with a code. */
async function signIn(provider, account) {
  const browser = new Browser();
  const start = new URL(`${env.braid.url}/auth/connect/${provider}`);
  start.search = new URLSearchParams({ client_id: APP, redirect_uri: env.app.redirectUri, state: randomToken(8) }).toString();
  const r1 = await browser.request(start.href);
  await r1.text();
  const callback = `${env.braid.url}/auth/connect/${provider}/callback`;
  const back = await idpLogin(browser, r1.location, { account, until: (loc) => loc.startsWith(callback) });
  const r2 = await browser.request(back);
  await r2.text();
  assert.ok(r2.location?.startsWith(env.app.redirectUri), `signed in at ${provider}: ${r2.status} ${r2.location}`);
}

/** The admin API's view of the users with this email. */
async function usersByEmail(email) {
  const r = await fetch(`${env.braid.url}/admin/api/users?email=${encodeURIComponent(email)}`, {
    headers: { authorization: `Bearer ${env.key}` },
  });
  assert.equal(r.status, 200);
  return (await r.json()).users;
}

const shot = (page, name) => page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });

test('the admin console finds a user, shows their identities and unlinks one', { skip: SKIP, timeout: 120_000 }, async () => {
  await signIn('idp-a', ACCOUNT_A);
  await signIn('idp-b', ACCOUNT_B);
  const [user] = await usersByEmail(EMAIL);
  assert.deepEqual(user.providers.sort(), ['idp-a', 'idp-b'], 'one user with both identities');

  const context = await env.browser.newContext();
  const page = await openPage(context);
  try {
    const signInPage = await navigate(page, () => page.goto(`${env.braid.url}/admin`));
    assert.equal(signInPage.status(), 200);
    assert.match(signInPage.headers()['content-security-policy'] ?? '', /frame-ancestors 'none'/);
    await page.getByRole('heading', { name: 'Admin console' }).waitFor();
    await shot(page, 'admin-1-sign-in');

    await page.getByLabel('Admin key').fill(env.key);
    await clickButton(page, 'Sign in');
    assert.equal(new URL(page.url()).pathname, '/admin/users');
    const cookie = (await context.cookies()).find((c) => c.name === 'braid_admin');
    assert.ok(cookie, 'the console cookie is set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');

    await page.getByLabel('Email, name, user id or external id').fill(`zoe.${TAG}`);
    await clickButton(page, 'Search');
    const row = page.getByRole('row').filter({ hasText: EMAIL });
    assert.equal(await row.count(), 1, 'the search finds the user');
    await shot(page, 'admin-2-search');

    await navigate(page, () => row.getByRole('link').click());
    assert.equal(new URL(page.url()).pathname, `/admin/users/${user.id}`);
    await page.getByRole('heading', { name: 'Identities' }).waitFor();
    const identities = page.getByRole('row').filter({ has: page.getByRole('button', { name: /^Unlink / }) });
    assert.equal(await identities.count(), 2, 'both identities are listed');
    assert.equal(await page.getByRole('cell', { name: ACCOUNT_A, exact: true }).count(), 1);
    assert.equal(await page.getByRole('cell', { name: ACCOUNT_B, exact: true }).count(), 1);
    await shot(page, 'admin-3-user');

    const unlinked = await clickButton(page, 'Unlink idp-b');
    assert.equal(unlinked.status(), 200);
    await page.getByRole('status').filter({ hasText: 'The identity was removed' }).waitFor();
    assert.equal(await page.getByRole('cell', { name: ACCOUNT_B, exact: true }).count(), 0, 'idp-b is gone');
    assert.equal(await page.getByRole('cell', { name: ACCOUNT_A, exact: true }).count(), 1, 'idp-a stays');
    assert.ok(await page.getByRole('cell', { name: 'admin.identity_unlinked' }).count() >= 1, 'the audit event is shown');
    await shot(page, 'admin-4-unlinked');

    const [after] = await usersByEmail(EMAIL);
    assert.deepEqual(after.providers, ['idp-a']);
  } catch (err) {
    await shot(page, 'admin-failure').catch(() => {});
    err.message += `\n${await describePage(page)}`;
    throw err;
  } finally {
    await context.close();
  }
});
