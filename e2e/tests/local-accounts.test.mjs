// Local accounts as a person meets them, in a real browser (Debian's Chromium through
// playwright-core): create an account with an email address and a password, read the
// confirmation code from a real SMTP server, confirm, land at the app with an exchange code that
// redeems for tokens; sign in again; forget the password, reset it by emailed code, and sign in
// with the new one (the old refresh token no longer works).
// Screenshots of each page are saved under e2e/artifacts/local-*.png.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startApp } from '../lib/app.mjs';
import { braidBinFromEnv, braidSkipReason, startBraid, tomlString } from '../lib/braid.mjs';
import { chromiumSkipReason, clickButton, describePage, launchChromium, navigate, openPage } from '../lib/chromium.mjs';
import { SmtpServer } from '../lib/smtp.mjs';
import { freePort, randomToken } from '../lib/util.mjs';

const SKIP = braidSkipReason() || chromiumSkipReason();
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const APP = 'demo-app';
const TAG = randomToken(6).toLowerCase().replace(/[^a-z0-9]/g, 'x');
const EMAIL = `lou-${TAG}@example.com`;
const PASSWORD = `blue kettle ${randomToken(6)} sunrise`;
const NEW_PASSWORD = `green teapot ${randomToken(6)} sunset`;

const env = {}; // app, smtp, braid, browser, appSecret

before(
  async () => {
    if (SKIP) return;
    mkdirSync(ARTIFACTS, { recursive: true });
    env.browser = await launchChromium();
    env.app = await startApp();
    env.smtp = await new SmtpServer().start();
    env.appSecret = randomToken(32);
    env.braid = await startBraid({
      bin: braidBinFromEnv(),
      port: await freePort(),
      providers: {},
      clients: { [APP]: { redirectUris: [env.app.redirectUri], secret: env.appSecret } },
      extraToml: [
        '[smtp]',
        `url = ${tomlString(env.smtp.url)}`,
        'from = "Braid E2E <noreply@braid.test>"',
        '',
        '[local_accounts]',
        'enabled = true',
      ].join('\n'),
    });
  },
  { timeout: 120_000 },
);

after(
  async () => {
    await env.browser?.close();
    await env.braid?.stop();
    await env.smtp?.stop();
    await env.app?.close();
  },
  { timeout: 30_000 },
);

const shot = (page, name) => page.screenshot({ path: `${ARTIFACTS}local-${name}.png`, fullPage: true });

/** The 6-digit code of the `nth` mail to EMAIL with `subject`. */
async function emailedCode(subject, nth = 0) {
  const mails = () => env.smtp.messages.filter((m) => m.rcptTo.includes(EMAIL) && m.subject === subject);
  await env.smtp.waitFor(() => mails().length > nth, 20_000);
  const code = mails()[nth].text.match(/\b(\d{6})\b/)?.[1];
  assert.ok(code, `a 6-digit code in: ${mails()[nth].text}`);
  return code;
}

async function exchange(code) {
  const res = await fetch(`${env.braid.url}/auth/exchange-code`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: env.app.redirectUri,
      client_id: APP,
      client_secret: env.appSecret,
    }).toString(),
  });
  const body = await res.json();
  assert.equal(res.status, 200, `exchange: ${JSON.stringify(body)}`);
  return body;
}

