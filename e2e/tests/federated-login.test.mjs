// Federated login end to end: two real OpenID providers (oidc-provider), the braid binary, and
// a cookie-jar "browser" over plain HTTP. Access tokens are verified with jose, not Braid's code.
//
// The tests run in order and share one Braid + two IdPs (scenario 2 needs scenario 1's user).
// BRAID_E2E_BIN is required; without it every test here fails, unless BRAID_E2E_SKIP_BRAID=1
// says to skip them (they are then reported as skipped, never silently left out).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRemoteJWKSet, decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import { startIdp } from '../lib/idp.mjs';
import { braidBinFromEnv, braidSkipReason, startBraid } from '../lib/braid.mjs';
import { Browser, idpLogin } from '../lib/browser.mjs';
import { basicAuth, freePort, randomToken } from '../lib/util.mjs';

const SKIP = braidSkipReason();

const APP = 'demo-app';
const TEST_TIMEOUT_MS = 60_000;

// With a caller-provided (possibly reused) database, subjects and emails get a per-run tag so
// identities and users from an earlier run cannot match. A fresh SQLite file needs none.
const TAG = process.env.BRAID_E2E_DATABASE_URL ? `-${randomToken(6).toLowerCase().replace(/[^a-z0-9]/g, 'x')}` : '';
const acct = (id) => `${id}${TAG}`;
const mail = (local) => `${local}${TAG ? `+run${TAG}` : ''}@example.com`;

const ACCOUNTS_A = {
  [acct('alice')]: { email: mail('alice'), email_verified: true, name: 'Alice' },
  [acct('carol')]: { email: mail('carol'), email_verified: true, name: 'Carol' },
};
const ACCOUNTS_B = {
  [acct('alice-b')]: { email: mail('alice'), email_verified: true, name: 'Alice at B' },
  [acct('mallory')]: { email: mail('carol'), email_verified: false, name: 'Mallory' },
};

const env = {}; // filled by before(): braid, idps, app

before(
  async () => {
    if (SKIP) return;
    const bin = braidBinFromEnv(); // throws a clear message when unset / not executable
    const braidPort = await freePort();
    const braidUrl = `http://127.0.0.1:${braidPort}`;
    env.app = {
      redirectUri: `http://127.0.0.1:${await freePort()}/callback`, // nothing listens there
      secret: randomToken(32), // 43 characters
    };
    const secrets = { 'idp-a': randomToken(), 'idp-b': randomToken() };
    const idpClient = (id) => ({
      client_id: 'braid',
      client_secret: secrets[id],
      redirect_uris: [`${braidUrl}/auth/connect/${id}/callback`],
      token_endpoint_auth_method: 'client_secret_basic', // client_secret_post is accepted too
    });
    env.idps = {
      'idp-a': await startIdp({ name: 'idp-a', accounts: ACCOUNTS_A, clients: [idpClient('idp-a')] }),
      // IdP B keeps the claims out of the ID token: Braid takes them from UserInfo.
      'idp-b': await startIdp({ name: 'idp-b', accounts: ACCOUNTS_B, clients: [idpClient('idp-b')], claimsInIdToken: false }),
    };
    env.braid = await startBraid({
      bin,
      port: braidPort,
      resolution: 'automatic',
      providers: Object.fromEntries(
        Object.entries(env.idps).map(([id, idp]) => [
          id,
          { issuer: idp.issuer, clientId: 'braid', clientSecret: secrets[id], trustEmail: true },
        ]),
      ),
      clients: { [APP]: { redirectUris: [env.app.redirectUri], secret: env.app.secret } },
    });
  },
  { timeout: 90_000 },
);

after(
  async () => {
    const exit = await env.braid?.stop();
    if (exit && exit.signal === 'SIGKILL') console.error('braid did not stop within 5 s of SIGTERM: killed');
    for (const idp of Object.values(env.idps ?? {})) await idp.close();
  },
  { timeout: 30_000 },
);

