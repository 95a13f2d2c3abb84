// The manual link as a person meets it, in a real browser (Debian's Chromium through
// playwright-core): a sign-in whose verified email matches an imported user goes to the select
// page, the person picks the account, proves it with a code sent to a real SMTP server or with
// the account's (bcrypt) password, and lands back at the app with an exchange code.
//
// Two Braid instances share one database (BRAID_E2E_DATABASE_URL, else one SQLite file) and
// the first one's public URL, as behind a load balancer; most flows use only the first.
// BRAID_E2E_SESSIONS=database|redis keeps the link state in a server-side session (Redis at
// BRAID_E2E_REDIS_URL, default redis://127.0.0.1:6379, shared by both instances); unset, it
// travels in the sealed link cookie.
// Screenshots of each page are saved under e2e/artifacts/.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import bcrypt from 'bcryptjs';
import { startApp } from '../lib/app.mjs';
import { braidBinFromEnv, braidSkipReason, importUsers, startBraid, tomlString } from '../lib/braid.mjs';
import { chromiumSkipReason, clickButton, describePage, launchChromium, navigate, openPage } from '../lib/chromium.mjs';
import { startIdp } from '../lib/idp.mjs';
import { SmtpServer } from '../lib/smtp.mjs';
import { freePort, randomToken } from '../lib/util.mjs';

const SKIP = braidSkipReason() || chromiumSkipReason();

const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const APP = 'demo-app';
const SELECT_PATH = '/auth/connect/link/select';
const VERIFY_PATH = '/auth/connect/link/verify';
const CODE_SUBJECT = 'Your verification code';
const LINKED_SUBJECT = 'A new sign-in method was added to your account';
const ENDED_TITLE = 'This sign-in has ended';
const SESSIONS = process.env.BRAID_E2E_SESSIONS ?? '';
if (!['', 'database', 'redis'].includes(SESSIONS)) throw new Error(`BRAID_E2E_SESSIONS=${SESSIONS}: expected database or redis`);
const REDIS_URL = process.env.BRAID_E2E_REDIS_URL || 'redis://127.0.0.1:6379';
/** The cookie that carries the link state: the session's, or the sealed link cookie. */
const STATE_COOKIE = SESSIONS ? 'braid_session' : 'braid_link';
const SESSIONS_TOML = SESSIONS
  ? ['[sessions]', 'enabled = true', `store = ${tomlString(SESSIONS)}`, ...(SESSIONS === 'redis' ? [`redis_url = ${tomlString(REDIS_URL)}`] : [])]
  : [];
const TAG = randomToken(6).toLowerCase().replace(/[^a-z0-9]/g, 'x');

/**
 * One imported user per scenario and the IdP account that matches it by verified email; with
 * `password`, the user has one (imported as a bcrypt hash). The mask keeps the first letter of
 * the name (`a***@e***.com` for ann).
 */
function person(name, { password = false } = {}) {
  return {
    account: `${name}-${TAG}`,
    email: `${name}-${TAG}@example.com`,
    externalId: `ext-${name}-${TAG}`,
    password: password ? `pw-${randomToken(12)}` : undefined,
    mask: `${name[0]}***@e***.com`,
  };
}

const PEOPLE = {
  code: person('ann'),
  password: person('paul', { password: true }),
  create: person('cid'),
  cancel: person('cay'),
  ended: person('eve', { password: true }),
  conflict: person('cora', { password: true }),
  twoInstances: person('tess'),
};

const env = {}; // app, smtp, idp, first, second, browser

