// Proves the harness without Braid: two real oidc-provider instances, a throwaway client, and
// complete authorization-code + PKCE flows driven by lib/browser.mjs, with the ID tokens
// verified by jose against each IdP's JWKS.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { startIdp } from '../lib/idp.mjs';
import { Browser, idpLogin } from '../lib/browser.mjs';
import { basicAuth, freePort, pkcePair, randomToken } from '../lib/util.mjs';

const CLIENT_ID = 'harness';
const CLIENT_SECRET = randomToken();
let redirectUri; // nothing listens there: the test only reads the Location
let idpA;
let idpB;

before(async () => {
  redirectUri = `http://127.0.0.1:${await freePort()}/cb`;
  const client = { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [redirectUri] };
  idpA = await startIdp({
    name: 'idp-a',
    accounts: {
      alice: { email: 'alice@example.com', email_verified: true, name: 'Alice A' },
      carol: { email: 'carol@example.com', email_verified: true, name: 'Carol' },
    },
    clients: [client],
  });
  idpB = await startIdp({
    name: 'idp-b',
    accounts: {
      'alice-b': { email: 'alice@example.com', email_verified: true, name: 'Alice B' },
      mallory: { email: 'carol@example.com', email_verified: false, name: 'Mallory' },
    },
    clients: [client],
  });
});

after(async () => {
  await idpA?.close();
  await idpB?.close();
});

function authorizeUrl(idp, { pkce, state, nonce, scope = 'openid email profile' }) {
  const u = new URL(idp.authorizationEndpoint);
  u.search = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: redirectUri,
    scope,
    state,
    nonce,
    ...(pkce ? { code_challenge: pkce.challenge, code_challenge_method: pkce.method } : {}),
  }).toString();
  return u.href;
}

/** authorize → login as `account` → the redirect back to the client, checked. */
async function loginForCode(browser, idp, account) {
  const pkce = pkcePair();
  const state = randomToken(16);
  const nonce = randomToken(16);
  const location = await idpLogin(browser, authorizeUrl(idp, { pkce, state, nonce }), {
    account,
    until: (loc) => loc.startsWith(redirectUri),
  });
  const back = new URL(location);
  assert.equal(`${back.origin}${back.pathname}`, redirectUri);
  assert.equal(back.searchParams.get('error'), null, `authorization error: ${location}`);
  assert.equal(back.searchParams.get('state'), state, 'state is returned unchanged');
  assert.equal(back.searchParams.get('iss'), idp.issuer, 'RFC 9207 iss in the authorization response');
  const code = back.searchParams.get('code');
  assert.ok(code, 'code in the authorization response');
  return { code, pkce, nonce };
}

async function redeem(idp, { code, verifier, auth = 'basic', secret = CLIENT_SECRET }) {
  const form = { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier };
  const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (auth === 'basic') headers.authorization = basicAuth(CLIENT_ID, secret);
  else Object.assign(form, { client_id: CLIENT_ID, client_secret: secret });
  const res = await fetch(idp.tokenEndpoint, {
    method: 'POST',
    headers,
    body: new URLSearchParams(form).toString(),
    signal: AbortSignal.timeout(10_000),
  });
  return { res, body: await res.json() };
}

async function verifyIdToken(idp, idToken, nonce) {
  const jwks = createRemoteJWKSet(new URL(idp.jwksUri));
  const { payload, protectedHeader } = await jwtVerify(idToken, jwks, {
    issuer: idp.issuer,
    audience: CLIENT_ID,
    algorithms: ['RS256'],
  });
  assert.equal(protectedHeader.alg, 'RS256');
  assert.equal(payload.nonce, nonce, 'nonce echoed in the ID token');
  return payload;
}

