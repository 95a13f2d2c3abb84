// Signing-key rotation across two Braid processes on one database (PostgreSQL when
// BRAID_E2E_DATABASE_URL is set, else one SQLite file both open), as a load balancer would use
// them: tokens issued by either instance verify at the other's /auth/me and against every copy
// of the JWKS an app could still be holding, before, during and after a rotation made with the
// real `braid keys rotate`.
//
// Scaled down from production: instances read the keys every 2 s instead of 60 s (started
// 1 s apart, the same third of a reload interval as 20 s apart is of 60 s), so the publish
// delay can be its minimum plus a margin (2 s + the JWKS max-age of 60 s + 4 s), and access
// tokens live 20 s. The extra read on an unknown kid is set to once an hour, so it cannot
// hide a token signed with a key the other instance has not been given in time.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { startIdp } from '../lib/idp.mjs';
import { braidBinFromEnv, braidSkipReason, runBraid, startBraid } from '../lib/braid.mjs';
import { Browser, idpLogin } from '../lib/browser.mjs';
import { freePort, randomToken, sleep } from '../lib/util.mjs';

const SKIP = braidSkipReason();

const APP = 'rotation-app';
const ISSUER = 'http://braid.rotation.test';
const RELOAD_S = 2;
const JWKS_MAX_AGE_S = 60;
const PUBLISH_DELAY_S = RELOAD_S + JWKS_MAX_AGE_S + 4;
const ACCESS_TTL_S = 20;
const STEP_MS = 250;
const ACCOUNT = `rot-${randomToken(6).toLowerCase().replace(/[^a-z0-9]/g, 'x')}`;

const env = {}; // filled by before(): bin, idp, a, b, dbDir, app

before(
  async () => {
    if (SKIP) return;
    env.bin = braidBinFromEnv();
    const ports = { a: await freePort(), b: await freePort() };
    const callbacks = Object.values(ports).map((p) => `http://127.0.0.1:${p}/auth/connect/idp/callback`);
    const idpSecret = randomToken();
    env.idp = await startIdp({
      name: 'idp-rot',
      accounts: { [ACCOUNT]: { email: `${ACCOUNT}@example.com`, email_verified: true, name: 'Rotation' } },
      clients: [{ client_id: 'braid', client_secret: idpSecret, redirect_uris: callbacks }],
    });
    env.app = { redirectUri: `http://127.0.0.1:${await freePort()}/callback`, secret: randomToken(32) };
    env.dbDir = mkdtempSync(path.join(tmpdir(), 'braid-e2e-rotation-'));
    const databaseUrl = process.env.BRAID_E2E_DATABASE_URL ?? `sqlite://${path.join(env.dbDir, 'braid.db')}`;
    const instance = (port) =>
      startBraid({
        bin: env.bin,
        port,
        databaseUrl,
        providers: { idp: { issuer: env.idp.issuer, clientId: 'braid', clientSecret: idpSecret } },
        clients: { [APP]: { redirectUris: [env.app.redirectUri], secret: env.app.secret } },
        // One issuer for both, as behind a load balancer: either may verify the other's tokens.
        extraToml: [
          '[tokens]',
          `issuer = "${ISSUER}"`,
          `access_token_ttl = ${ACCESS_TTL_S}`,
          '[keys]',
          `reload_interval = ${RELOAD_S}`,
          `publish_delay = ${PUBLISH_DELAY_S}`,
          'unknown_kid_reload_interval = 3600',
        ].join('\n'),
      });
    env.a = await instance(ports.a);
    await sleep((RELOAD_S * 1000) / 2);
    env.b = await instance(ports.b);
  },
  { timeout: 90_000 },
);

after(
  async () => {
    for (const braid of [env.a, env.b]) await braid?.stop();
    await env.idp?.close();
    if (env.dbDir && !process.env.BRAID_E2E_KEEP_TMP) rmSync(env.dbDir, { recursive: true, force: true });
  },
  { timeout: 30_000 },
);