before(
  async () => {
    if (SKIP) return;
    mkdirSync(ARTIFACTS, { recursive: true });
    const bin = braidBinFromEnv();
    env.browser = await launchChromium();
    const [firstPort, secondPort] = [await freePort(), await freePort()];
    const publicUrl = `http://127.0.0.1:${firstPort}`;
    const idpSecret = randomToken();
    env.app = await startApp();
    env.smtp = await new SmtpServer().start();
    env.idp = await startIdp({
      name: 'idp',
      accounts: Object.fromEntries(Object.values(PEOPLE).map((p) => [p.account, { email: p.email, email_verified: true }])),
      clients: [{ client_id: 'braid', client_secret: idpSecret, redirect_uris: [`${publicUrl}/auth/connect/idp/callback`] }],
    });
    const config = {
      bin,
      publicUrl,
      resolution: 'manual',
      providers: { idp: { issuer: env.idp.issuer, clientId: 'braid', clientSecret: idpSecret } },
      clients: { [APP]: { redirectUris: [env.app.redirectUri], secret: randomToken(32) } },
      extraToml: ['[smtp]', `url = ${tomlString(env.smtp.url)}`, 'from = "Braid E2E <noreply@braid.test>"', ...SESSIONS_TOML].join('\n'),
    };
    env.appSecret = config.clients[APP].secret;
    env.first = await startBraid({ ...config, port: firstPort });
    env.second = await startBraid({ ...config, port: secondPort, databaseUrl: env.first.databaseUrl });
    // Cost 8 keeps the debug build's check quick; Braid accepts bcrypt costs 4-16.
    await importUsers(
      env.first,
      Object.values(PEOPLE).map((p) => ({
        external_id: p.externalId,
        display_name: p.account,
        emails: [{ email: p.email, verified: true }],
        ...(p.password ? { password_hash: bcrypt.hashSync(p.password, 8) } : {}),
      })),
    );
  },
  { timeout: 120_000 },
);

after(
  async () => {
    await env.browser?.close();
    await env.first?.stop();
    await env.second?.stop();
    await env.idp?.close();
    await env.smtp?.stop();
    await env.app?.close();
  },
  { timeout: 30_000 },
);

// ---------------------------------------------------------------------------------------------
// The browser and its pages.

const shot = (page, name) => page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });

const pathOf = (page) => new URL(page.url()).pathname;

/** The same path and query at another instance. */
const at = (instance, url) => {
  const u = new URL(url);
  return `${instance.url}${u.pathname}${u.search}`;
};

/** Braid's HTML pages may not be framed: CSP frame-ancestors 'none' and X-Frame-Options DENY. */
function assertNotFramable(response) {
  const h = response.headers();
  assert.match(h['content-security-policy'] ?? '', /frame-ancestors 'none'/, `CSP of ${response.url()}`);
  assert.equal(h['x-frame-options'], 'DENY', `X-Frame-Options of ${response.url()}`);
}

/** The link state's cookie is HttpOnly (and Lax): no script on any page can read or send it away. */
async function assertLinkCookieHttpOnly(context) {
  const cookies = await context.cookies();
  const cookie = cookies.find((c) => c.name === STATE_COOKIE);
  assert.ok(cookie, `the ${STATE_COOKIE} cookie is set`);
  assert.equal(cookie.httpOnly, true, `the ${STATE_COOKIE} cookie is HttpOnly`);
  assert.equal(cookie.sameSite, 'Lax');
  if (SESSIONS) assert.ok(!cookies.some((c) => c.name === 'braid_link'), 'no link cookie beside the session');
}

/**
 * Starts a sign-in at `instance` for the app, signs in at the IdP's form as a person would and
 * lands on the select page; checks that page. Returns nothing; the page is on the select page.
 */
async function signInToSelect(page, who, { instance = env.first, state }) {
  const start = new URL(`${instance.url}/auth/connect/idp`);
  start.search = new URLSearchParams({ client_id: APP, redirect_uri: env.app.redirectUri, state }).toString();
  await navigate(page, () => page.goto(start.href));
  assert.equal(new URL(page.url()).origin, env.idp.issuer, 'the IdP asks to sign in');
  await page.getByLabel(who.account, { exact: true }).check();
  const select = await clickButton(page, 'Sign in');
  assert.equal(pathOf(page), SELECT_PATH, `after the IdP: ${page.url()}`);
  assert.equal(select.status(), 200);
  assertNotFramable(select);
  await assertLinkCookieHttpOnly(page.context());

  await page.getByRole('heading', { name: /your account\?$/ }).waitFor();
  await page.getByRole('radio', { name: new RegExp(`^${escapeRegExp(who.mask)}`) }).waitFor();
  await assertNoFullAddress(page, select, who);
}

const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The page's HTML, as sent and as the browser holds it, never contains `who`'s full address. */
async function assertNoFullAddress(page, response, who) {
  const email = who.email.toLowerCase();
  assert.ok(!(await response.text()).toLowerCase().includes(email), `${response.url()} shows the full address`);
  assert.ok(!(await page.content()).toLowerCase().includes(email), `the DOM of ${page.url()} has the full address`);
}

