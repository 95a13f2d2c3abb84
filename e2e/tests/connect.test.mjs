// Connecting a second provider while signed in, in a real browser (Debian's Chromium through
// playwright-core) against two real OpenID providers (oidc-provider) and a real SMTP server:
// sign in with provider A, trade the access token for a link ticket, connect provider B in the
// browser, land back at the app with a fresh code for the same user; list the identities,
// unlink one (its mail arrives), and the last one is refused. An identity of another user is
// refused on Braid's page with error code identity_already_linked.
// Screenshots of each page a person sees are saved under e2e/artifacts/.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startApp } from '../lib/app.mjs';
import { braidBinFromEnv, braidSkipReason, startBraid, tomlString } from '../lib/braid.mjs';
import { chromiumSkipReason, clickButton, describePage, launchChromium, navigate, openPage } from '../lib/chromium.mjs';
import { startIdp } from '../lib/idp.mjs';
import { SmtpServer } from '../lib/smtp.mjs';
import { freePort, randomToken } from '../lib/util.mjs';

const SKIP = braidSkipReason() || chromiumSkipReason();
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const APP = 'demo-app';
const TAG = randomToken(6).toLowerCase().replace(/[^a-z0-9]/g, 'x');
const UNLINKED_SUBJECT = 'A sign-in method was removed from your account';
const LINKED_SUBJECT = 'A new sign-in method was added to your account';

const ALICE = { a: `alice-a-${TAG}`, b: `alice-b-${TAG}`, email: `alice-${TAG}@example.com` };
const BOB = { b: `bob-b-${TAG}`, email: `bob-${TAG}@example.com` };

const env = {}; // app, smtp, idpA, idpB, braid, browser, appSecret

before(
  async () => {
    if (SKIP) return;
    mkdirSync(ARTIFACTS, { recursive: true });
    const bin = braidBinFromEnv();
    env.browser = await launchChromium();
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    const [secretA, secretB] = [randomToken(), randomToken()];
    env.app = await startApp();
    env.smtp = await new SmtpServer().start();
    env.idpA = await startIdp({
      name: 'idpa',
      accounts: { [ALICE.a]: { email: ALICE.email, email_verified: true } },
      clients: [{ client_id: 'braid', client_secret: secretA, redirect_uris: [`${publicUrl}/auth/connect/alpha/callback`] }],
    });
    env.idpB = await startIdp({
      name: 'idpb',
      accounts: {
        [ALICE.b]: { email: `alice-${TAG}@elsewhere.example`, email_verified: true },
        [BOB.b]: { email: BOB.email, email_verified: true },
      },
      clients: [{ client_id: 'braid', client_secret: secretB, redirect_uris: [`${publicUrl}/auth/connect/beta/callback`] }],
    });
    env.appSecret = randomToken(32);
    env.braid = await startBraid({
      bin,
      port,
      publicUrl,
      providers: {
        alpha: { issuer: env.idpA.issuer, clientId: 'braid', clientSecret: secretA },
        beta: { issuer: env.idpB.issuer, clientId: 'braid', clientSecret: secretB },
      },
      clients: { [APP]: { redirectUris: [env.app.redirectUri], secret: env.appSecret } },
      extraToml: ['[smtp]', `url = ${tomlString(env.smtp.url)}`, 'from = "Braid E2E <noreply@braid.test>"'].join('\n'),
    });
  },
  { timeout: 120_000 },
);

after(
  async () => {
    await env.browser?.close();
    await env.braid?.stop();
    await env.idpA?.close();
    await env.idpB?.close();
    await env.smtp?.stop();
    await env.app?.close();
  },
  { timeout: 30_000 },
);

const shot = (page, name) => page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });

/**
 * A fresh browser (no IdP session left from an earlier step, so each IdP shows its form) for
 * `fn`; on failure the error says where the browser was and what Braid logged.
 */
async function inBrowser(name, fn) {
  const context = await env.browser.newContext();
  const page = await openPage(context);
  try {
    return await fn(page);
  } catch (err) {
    await shot(page, `failure-connect-${name}`).catch(() => {});
    err.message += `\n(screenshot artifacts/failure-connect-${name}.png)\n${await describePage(page)}`;
    err.message += `\n--- braid (last 3000 chars) ---\n${env.braid?.output().slice(-3000) || '(none)'}`;
    throw err;
  } finally {
    await context.close();
  }
}

/** Goes to `url` (a Braid link), signs in at the IdP's form as `account`; the landing response. */
async function throughIdp(page, url, idp, account) {
  await navigate(page, () => page.goto(url));
  assert.equal(new URL(page.url()).origin, idp.issuer, `the IdP asks to sign in: ${page.url()}`);
  await page.getByLabel(account, { exact: true }).check();
  return clickButton(page, 'Sign in');
}

/** The browser is at the app's redirect URI with `state`: the exchange code. */
function codeAtApp(page, state) {
  const url = new URL(page.url());
  assert.equal(`${url.origin}${url.pathname}`, env.app.redirectUri, `back at the app: ${page.url()}`);
  assert.equal(url.searchParams.get('state'), state);
  assert.equal(url.searchParams.get('iss'), env.braid.url);
  const code = url.searchParams.get('code');
  assert.ok(code, `an exchange code: ${page.url()}`);
  return code;
}