test('discovery advertises what Braid relies on (S256, RFC 9207 iss, RS256, basic+post auth)', async () => {
  for (const idp of [idpA, idpB]) {
    const res = await fetch(`${idp.issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 200);
    const d = await res.json();
    assert.equal(d.issuer, idp.issuer);
    assert.equal(d.authorization_endpoint, idp.authorizationEndpoint);
    assert.equal(d.token_endpoint, idp.tokenEndpoint);
    assert.equal(d.jwks_uri, idp.jwksUri);
    assert.ok(d.code_challenge_methods_supported.includes('S256'));
    assert.equal(d.authorization_response_iss_parameter_supported, true);
    assert.ok(d.id_token_signing_alg_values_supported.includes('RS256'));
    assert.ok(d.token_endpoint_auth_methods_supported.includes('client_secret_basic'));
    assert.ok(d.token_endpoint_auth_methods_supported.includes('client_secret_post'));
    for (const s of ['openid', 'email', 'profile', 'phone']) assert.ok(d.scopes_supported.includes(s), s);
  }
  assert.notEqual(idpA.issuer, idpB.issuer, 'two independent issuers');
});

test('authorization code + PKCE at IdP A with client_secret_basic yields a verifiable ID token', async () => {
  const browser = new Browser();
  const { code, pkce, nonce } = await loginForCode(browser, idpA, 'alice');
  const { res, body } = await redeem(idpA, { code, verifier: pkce.verifier, auth: 'basic' });
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(body.token_type, 'Bearer');
  assert.ok(body.access_token);
  const claims = await verifyIdToken(idpA, body.id_token, nonce);
  assert.equal(claims.sub, 'alice');
  assert.equal(claims.email, 'alice@example.com');
  assert.equal(claims.email_verified, true);
  assert.equal(claims.name, 'Alice A');
  assert.ok(decodeProtectedHeader(body.id_token).kid, 'ID token names its key');
  // The interaction cookies were really used (and scoped by path): the IdP session cookie exists.
  assert.ok(browser.jar.all().some((c) => c.name === '_session_idp-a'), 'IdP A session cookie stored');
});

test('mallory at IdP B (client_secret_post) has email_verified false as a JSON boolean', async () => {
  const browser = new Browser();
  const { code, pkce, nonce } = await loginForCode(browser, idpB, 'mallory');
  const { res, body } = await redeem(idpB, { code, verifier: pkce.verifier, auth: 'post' });
  assert.equal(res.status, 200, JSON.stringify(body));
  const claims = await verifyIdToken(idpB, body.id_token, nonce);
  assert.equal(claims.sub, 'mallory');
  assert.equal(claims.email, 'carol@example.com');
  assert.equal(claims.email_verified, false);
  // A token from B does not verify against A's keys.
  await assert.rejects(
    jwtVerify(body.id_token, createRemoteJWKSet(new URL(idpA.jwksUri)), { algorithms: ['RS256'] }),
  );
});

test('one cookie jar for 127.0.0.1 serves both IdPs without their sessions colliding', async () => {
  const browser = new Browser();
  const a = await loginForCode(browser, idpA, 'alice');
  const b = await loginForCode(browser, idpB, 'alice-b');
  const ra = await redeem(idpA, { code: a.code, verifier: a.pkce.verifier });
  const rb = await redeem(idpB, { code: b.code, verifier: b.pkce.verifier });
  assert.equal((await verifyIdToken(idpA, ra.body.id_token, a.nonce)).sub, 'alice');
  const bClaims = await verifyIdToken(idpB, rb.body.id_token, b.nonce);
  assert.equal(bClaims.sub, 'alice-b');
  assert.equal(bClaims.email, 'alice@example.com');
  const names = browser.jar.all().map((c) => c.name);
  assert.ok(names.includes('_session_idp-a') && names.includes('_session_idp-b'), names.join(','));
});

test('the harness refuses a silent SSO login (stale IdP session) instead of picking an account', async () => {
  const browser = new Browser();
  await loginForCode(browser, idpA, 'carol');
  await assert.rejects(loginForCode(browser, idpA, 'alice'), /never asked to sign in/);
});

test('the IdP rejects a replayed code, a wrong PKCE verifier, a wrong secret and a missing PKCE challenge', async () => {
  const browser = new Browser();
  const first = await loginForCode(browser, idpA, 'alice');
  const ok = await redeem(idpA, { code: first.code, verifier: first.pkce.verifier });
  assert.equal(ok.res.status, 200);
  const replay = await redeem(idpA, { code: first.code, verifier: first.pkce.verifier });
  assert.equal(replay.res.status, 400);
  assert.equal(replay.body.error, 'invalid_grant');

  const second = await loginForCode(new Browser(), idpA, 'alice');
  const wrongVerifier = await redeem(idpA, { code: second.code, verifier: pkcePair().verifier });
  assert.equal(wrongVerifier.res.status, 400);
  assert.equal(wrongVerifier.body.error, 'invalid_grant');

  const third = await loginForCode(new Browser(), idpA, 'alice');
  const wrongSecret = await redeem(idpA, { code: third.code, verifier: third.pkce.verifier, secret: randomToken() });
  assert.equal(wrongSecret.res.status, 401);
  assert.equal(wrongSecret.body.error, 'invalid_client');

  // PKCE is required for every client, so a relying party that forgets it is caught.
  const noPkce = await new Browser().request(
    authorizeUrl(idpA, { state: randomToken(8), nonce: randomToken(8) }),
  );
  assert.equal(noPkce.status, 303);
  const err = new URL(noPkce.location);
  assert.ok(noPkce.location.startsWith(redirectUri));
  assert.equal(err.searchParams.get('error'), 'invalid_request');
});

test('the login page rejects an unknown account and accepts a known one afterwards', async () => {
  const browser = new Browser();
  const start = await browser.request(
    authorizeUrl(idpB, { pkce: pkcePair(), state: randomToken(8), nonce: randomToken(8) }),
  );
  assert.equal(start.status, 303);
  assert.match(new URL(start.location).pathname, /^\/interaction\/[^/]+$/);
  const page = await browser.request(start.location);
  assert.equal(page.status, 200);
  await page.text();
  const bad = await browser.request(`${start.location}/login`, { method: 'POST', form: { login: 'nobody' } });
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /unknown account/);
  const good = await browser.request(`${start.location}/login`, { method: 'POST', form: { login: 'alice-b' } });
  assert.equal(good.status, 303);
  assert.match(new URL(good.location).pathname, /^\/auth\/[^/]+$/, 'resumes the authorization');
});