/** Adds Braid's recent output and the IdPs' error events to a failure. */
function braidTest(name, fn) {
  test(name, { skip: SKIP, timeout: TEST_TIMEOUT_MS }, async (t) => {
    try {
      await fn(t);
    } catch (err) {
      const out = env.braid?.output() ?? '';
      const idpEvents = Object.values(env.idps ?? {})
        .flatMap((idp) => idp.events.filter((e) => /error/.test(e.type)).map((e) => `${idp.name}: ${JSON.stringify(e)}`))
        .slice(-10);
      err.message += `\n--- braid output (last 6000 chars) ---\n${out.slice(-6000) || '(none)'}`;
      if (idpEvents.length) err.message += `\n--- IdP errors ---\n${idpEvents.join('\n')}`;
      throw err;
    }
  });
}

const braidUrl = (path) => new URL(path, env.braid.url).href;

/** The last "request done" line Braid logged for `provider`'s callback route (JSON log). */
function lastCallbackLogLine(provider) {
  const lines = env.braid
    .output()
    .split('\n')
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return null; // the first line may be cut by the output limit
      }
    })
    .filter((e) => e?.fields?.message === 'request done' && e.span?.route === `/auth/connect/${provider}/callback`);
  assert.ok(lines.length > 0, `a request line for the ${provider} callback`);
  return lines.at(-1);
}

/**
 * One complete federated login of `account` at `provider`, in a fresh browser (so no IdP or
 * Braid session carries over), with every step's contract asserted. Returns the exchange code.
 */