/** The browser is at the app with `state`, Braid's issuer and a code that redeems; the tokens. */
async function assertAtApp(page, state) {
  const url = new URL(page.url());
  assert.equal(`${url.origin}${url.pathname}`, env.app.redirectUri, `back at the app: ${page.url()}`);
  assert.equal(url.searchParams.get('state'), state);
  assert.equal(url.searchParams.get('iss'), env.braid.url);
  const tokens = await exchange(url.searchParams.get('code'));
  const me = await fetch(`${env.braid.url}/auth/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } }).then((r) => r.json());
  assert.equal(me.emails[0].email, EMAIL);
  assert.equal(me.emails[0].verified, true);
  return tokens;
}

function startUrl(path, state) {
  const u = new URL(`${env.braid.url}${path}`);
  u.search = new URLSearchParams({ client_id: APP, redirect_uri: env.app.redirectUri, state }).toString();
  return u.href;
}

/** Braid's pages may not be framed. */
function assertNotFramable(response) {
  const h = response.headers();
  assert.match(h['content-security-policy'] ?? '', /frame-ancestors 'none'/);
  assert.equal(h['x-frame-options'], 'DENY');
}

function browserTest(name, fn) {
  test(name, { skip: SKIP, timeout: 120_000 }, async () => {
    const context = await env.browser.newContext();
    const page = await openPage(context);
    try {
      await fn({ page });
    } catch (err) {
      await shot(page, 'failure').catch(() => {});
      err.message += `\n(screenshot artifacts/local-failure.png)\n${await describePage(page)}`;
      err.message += `\n--- braid (last 3000 chars) ---\n${env.braid?.output().slice(-3000) || '(none)'}`;
      throw err;
    } finally {
      await context.close();
    }
  });
}

const state = () => `state-${randomToken(8)}`;

browserTest('sign up, confirm with the emailed code, back at the app; sign in; reset the password', async ({ page }) => {
  // Sign-up, first with a common password.
  const s1 = state();
  const signUp = await navigate(page, () => page.goto(startUrl('/auth/local/sign-up', s1)));
  assert.equal(signUp.status(), 200);
  assertNotFramable(signUp);
  await page.getByRole('heading', { name: 'Create an account' }).waitFor();
  await shot(page, 'sign-up');
  await page.getByLabel('Email address').fill(EMAIL);
  await page.getByLabel('Password').fill('iloveyou');
  const weak = await clickButton(page, 'Create account');
  assert.equal(weak.status(), 400);
  await page.getByRole('alert').getByText(/most common passwords/).waitFor();
  await shot(page, 'sign-up-common-password');

  await page.getByLabel('Password').fill(PASSWORD);
  const toVerify = await clickButton(page, 'Create account');
  assert.equal(toVerify.status(), 200);
  await page.getByRole('heading', { name: 'Confirm your email address' }).waitFor();
  assert.equal(await page.getByLabel('Email address').inputValue(), EMAIL);
  await shot(page, 'verify-email');

  const code = await emailedCode('Confirm your email address');
  await page.getByLabel('Code from the email').fill(code);
  await page.getByLabel('Your password').fill(PASSWORD);
  await clickButton(page, 'Confirm and sign in');
  await assertAtApp(page, s1);

  // Sign in again.
  const s2 = state();
  await navigate(page, () => page.goto(startUrl('/auth/local/sign-in', s2)));
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel('Email address').fill(EMAIL);
  await page.getByLabel('Password').fill('not my password');
  const wrong = await clickButton(page, 'Sign in');
  assert.equal(wrong.status(), 400);
  await page.getByRole('alert').getByText('The email address or the password is not right.').waitFor();
  await shot(page, 'sign-in-wrong-password');
  await page.getByLabel('Password').fill(PASSWORD);
  await clickButton(page, 'Sign in');
  const before = await assertAtApp(page, s2);

  // Forgot the password: a code by mail, a new password, every refresh token revoked.
  const s3 = state();
  await navigate(page, () => page.goto(startUrl('/auth/local/sign-in', s3)));
  await navigate(page, () => page.getByRole('link', { name: 'Forgot your password?' }).click());
  await page.getByRole('heading', { name: 'Reset your password' }).waitFor();
  await shot(page, 'reset');
  await page.getByLabel('Email address').fill(EMAIL);
  await clickButton(page, 'Send a code');
  await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
  await shot(page, 'reset-confirm');
  const resetCode = await emailedCode('Reset your password');
  await page.getByLabel('Code from the email').fill(resetCode);
  await page.getByLabel('New password').fill(NEW_PASSWORD);
  await clickButton(page, 'Change password');
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByText(/Your password was changed/).waitFor();
  await shot(page, 'reset-done');

  const refresh = await fetch(`${env.braid.url}/auth/refresh`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: before.refresh_token, client_id: APP, client_secret: env.appSecret }).toString(),
  });
  assert.equal(refresh.status, 400, 'the refresh token from before the reset is revoked');

  await page.getByLabel('Email address').fill(EMAIL);
  await page.getByLabel('Password').fill(NEW_PASSWORD);
  await clickButton(page, 'Sign in');
  await assertAtApp(page, s3);
});