/** Checks the verify page the browser is on. */
async function assertVerifyPage(page, response, who) {
  assert.equal(pathOf(page), VERIFY_PATH, `on the verify page: ${page.url()}`);
  assert.equal(response.status(), 200);
  assertNotFramable(response);
  await page.getByRole('heading', { name: 'Prove it is your account' }).waitFor();
  await assertNoFullAddress(page, response, who);
}

/** Clicks Continue on the select page and checks the verify page it leads to. */
const continueToVerify = async (page, who) => assertVerifyPage(page, await clickButton(page, 'Continue'), who);

/** The page shows `problem` (role=alert) after a 400 answer to its own form. */
async function assertProblem(page, response, problem) {
  assert.equal(response.status(), 400);
  assertNotFramable(response);
  assert.equal((await page.getByRole('alert').textContent()).trim(), problem);
}

/** The 6-digit code Braid emailed to `who`, the `nth` one (0 = the first) of this run. */
async function emailedCode(who, nth = 0) {
  const codes = () => env.smtp.messages.filter((m) => m.rcptTo.includes(who.email) && m.subject === CODE_SUBJECT);
  await env.smtp.waitFor(() => codes().length > nth, 20_000);
  const mail = codes()[nth];
  const code = mail.text.match(/\b(\d{6})\b/)?.[1];
  assert.ok(code, `a 6-digit code in: ${mail.text}`);
  return code;
}

/** A code that is not `code`. */
const otherCode = (code) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

/** Asserts the browser is at the app's redirect URI with `state` and Braid's issuer; its query. */
function assertAtApp(page, state) {
  const url = new URL(page.url());
  assert.equal(`${url.origin}${url.pathname}`, env.app.redirectUri, `the browser is back at the app: ${page.url()}`);
  assert.equal(url.searchParams.get('state'), state, 'the app gets its state back');
  return url.searchParams;
}