/** Signs in at the IdP through `braid` and redeems the code there: {access_token, refresh_token}. */
async function signIn(braid) {
  const browser = new Browser();
  const start = new URL('/auth/connect/idp', braid.url);
  start.search = new URLSearchParams({ client_id: APP, redirect_uri: env.app.redirectUri, state: randomToken(16) });
  const r1 = await browser.request(start.href);
  await r1.arrayBuffer();
  assert.ok([302, 303].includes(r1.status), `start: ${r1.status}`);
  const callbackPrefix = new URL('/auth/connect/idp/callback', braid.url).href;
  const callback = await idpLogin(browser, r1.location, {
    account: ACCOUNT,
    until: (loc) => loc.startsWith(callbackPrefix),
  });
  const r2 = await browser.request(callback);
  await r2.arrayBuffer();
  assert.ok([302, 303].includes(r2.status), `callback: ${r2.status}\n${browser.describeTrace()}`);
  const code = new URL(r2.location).searchParams.get('code');
  assert.ok(code, `a code: ${r2.location}`);
  return tokenRequest(braid, { grant_type: 'authorization_code', code, redirect_uri: env.app.redirectUri });
}

async function tokenRequest(braid, form) {
  const res = await fetch(new URL(form.grant_type === 'refresh_token' ? '/auth/refresh' : '/auth/exchange-code', braid.url), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ ...form, client_id: APP, client_secret: env.app.secret }).toString(),
    signal: AbortSignal.timeout(15_000),
  });
  const body = await res.json();
  assert.equal(res.status, 200, `${form.grant_type} at ${braid.url}: ${JSON.stringify(body)}`);
  return body;
}

async function meStatus(braid, token) {
  const res = await fetch(new URL('/auth/me', braid.url), {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(15_000),
  });
  await res.arrayBuffer();
  return res.status;
}

async function fetchJwks(braid) {
  const res = await fetch(new URL('/.well-known/jwks.json', braid.url), { signal: AbortSignal.timeout(15_000) });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('cache-control'), `public, max-age=${JWKS_MAX_AGE_S}`);
  const jwks = await res.json();
  return { jwks, kids: jwks.keys.map((k) => k.kid), set: createLocalJWKSet(jwks) };
}

const verifyWith = (set, token) => jwtVerify(token, set, { issuer: ISSUER, audience: APP, typ: 'at+jwt' });

function keyStates(listOutput) {
  return Object.fromEntries(
    listOutput
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(/\s+/))
      .map(([kid, , state]) => [kid, state]),
  );
}