async function api(path, { method = 'GET', token, form, basic } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
  const res = await fetch(`${env.braid.url}${path}`, { method, headers, body: form ? new URLSearchParams(form).toString() : undefined });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

async function exchange(code) {
  const r = await api('/auth/exchange-code', {
    method: 'POST',
    form: { grant_type: 'authorization_code', code, redirect_uri: env.app.redirectUri, client_id: APP, client_secret: env.appSecret },
  });
  assert.equal(r.status, 200, `exchange: ${JSON.stringify(r.body)}`);
  return r.body;
}

async function refresh(refreshToken) {
  return api('/auth/refresh', {
    method: 'POST',
    form: { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: APP, client_secret: env.appSecret },
  });
}

/** A link ticket for the user of `accessToken`, back to the app with `state`. */
async function linkTicket(accessToken, state) {
  const r = await api('/auth/link-tickets', { method: 'POST', token: accessToken, form: { redirect_uri: env.app.redirectUri, state } });
  assert.equal(r.status, 201, `link ticket: ${JSON.stringify(r.body)}`);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  return r.body.ticket;
}

/** Signs in with `provider` as `account` in a fresh browser: the tokens. */
async function signIn(name, provider, idp, account) {
  return inBrowser(name, async (page) => {
    const state = `s-${randomToken(6)}`;
    const start = new URL(`${env.braid.url}/auth/connect/${provider}`);
    start.search = new URLSearchParams({ client_id: APP, redirect_uri: env.app.redirectUri, state }).toString();
    await throughIdp(page, start.href, idp, account);
    return exchange(codeAtApp(page, state));
  });
}

test('connect provider B while signed in with A, list, unlink, last-method guard, mail', { skip: SKIP, timeout: 120_000 }, async () => {
  const first = await signIn('sign-in-a', 'alpha', env.idpA, ALICE.a);
  const me = (await api('/auth/me', { token: first.access_token })).body;

  // The ticket, not the access token, goes into the browser's URL.
  const state = `connect-${randomToken(6)}`;
  const ticket = await linkTicket(first.access_token, state);
  const connectUrl = `${env.braid.url}/auth/connect/beta?link_ticket=${encodeURIComponent(ticket)}`;
  assert.ok(!connectUrl.includes(first.access_token));
  const connected = await inBrowser('connect-b', async (page) => {
    await throughIdp(page, connectUrl, env.idpB, ALICE.b);
    await shot(page, 'connect-back-at-app');
    const code = codeAtApp(page, state);
    // A ticket starts one connect only: the same link again is refused on Braid's page.
    const replay = await navigate(page, () => page.goto(connectUrl));
    assert.equal(replay.status(), 400);
    await page.getByText('expired or was already used').waitFor();
    await shot(page, 'connect-ticket-used');
    return exchange(code);
  });
  const again = (await api('/auth/me', { token: connected.access_token })).body;
  assert.equal(again.id, me.id, 'the connect signs in the same user');

  const listed = await api('/auth/me/identities', { token: first.access_token });
  assert.equal(listed.status, 200);
  assert.deepEqual(listed.body.identities.map((i) => i.provider).sort(), ['alpha', 'beta']);
  await env.smtp.waitFor((m) => m.rcptTo.includes(ALICE.email) && m.subject === LINKED_SUBJECT, 20_000);

  // Unlink B: the tokens obtained through it stop refreshing; the owner is told.
  const beta = listed.body.identities.find((i) => i.provider === 'beta');
  const removed = await api(`/auth/me/identities/${beta.id}`, { method: 'DELETE', token: first.access_token });
  assert.equal(removed.status, 204);
  const dead = await refresh(connected.refresh_token);
  assert.equal(dead.status, 400);
  assert.equal(dead.body.error, 'invalid_grant');
  const mail = await env.smtp.waitFor((m) => m.rcptTo.includes(ALICE.email) && m.subject === UNLINKED_SUBJECT, 20_000);
  assert.match(mail.text, /beta/i);

  // A is now the only way in: refused, as problem+json.
  const alpha = listed.body.identities.find((i) => i.provider === 'alpha');
  const last = await api(`/auth/me/identities/${alpha.id}`, { method: 'DELETE', token: first.access_token });
  assert.equal(last.status, 409);
  assert.equal(last.headers.get('content-type'), 'application/problem+json');
  assert.match(last.body.detail, /last way to sign in/);
  const alive = await refresh(first.refresh_token);
  assert.equal(alive.status, 200, 'the tokens of A live on');
});

test('an identity of another user is refused with identity_already_linked', { skip: SKIP, timeout: 120_000 }, async () => {
  await signIn('bob-sign-in', 'beta', env.idpB, BOB.b);
  const alice = await signIn('alice-sign-in', 'alpha', env.idpA, ALICE.a);
  const ticket = await linkTicket(alice.access_token, `c-${randomToken(6)}`);
  await inBrowser('already-linked', async (page) => {
    const refused = await throughIdp(page, `${env.braid.url}/auth/connect/beta?link_ticket=${encodeURIComponent(ticket)}`, env.idpB, BOB.b);
    assert.equal(refused.status(), 409);
    assert.equal(new URL(page.url()).origin, env.braid.url, 'Braid shows the refusal itself');
    await page.getByRole('heading', { name: 'Could not connect this sign-in' }).waitFor();
    await page.getByText('(Error code: identity_already_linked)').waitFor();
    const h = refused.headers();
    assert.match(h['content-security-policy'] ?? '', /frame-ancestors 'none'/);
    await shot(page, 'connect-already-linked');
  });
  const listed = await api('/auth/me/identities', { token: alice.access_token });
  assert.ok(!listed.body.identities.some((i) => i.subject === BOB.b), 'nothing was connected');
});