async function exchange(instance, code) {
  const res = await fetch(`${instance.url}/auth/exchange-code`, {
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

async function me(instance, accessToken) {
  const res = await fetch(`${instance.url}/auth/me`, { headers: { authorization: `Bearer ${accessToken}` } });
  const body = await res.json();
  assert.equal(res.status, 200, `/auth/me: ${JSON.stringify(body)}`);
  return body;
}

/**
 * The app's side of a finished sign-in: the browser is at the redirect URI with a code that
 * redeems at `instance` for tokens of the user that has `who`'s IdP identity. Returns /auth/me.
 */
async function assertSignedIn(page, who, state, instance = env.first) {
  const query = assertAtApp(page, state);
  assert.equal(query.get('iss'), env.first.publicUrl);
  assert.ok(query.get('code'), `an exchange code: ${page.url()}`);
  const tokens = await exchange(instance, query.get('code'));
  const profile = await me(env.first, tokens.access_token);
  assert.ok(
    profile.identities.some((i) => i.provider === 'idp' && i.subject === who.account),
    `the IdP identity is linked: ${JSON.stringify(profile)}`,
  );
  return profile;
}

/** The owner of `who`'s account is told that a sign-in method was added. */
const linkedNotice = (who) => env.smtp.waitFor((m) => m.rcptTo.includes(who.email) && m.subject === LINKED_SUBJECT, 20_000);

/** Checks the "This sign-in has ended" page the browser is on. */
async function assertEnded(page, response) {
  assert.equal(response.status(), 400, `ended page status at ${page.url()}`);
  assertNotFramable(response);
  await page.getByRole('heading', { name: ENDED_TITLE }).waitFor();
}

/**
 * Browser contexts enforce the pages' Content-Security-Policy, as every person's browser does:
 * Braid's `form-action` must let a form's 303 reach the app's redirect URI (another origin).
 */
const CONTEXT_OPTIONS = {};

/**
 * A test with its own browser context. On failure the error carries where the browser was,
 * what the page said, the browser console, Braid's output and the IdP's events, and a
 * screenshot is saved as artifacts/failure-*.png.
 */
function browserTest(name, fn, { contextOptions = CONTEXT_OPTIONS } = {}) {
  test(name, { skip: SKIP, timeout: 120_000 }, async () => {
    const context = await env.browser.newContext(contextOptions);
    const page = await openPage(context);
    try {
      await fn({ context, page });
    } catch (err) {
      const slug = name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60);
      for (const [i, p] of context.pages().entries()) {
        const file = `failure-${slug}${i ? `-tab${i + 1}` : ''}`;
        await shot(p, file).catch(() => {});
        err.message += `\n(screenshot artifacts/${file}.png)\n${await describePage(p)}`;
      }
      for (const which of ['first', 'second']) {
        err.message += `\n--- ${which} braid (last 3000 chars) ---\n${env[which]?.output().slice(-3000) || '(none)'}`;
      }
      err.message += `\n--- IdP events ---\n${JSON.stringify(env.idp?.events.slice(-10) ?? [])}`;
      throw err;
    } finally {
      await context.close();
    }
  });
}

const newState = () => `state-${randomToken(8)}`;

// ---------------------------------------------------------------------------------------------

browserTest('code by email: select, continue, a wrong code, the emailed code, back at the app as the imported user', async ({ page }) => {
  const who = PEOPLE.code;
  const state = newState();
  await signInToSelect(page, who, { state });
  assert.equal(await page.getByRole('radio', { name: new RegExp(`^${escapeRegExp(who.mask)}`) }).isChecked(), true);
  await shot(page, 'select');

  await continueToVerify(page, who);
  await page.getByText(`We sent a 6-digit code to ${who.mask}`).waitFor();
  await shot(page, 'verify-code');
  const code = await emailedCode(who);

  await page.getByLabel('Code').fill(otherCode(code));
  await assertProblem(page, await clickButton(page, 'Confirm'), 'That code is not right. 4 tries left.');
  await shot(page, 'verify-wrong-code');

  // A new code ends the first one.
  const resent = await clickButton(page, 'Send a new code');
  assert.equal(resent.status(), 200);
  await page.getByRole('status').getByText('A new code is on its way. Earlier codes no longer work.').waitFor();
  const newCode = await emailedCode(who, 1);
  await page.getByLabel('Code').fill(code === newCode ? otherCode(code) : code);
  const refused = await clickButton(page, 'Confirm');
  assert.equal(refused.status(), 400, 'the first code no longer works');
  // Not the count: each new code starts its own 5 tries (the README says 5 per flow).
  assert.match(await page.getByRole('alert').textContent(), /^That code is not right\. \d tries? left\.$/);

  await page.getByLabel('Code').fill(newCode);
  await clickButton(page, 'Confirm');
  const profile = await assertSignedIn(page, who, state);
  assert.equal(profile.external_id, who.externalId, 'linked to the imported user');
  await linkedNotice(who);
});

browserTest('password: a bcrypt-hashed imported password, a wrong one first, then the right one', async ({ page }) => {
  const who = PEOPLE.password;
  const state = newState();
  await signInToSelect(page, who, { state });
  await continueToVerify(page, who);
  const password = page.getByLabel('Password');
  assert.equal(await password.getAttribute('type'), 'password');
  await shot(page, 'verify-password');

  await password.fill(`${who.password}x`);
  await assertProblem(page, await clickButton(page, 'Confirm'), 'That password is not right.');
  await shot(page, 'verify-wrong-password');

  await page.getByLabel('Password').fill(who.password);
  await clickButton(page, 'Confirm');
  const profile = await assertSignedIn(page, who, state);
  assert.equal(profile.external_id, who.externalId);
  await linkedNotice(who);
  assert.ok(
    !env.smtp.messages.some((m) => m.rcptTo.includes(who.email) && m.subject === CODE_SUBJECT),
    'no code is sent for an account proven by password',
  );
});

browserTest('create a new account instead: back at the app as a new user, the imported one untouched', async ({ page }) => {
  const who = PEOPLE.create;
  const state = newState();
  await signInToSelect(page, who, { state });
  await clickButton(page, 'Create a new account instead');
  const profile = await assertSignedIn(page, who, state);
  assert.equal(profile.external_id, undefined, `a new user, not the imported one: ${JSON.stringify(profile)}`);
  assert.ok(!env.smtp.messages.some((m) => m.rcptTo.includes(who.email)), 'the imported user is sent nothing');
});

browserTest('cancel: back at the app with error=access_denied and no code', async ({ page }) => {
  const who = PEOPLE.cancel;
  const state = newState();
  await signInToSelect(page, who, { state });
  await clickButton(page, 'Cancel and go back');
  const query = assertAtApp(page, state);
  assert.equal(query.get('error'), 'access_denied');
  assert.equal(query.get('error_code'), 'cancelled');
  assert.equal(query.get('iss'), env.first.publicUrl);
  assert.equal(query.get('code'), null);
});

browserTest('ended: after the link, Back and the select page end on the page; the old form resubmitted with the old cookie goes back to the app as flow_expired', async ({ context, page }) => {
  const who = PEOPLE.ended;
  const state = newState();
  await signInToSelect(page, who, { state });
  await continueToVerify(page, who);
  // A second tab still showing the password form, and the cookie as it was before the link.
  const stale = await openPage(context);
  await navigate(stale, () => stale.goto(page.url()));
  const oldCookies = await context.cookies();

  await page.getByLabel('Password').fill(who.password);
  await clickButton(page, 'Confirm');
  await assertSignedIn(page, who, state);
  assert.ok(!(await context.cookies()).some((c) => c.name === STATE_COOKIE), `the ${STATE_COOKIE} cookie is cleared`);

  // Back to the verify page: the browser asks again (no-store), without a link cookie now.
  await assertEnded(page, await navigate(page, () => page.goBack()));
  await page.getByText('Close this window and start again from the application.').waitFor();
  await shot(page, 'ended-after-back');

  await context.addCookies(oldCookies);
  await stale.getByLabel('Password').fill(who.password);
  const resubmitted = await clickButton(stale, 'Confirm');
  if (SESSIONS) {
    // The old session was deleted when the link completed: nothing is left that knows the app.
    await assertEnded(stale, resubmitted);
    await shot(stale, 'ended');
    await stale.getByText('Close this window and start again from the application.').waitFor();
    assert.equal(await stale.getByRole('link', { name: 'Start again' }).count(), 0);
  } else {
    // The old cookie still names the flow (sealed), though it is over server-side: the app
    // hears that this sign-in expired or was used.
    const query = assertAtApp(stale, state);
    assert.equal(query.get('error'), 'access_denied');
    assert.equal(query.get('error_code'), 'flow_expired');
    assert.equal(query.get('code'), null);
  }

  await assertEnded(page, await navigate(page, () => page.goto(`${env.first.url}${SELECT_PATH}`)));
  const codesIssued = env.app.hits.filter((h) => h.path === '/callback' && h.query.get('state') === state && h.query.get('code'));
  assert.equal(codesIssued.length, 1, 'one sign-in reached the app');
});

browserTest('conflict: a second flow for an identity linked meanwhile goes back to the app as link_conflict', async ({ page }) => {
  const who = PEOPLE.conflict;
  const state = newState();
  const other = await env.browser.newContext(CONTEXT_OPTIONS);
  try {
    const otherPage = await openPage(other);
    for (const p of [page, otherPage]) {
      await signInToSelect(p, who, { state });
      await continueToVerify(p, who);
    }
    await otherPage.getByLabel('Password').fill(who.password);
    await clickButton(otherPage, 'Confirm');
    await assertSignedIn(otherPage, who, state);

    await page.getByLabel('Password').fill(who.password);
    await clickButton(page, 'Confirm');
    const query = assertAtApp(page, state);
    assert.equal(query.get('error'), 'access_denied');
    assert.equal(query.get('error_code'), 'link_conflict');
    assert.equal(query.get('iss'), env.first.publicUrl);
    assert.equal(query.get('code'), null);
  } finally {
    await other.close();
  }
});

browserTest('two instances: the flow starts on the first and the code is typed on the second', async ({ page }) => {
  const who = PEOPLE.twoInstances;
  const state = newState();
  await signInToSelect(page, who, { state });
  assert.equal(new URL(page.url()).origin, env.first.url);
  await continueToVerify(page, who);
  const code = await emailedCode(who);

  await assertVerifyPage(page, await navigate(page, () => page.goto(at(env.second, page.url()))), who);
  assert.equal(new URL(page.url()).origin, env.second.url);
  await page.getByLabel('Code').fill(code);
  await clickButton(page, 'Confirm');
  const profile = await assertSignedIn(page, who, state, env.second);
  assert.equal(profile.external_id, who.externalId);
  await linkedNotice(who);
});