test(
  'tokens from either instance verify at the other and against any JWKS copy through a whole rotation',
  { skip: SKIP, timeout: 240_000 },
  async (t) => {
    const { a, b } = env;
    const instances = [a, b];
    const other = (braid) => (braid === a ? b : a);
    /** JWKS copies an app may hold: fetched at `at` (ms, after the answer), usable for 60 s. */
    const copies = [];
    /** Tokens issued: {token, kid, by, at (ms, after the answer), exp (s)}. */
    const issued = [];
    let refreshToken = (await signIn(a)).refresh_token;
    const failures = [];
    const check = async (what, fn) => {
      try {
        await fn();
      } catch (err) {
        failures.push(`${what}: ${err.message}`);
      }
    };

    const step = async (i) => {
      // An app fetches the JWKS from either instance...
      const from = instances[i % 2];
      const copy = { ...(await fetchJwks(from)), at: Date.now(), from: from.url };
      copies.push(copy);
      // ...and must be able to verify every token still alive with it.
      const now = Date.now();
      for (const tok of issued.filter((x) => x.exp * 1000 > now + 2_000)) {
        await check(`live token ${tok.kid} (by ${tok.by}) against the JWKS of ${copy.from}`, () => verifyWith(copy.set, tok.token));
      }
      // Either instance issues a token (a refresh, as an app's backend does)...
      const by = instances[(i >> 1) % 2];
      const body = await tokenRequest(by, { grant_type: 'refresh_token', refresh_token: refreshToken });
      refreshToken = body.refresh_token;
      const tok = {
        token: body.access_token,
        kid: decodeProtectedHeader(body.access_token).kid,
        by: by.url,
        at: Date.now(),
        exp: decodeJwt(body.access_token).exp,
      };
      issued.push(tok);
      // ...which the other instance accepts at once, as does the one that made it...
      for (const braid of [other(by), by]) {
        const status = await meStatus(braid, tok.token);
        if (status !== 200) failures.push(`token ${tok.kid} by ${tok.by}: /auth/me at ${braid.url} answered ${status}`);
      }
      // ...and so does every JWKS copy an app may still be using when the token arrives.
      for (const c of copies.filter((c) => c.at + JWKS_MAX_AGE_S * 1000 > tok.at)) {
        await check(`token ${tok.kid} by ${tok.by} against the JWKS of ${c.from} fetched ${tok.at - c.at} ms earlier`, () =>
          verifyWith(c.set, tok.token),
        );
      }
      // An older token, still alive, keeps verifying at both instances.
      const older = issued.find((x) => x.exp * 1000 > Date.now() + 2_000);
      if (older && older !== tok) {
        for (const braid of instances) {
          const status = await meStatus(braid, older.token);
          if (status !== 200) failures.push(`older token ${older.kid} by ${older.by}: /auth/me at ${braid.url} answered ${status}`);
        }
      }
      while (copies.length && copies[0].at + JWKS_MAX_AGE_S * 1000 < Date.now()) copies.shift();
    };

    let i = 0;
    const runUntil = async (deadline) => {
      while (Date.now() < deadline) {
        await step(i);
        i += 1;
        await sleep(STEP_MS);
      }
    };

    // Before the rotation: a few rounds, both instances signing with the same key.
    await runUntil(Date.now() + 4_000);
    const oldKid = issued.at(-1).kid;
    assert.ok(issued.every((x) => x.kid === oldKid), 'one key signs before the rotation');

    // The rotation, with the real CLI, mid-run.
    const rotate = await runBraid({ bin: env.bin, configPath: a.configPath, args: ['keys', 'rotate'] });
    assert.equal(rotate.code, 0, `braid keys rotate: ${rotate.signal ?? ''} ${rotate.stderr}`);
    const m = rotate.stdout.match(/new signing key (\S+) \(ES256\) is published now and signs from (\S+) \(in (\d+) s\)/);
    assert.ok(m, `braid keys rotate said: ${rotate.stdout}`);
    const [, newKid, signsFrom, inSeconds] = m;
    assert.equal(Number(inSeconds), PUBLISH_DELAY_S);
    const switchAt = Date.parse(signsFrom);
    t.diagnostic(`rotated at ${new Date().toISOString()}: ${newKid} signs from ${signsFrom}`);

    let states = keyStates((await runBraid({ bin: env.bin, configPath: b.configPath, args: ['keys', 'list'] })).stdout);
    assert.equal(states[oldKid], 'active');
    assert.equal(states[newKid], 'next');

    // The publish delay: the new key appears in both JWKS within a reload interval, signs nothing.
    await runUntil(switchAt - 1_000);
    for (const braid of instances) {
      assert.ok((await fetchJwks(braid)).kids.includes(newKid), `${braid.url} publishes the next key`);
    }
    assert.ok(!issued.some((x) => x.kid === newKid), 'the next key signs nothing before its time');

    // The switch, and on until the last token of the old key has expired.
    await runUntil(switchAt + (ACCESS_TTL_S + 3) * 1000);
    const afterSwitch = issued.filter((x) => x.at > switchAt + 1_000);
    assert.ok(afterSwitch.length > 0 && afterSwitch.every((x) => x.kid === newKid), 'the new key signs after its time');
    for (const braid of instances) {
      assert.ok(afterSwitch.some((x) => x.by === braid.url), `${braid.url} issued tokens with the new key`);
      assert.ok(
        issued.some((x) => x.by === braid.url && x.kid === oldKid && x.at > switchAt - 3_000),
        `${braid.url} signed with the old key until just before the switch`,
      );
    }
    states = keyStates((await runBraid({ bin: env.bin, configPath: a.configPath, args: ['keys', 'list'] })).stdout);
    assert.equal(states[oldKid], 'retiring');
    assert.equal(states[newKid], 'active');

    t.diagnostic(`${issued.length} tokens issued, ${i} rounds, ${failures.length} failures`);
    assert.deepEqual(failures, []);
  },
);
