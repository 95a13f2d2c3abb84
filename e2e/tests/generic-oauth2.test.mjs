// Any OAuth 2.0 provider by configuration (`preset = "oauth2"`): a real non-OIDC OAuth 2.0
// server (e2e/lib/oauth2-server.mjs, GitHub-shaped: /api/user and /api/user/emails), the braid
// binary, and Chromium. The person signs in at the server's page and lands at the app with an
// exchange code; the app redeems it and /auth/me shows the mapped claims. A profile without the
// mapped subject is refused: the app gets an error (invalid_provider_response), never a 5xx.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startApp } from '../lib/app.mjs';
import { braidBinFromEnv, braidSkipReason, startBraid, tomlString } from '../lib/braid.mjs';
import { chromiumSkipReason, clickButton, describePage, launchChromium, navigate, openPage } from '../lib/chromium.mjs';
import { startOAuth2Server } from '../lib/oauth2-server.mjs';
import { freePort, randomToken } from '../lib/util.mjs';

const SKIP = braidSkipReason() || chromiumSkipReason();
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const APP = 'demo-app';
const PROVIDER = 'acme';
// A per-run tag keeps subjects and addresses apart in a reused database.
const TAG = randomToken(6).toLowerCase().replace(/[^a-z0-9]/g, 'x');

const ADA = {
  id: randomInt(1_000_000, 2 ** 47),
  login: `ada-${TAG}`,
  name: 'Ada Lovelace',
  avatar_url: 'https://avatars.example/ada.png',
  emails: [
    { email: `ada-${TAG}@example.com`, verified: true, primary: true },
    { email: `old-ada-${TAG}@example.com`, verified: false, primary: false },
  ],
};
const NO_ID = { login: `ghost-${TAG}`, name: 'No Id', emails: [] };

const env = {};

before(
  async () => {
    if (SKIP) return;
    mkdirSync(ARTIFACTS, { recursive: true });
    const bin = braidBinFromEnv();
    env.browser = await launchChromium();
    const port = await freePort();
    const braidUrl = `http://127.0.0.1:${port}`;
    const client = { client_id: 'braid', client_secret: randomToken(), redirect_uris: [`${braidUrl}/auth/connect/${PROVIDER}/callback`] };
    env.server = await startOAuth2Server({ client, accounts: { ada: ADA, 'no-id': NO_ID } });
    env.app = await startApp();
    env.appSecret = randomToken(32);
    const s = env.server.url;
    env.braid = await startBraid({
      bin,
      port,
      providers: {},
      clients: { [APP]: { redirectUris: [env.app.redirectUri], secret: env.appSecret } },
      extraToml: [
        `[federated_login.providers.${PROVIDER}]`,
        'preset = "oauth2"',
        'display_name = "Acme"',
        'client_id = "braid"',
        `client_secret = ${tomlString(client.client_secret)}`,
        `authorization_url = ${tomlString(`${s}/login/oauth/authorize`)}`,
        `token_url = ${tomlString(`${s}/login/oauth/access_token`)}`,
        `userinfo_url = [${tomlString(`${s}/api/user`)}, ${tomlString(`${s}/api/user/emails`)}]`,
        'scopes = ["read:user", "user:email"]',
        'scope_separator = ","',
        'trust_email = true',
        '',
        `[federated_login.providers.${PROVIDER}.authorization_params]`,
        'allow_signup = "false"',
        '',
        `[federated_login.providers.${PROVIDER}.mapping]`,
        'subject = "/0/id"',
        'email = "/1/*/email"',
        'email_verified = "/1/*/verified"',
        'name = "/0/name"',
        'username = "/0/login"',
        'picture = "/0/avatar_url"',
      ].join('\n'),
    });
  },
  { timeout: 90_000 },
);

after(
  async () => {
    await env.browser?.close();
    await env.braid?.stop();
    await env.server?.close();
    await env.app?.close();
  },
  { timeout: 30_000 },
);

const shot = (page, name) => page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });

/** Starts the sign-in for the app and picks `account` at the OAuth 2.0 server's page. */
async function signIn(page, account, state) {
  const start = new URL(`${env.braid.url}/auth/connect/${PROVIDER}`);
  start.search = new URLSearchParams({ client_id: APP, redirect_uri: env.app.redirectUri, state }).toString();
  await navigate(page, () => page.goto(start.href));
  assert.equal(new URL(page.url()).origin, env.server.url, `at the OAuth 2.0 server: ${page.url()}`);
  await page.getByRole('heading', { name: 'Sign in to Acme' }).waitFor();
  await page.getByLabel(account, { exact: true }).check();
  return page;
}

async function withPage(name, fn) {
  const context = await env.browser.newContext();
  const page = await openPage(context);
  try {
    await fn(page);
  } catch (err) {
    await shot(page, `failure-${name}`).catch(() => {});
    err.message += `\n${await describePage(page)}`;
    throw err;
  } finally {
    await context.close();
  }
}

test('the generic OAuth 2.0 provider signs in to the app with the mapped claims', { skip: SKIP, timeout: 60_000 }, async () => {
  await withPage('generic-oauth2', async (page) => {
    const state = randomToken(16);
    await signIn(page, 'ada', state);
    await shot(page, 'generic-oauth2-provider-login');
    const request = env.server.requests.at(-1);
    assert.equal(request.scope, 'read:user,user:email', 'scopes joined with the configured separator');
    assert.equal(request.allow_signup, 'false', 'the configured authorization parameter is sent');
    assert.equal(request.code_challenge_method, 'S256');

    const landed = await clickButton(page, 'Sign in');
    assert.equal(landed.status(), 200);
    const url = new URL(page.url());
    assert.equal(`${url.origin}${url.pathname}`, env.app.redirectUri, `back at the app: ${page.url()}`);
    assert.equal(url.searchParams.get('state'), state);
    assert.equal(url.searchParams.get('iss'), env.braid.publicUrl);
    await shot(page, 'generic-oauth2-app');
    assert.deepEqual(env.server.tokenRequests.at(-1), { method: 'client_secret_basic', hadVerifier: true });

    const res = await fetch(`${env.braid.url}/auth/exchange-code`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: url.searchParams.get('code'),
        redirect_uri: env.app.redirectUri,
        client_id: APP,
        client_secret: env.appSecret,
      }).toString(),
    });
    const tokens = await res.json();
    assert.equal(res.status, 200, `exchange: ${JSON.stringify(tokens)}`);
    const meRes = await fetch(`${env.braid.url}/auth/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    const me = await meRes.json();
    assert.equal(meRes.status, 200, JSON.stringify(me));
    const identity = me.identities.find((i) => i.provider === PROVIDER);
    assert.ok(identity, `an ${PROVIDER} identity: ${JSON.stringify(me)}`);
    assert.equal(identity.subject, String(ADA.id), 'the subject is the mapped numeric id, never the login');
    assert.equal(identity.email, ADA.emails[0].email);
    assert.equal(identity.email_verified, true);
    assert.equal(me.display_name, 'Ada Lovelace');
    assert.deepEqual(
      me.emails.map((e) => [e.email, e.verified]),
      [[ADA.emails[0].email, true]],
      'only the verified entry becomes a verified address of the user',
    );
  });
});

test('a profile without the mapped subject refuses the sign-in with a clear error, not a 5xx', { skip: SKIP, timeout: 60_000 }, async () => {
  await withPage('generic-oauth2-no-subject', async (page) => {
    const state = randomToken(16);
    await signIn(page, 'no-id', state);
    await clickButton(page, 'Sign in');
    const callback = page.navigations.find((n) => n.includes(`/auth/connect/${PROVIDER}/callback`));
    assert.match(callback ?? '', / -> 303 /, `Braid answers the callback with a redirect, not a 5xx: ${callback}`);
    const url = new URL(page.url());
    assert.equal(`${url.origin}${url.pathname}`, env.app.redirectUri, `the app is told: ${page.url()}`);
    assert.equal(url.searchParams.get('state'), state);
    assert.equal(url.searchParams.get('error_code'), 'invalid_provider_response');
    assert.equal(url.searchParams.get('code'), null, 'no exchange code');
    await shot(page, 'generic-oauth2-no-subject');
    assert.match(env.braid.output(), /no subject at the mapped path/, 'the log says why');
  });
});