async function federatedLogin(provider, account) {
  const idp = env.idps[provider];
  const browser = new Browser();
  const state = randomToken(16);

  // (1) Braid sends the browser to the IdP's authorization endpoint.
  const start = new URL(braidUrl(`/auth/connect/${provider}`));
  start.search = new URLSearchParams({ client_id: APP, redirect_uri: env.app.redirectUri, state }).toString();
  const r1 = await browser.request(start.href);
  const r1Body = await r1.text();
  assert.ok([302, 303].includes(r1.status), `start: expected 302/303, got ${r1.status}: ${r1Body.slice(0, 500)}`);
  const authz = new URL(r1.location);
  assert.equal(`${authz.origin}${authz.pathname}`, idp.authorizationEndpoint, 'redirected to the IdP authorization endpoint');
  assert.ok(r1.setCookies.length > 0, 'Braid sets a cookie when the login starts');
  assert.ok(
    r1.setCookies.some((c) => c.name.startsWith('braid')),
    `Braid's flow cookie name starts with "braid" (got ${r1.setCookies.map((c) => c.name).join(', ')})`,
  );
  const q = authz.searchParams;
  assert.equal(q.get('response_type'), 'code');
  assert.equal(q.get('client_id'), 'braid');
  assert.equal(q.get('redirect_uri'), braidUrl(`/auth/connect/${provider}/callback`));
  const scopes = (q.get('scope') ?? '').split(' ');
  for (const s of ['openid', 'email', 'profile']) assert.ok(scopes.includes(s), `scope ${s} requested`);
  assert.equal(q.get('code_challenge_method'), 'S256');
  assert.match(q.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
  assert.ok(q.get('nonce'), 'nonce sent');
  assert.ok(q.get('state'), 'state sent');

  // (2) Sign in at the IdP and come back to Braid's callback.
  const callbackPrefix = braidUrl(`/auth/connect/${provider}/callback`);
  const callbackUrl = await idpLogin(browser, r1.location, {
    account,
    until: (loc) => loc.startsWith(`${callbackPrefix}?`) || loc === callbackPrefix,
  });
  assert.equal(new URL(callbackUrl).searchParams.get('iss'), idp.issuer, 'IdP sends RFC 9207 iss');
  const r2 = await browser.request(callbackUrl);
  const r2Body = await r2.text();
  assert.ok(
    [302, 303].includes(r2.status),
    `callback: expected 303, got ${r2.status}: ${r2Body.slice(0, 1000)}\n${browser.describeTrace()}`,
  );
  assert.ok(r2.location.startsWith(env.app.redirectUri), `back to the app: ${r2.location}`);
  const back = new URL(r2.location);
  assert.equal(`${back.origin}${back.pathname}`, env.app.redirectUri);
  assert.equal(back.searchParams.get('error'), null, `no error: ${r2.location}`);
  assert.equal(back.searchParams.get('state'), state, 'the app state comes back unchanged');
  assert.equal(back.searchParams.get('iss'), env.braid.url, "iss is Braid's public URL");
  const code = back.searchParams.get('code');
  assert.ok(code, 'exchange code present');
  return { code, browser };
}

/** POST /auth/exchange-code. auth: 'post' (client_secret_post) or 'basic'. */
async function exchange(code, { auth = 'post', secret = env.app.secret, redirectUri = env.app.redirectUri } = {}) {
  const form = { grant_type: 'authorization_code', code, redirect_uri: redirectUri };
  const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (auth === 'basic') headers.authorization = basicAuth(APP, secret);
  else Object.assign(form, { client_id: APP, client_secret: secret });
  const res = await fetch(braidUrl('/auth/exchange-code'), {
    method: 'POST',
    headers,
    body: new URLSearchParams(form).toString(),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = { unparsed: text.slice(0, 1000) };
  }
  return { res, body };
}

/** A successful exchange, with the response contract asserted. */
async function exchangeOk(code, opts) {
  const { res, body } = await exchange(code, opts);
  assert.equal(res.status, 200, `exchange-code: ${res.status} ${JSON.stringify(body)}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.match(res.headers.get('cache-control') ?? '', /no-store/);
  assert.equal(typeof body.access_token, 'string');
  assert.equal(body.token_type, 'Bearer');
  assert.ok(Number.isInteger(body.expires_in) && body.expires_in > 0, `expires_in ${body.expires_in}`);
  assert.equal(typeof body.refresh_token, 'string');
  assert.ok(body.refresh_token.length > 0);
  return body;
}

let jwks;
async function verifyAccessToken(token) {
  jwks ??= createRemoteJWKSet(new URL('/.well-known/jwks.json', env.braid.url));
  return jwtVerify(token, jwks, {
    issuer: env.braid.url,
    audience: APP,
    typ: 'at+jwt',
    algorithms: ['ES256'],
  });
}

async function me(accessToken) {
  const res = await fetch(braidUrl('/auth/me'), {
    headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `/auth/me: ${res.status} ${text.slice(0, 500)}`);
  const body = JSON.parse(text);
  assert.equal(typeof body.id, 'string');
  assert.ok(Array.isArray(body.identities), 'identities is an array');
  for (const i of body.identities) {
    assert.equal(typeof i.provider, 'string');
    assert.equal(typeof i.subject, 'string');
  }
  return body;
}

const identityPairs = (profile) => profile.identities.map((i) => `${i.provider}:${i.subject}`).sort();

/** Login → exchange → verify → /auth/me; returns {sub, profile, tokens}. */
async function loginAs(provider, account, exchangeOpts) {
  const { code } = await federatedLogin(provider, account);
  const tokens = await exchangeOk(code, exchangeOpts);
  const { payload } = await verifyAccessToken(tokens.access_token);
  assert.equal(typeof payload.sub, 'string');
  const profile = await me(tokens.access_token);
  assert.equal(profile.id, payload.sub, '/auth/me id is the token subject');
  return { sub: payload.sub, profile, tokens };
}

const users = {}; // account → Braid user id, filled by the scenarios in order

braidTest('new identity → user created (alice at idp-a)', async () => {
  const { sub, profile } = await loginAs('idp-a', acct('alice'));
  assert.deepEqual(identityPairs(profile), [`idp-a:${acct('alice')}`]);
  users.alice = sub;
});

braidTest('same identity again → same user logged in (alice at idp-a twice)', async () => {
  assert.ok(users.alice, 'needs the user created by the first scenario');
  const { sub, profile } = await loginAs('idp-a', acct('alice'));
  assert.equal(sub, users.alice);
  assert.deepEqual(identityPairs(profile), [`idp-a:${acct('alice')}`], 'no second identity or user');
});

braidTest('a second provider asserting the same verified email → linked automatically (alice-b at idp-b)', async () => {
  assert.ok(users.alice, 'needs the user created by the first scenario');
  const { sub, profile } = await loginAs('idp-b', acct('alice-b'));
  assert.equal(sub, users.alice, 'alice-b@idp-b is linked to alice');
  assert.deepEqual(identityPairs(profile), [`idp-a:${acct('alice')}`, `idp-b:${acct('alice-b')}`].sort());
  // The callback's request line in the JSON log carries the linking decision.
  const callback = lastCallbackLogLine('idp-b');
  assert.equal(callback.fields.status, 303);
  assert.equal(callback.fields.result, 'complete');
  assert.equal(callback.fields.reason, 'single_verified_match');
});

braidTest('an unverified email → not linked (mallory at idp-b claims carol@ unverified)', async () => {
  const carol = await loginAs('idp-a', acct('carol'));
  assert.notEqual(carol.sub, users.alice);
  assert.deepEqual(identityPairs(carol.profile), [`idp-a:${acct('carol')}`]);
  const mallory = await loginAs('idp-b', acct('mallory'));
  assert.notEqual(mallory.sub, carol.sub, "mallory must not get carol's account");
  assert.deepEqual(identityPairs(mallory.profile), [`idp-b:${acct('mallory')}`]);
  const carolAgain = await me(carol.tokens.access_token);
  assert.deepEqual(identityPairs(carolAgain), [`idp-a:${acct('carol')}`], "carol's user did not gain mallory");
  users.carol = carol.sub;
});

braidTest('exchange code redeemed once and the replay rejected (invalid_grant)', async () => {
  const { code } = await federatedLogin('idp-a', acct('alice'));
  await exchangeOk(code);
  const { res, body } = await exchange(code);
  assert.equal(res.status, 400, `replay: ${res.status} ${JSON.stringify(body)}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(body.error, 'invalid_grant');
});

braidTest('access token verified against the JWKS; a tampered token fails', async () => {
  const { code } = await federatedLogin('idp-a', acct('alice'));
  const tokens = await exchangeOk(code);
  const now = Math.floor(Date.now() / 1000);
  const { payload, protectedHeader } = await verifyAccessToken(tokens.access_token);
  assert.equal(protectedHeader.alg, 'ES256');
  assert.equal(protectedHeader.typ.toLowerCase(), 'at+jwt');
  assert.ok(protectedHeader.kid, 'kid in the header');
  assert.equal(payload.iss, env.braid.url);
  assert.ok(payload.aud === APP || (Array.isArray(payload.aud) && payload.aud.includes(APP)));
  assert.equal(payload.sub, users.alice ?? payload.sub);
  assert.ok(payload.jti, 'jti present');
  assert.ok(payload.exp > now, 'not expired');
  assert.ok(payload.exp <= now + 15 * 60 + 60, `exp at most 15 min ahead (${payload.exp - now} s)`);
  assert.ok(tokens.expires_in <= 15 * 60);

  const [h, p, s] = tokens.access_token.split('.');
  const forged = Buffer.from(
    JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: users.carol ?? 'someone-else' }),
  ).toString('base64url');
  await assert.rejects(verifyAccessToken(`${h}.${forged}.${s}`), joseErrors.JWSSignatureVerificationFailed);
  const sig = Buffer.from(s, 'base64url');
  sig[0] ^= 0x01;
  await assert.rejects(
    verifyAccessToken(`${h}.${p}.${sig.toString('base64url')}`),
    joseErrors.JWSSignatureVerificationFailed,
  );
  // Braid itself refuses the forged token too.
  const res = await fetch(braidUrl('/auth/me'), {
    headers: { authorization: `Bearer ${h}.${forged}.${s}` },
    signal: AbortSignal.timeout(15_000),
  });
  await res.arrayBuffer();
  assert.equal(res.status, 401, '/auth/me with a forged token');
  assert.equal(decodeProtectedHeader(tokens.access_token).kid, protectedHeader.kid);
});

braidTest('client_secret_basic works and a wrong client secret gets 401 invalid_client', async () => {
  const ok = await loginAs('idp-a', acct('carol'), { auth: 'basic' });
  if (users.carol) assert.equal(ok.sub, users.carol);

  for (const auth of ['post', 'basic']) {
    const { code } = await federatedLogin('idp-a', acct('carol'));
    const { res, body } = await exchange(code, { auth, secret: `${env.app.secret}x` });
    assert.equal(res.status, 401, `wrong secret via ${auth}: ${res.status} ${JSON.stringify(body)}`);
    assert.equal(body.error, 'invalid_client', `wrong secret via ${auth}`);
  }
});
