// Two braid processes on one database, as a load balancer uses them: both have the same public
// URL, and any request may reach either. The database is BRAID_E2E_DATABASE_URL (PostgreSQL in
// CI) or one SQLite file both processes open. Also here: a real provider that signs its ID
// tokens with ES256, which Braid must accept with no `id_token_alg` setting.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startIdp } from '../lib/idp.mjs';
import { braidBinFromEnv, startBraid } from '../lib/braid.mjs';
import { Browser, idpLogin } from '../lib/browser.mjs';
import { freePort, randomToken } from '../lib/util.mjs';

const SKIP =
  !process.env.BRAID_E2E_BIN && process.env.BRAID_E2E_SKIP_BRAID === '1'
    ? 'BRAID_E2E_SKIP_BRAID=1 and BRAID_E2E_BIN unset: Braid end-to-end tests skipped on purpose'
    : false;

const APP = 'demo-app';
const TAG = randomToken(6).toLowerCase().replace(/[^a-z0-9]/g, 'x');
const ACCOUNT = `dana-${TAG}`;
const ES_ACCOUNT = `erin-${TAG}`;

const env = {}; // first, second: the two instances; idps; app

before(
  async () => {
    if (SKIP) return;
    const bin = braidBinFromEnv();
    const [firstPort, secondPort] = [await freePort(), await freePort()];
    // The address the browser and the provider know: the first instance's (the "load
    // balancer"); requests are then sent to either instance by hand.
    const publicUrl = `http://127.0.0.1:${firstPort}`;
    env.app = { redirectUri: `http://127.0.0.1:${await freePort()}/callback`, secret: randomToken(32) };
    const secret = { idp: randomToken(), 'idp-es': randomToken() };
    const client = (id) => ({
      client_id: 'braid',
      client_secret: secret[id],
      redirect_uris: [`${publicUrl}/auth/connect/${id}/callback`],
    });
    env.idps = {
      idp: await startIdp({
        name: 'idp',
        accounts: { [ACCOUNT]: { email: `${ACCOUNT}@example.com`, email_verified: true } },
        clients: [client('idp')],
      }),
      'idp-es': await startIdp({
        name: 'idp-es',
        alg: 'ES256',
        accounts: { [ES_ACCOUNT]: { email: `${ES_ACCOUNT}@example.com`, email_verified: true } },
        clients: [client('idp-es')],
      }),
    };
    const config = {
      bin,
      publicUrl,
      providers: Object.fromEntries(
        Object.entries(env.idps).map(([id, idp]) => [id, { issuer: idp.issuer, clientId: 'braid', clientSecret: secret[id] }]),
      ),
      clients: { [APP]: { redirectUris: [env.app.redirectUri], secret: env.app.secret } },
    };
    env.first = await startBraid({ ...config, port: firstPort });
    env.second = await startBraid({ ...config, port: secondPort, databaseUrl: env.first.databaseUrl });
  },
  { timeout: 90_000 },
);

after(
  async () => {
    await env.first?.stop();
    await env.second?.stop();
    for (const idp of Object.values(env.idps ?? {})) await idp.close();
  },
  { timeout: 30_000 },
);

function braidTest(name, fn) {
  test(name, { skip: SKIP, timeout: 60_000 }, async () => {
    try {
      await fn();
    } catch (err) {
      for (const which of ['first', 'second']) {
        err.message += `\n--- ${which} instance (last 3000 chars) ---\n${env[which]?.output().slice(-3000) || '(none)'}`;
      }
      throw err;
    }
  });
}

/** The same path and query at another instance. */
const at = (instance, url) => {
  const u = new URL(url);
  return `${instance.url}${u.pathname}${u.search}`;
};

/** Starts a sign-in at `instance` and signs in at the provider; returns the callback URL. */
async function signInUpstream(browser, instance, provider, account) {
  const start = new URL(`${instance.url}/auth/connect/${provider}`);
  start.search = new URLSearchParams({ client_id: APP, redirect_uri: env.app.redirectUri, state: 'app-state' }).toString();
  const r = await browser.request(start.href);
  assert.equal(r.status, 303, `start: ${r.status} ${await r.text()}`);
  const callbackPrefix = `${env.first.publicUrl}/auth/connect/${provider}/callback`;
  return idpLogin(browser, r.location, { account, until: (loc) => loc.startsWith(`${callbackPrefix}?`) });
}

async function codeFrom(response) {
  assert.equal(response.status, 303, `callback: ${response.status} ${(await response.text()).slice(0, 800)}`);
  const back = new URL(response.location);
  assert.equal(`${back.origin}${back.pathname}`, env.app.redirectUri);
  assert.equal(back.searchParams.get('state'), 'app-state');
  assert.equal(back.searchParams.get('iss'), env.first.publicUrl, 'the shared public URL is the issuer');
  return back.searchParams.get('code');
}

async function post(instance, path, form) {
  const res = await fetch(`${instance.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: APP, client_secret: env.app.secret, ...form }).toString(),
  });
  return { status: res.status, body: await res.json() };
}

/** Redeems an exchange code at `instance`; the token response. */
async function redeem(instance, code) {
  const r = await post(instance, '/auth/exchange-code', { grant_type: 'authorization_code', code, redirect_uri: env.app.redirectUri });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

async function me(instance, accessToken) {
  const res = await fetch(`${instance.url}/auth/me`, { headers: { authorization: `Bearer ${accessToken}` } });
  return { status: res.status, body: await res.json() };
}

/** One series at an instance's /metrics, or null. */
async function metric(instance, series) {
  const text = await (await fetch(`${instance.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : null;
}

let tokens; // from the first test, used by the second

braidTest('a sign-in started on the first instance finishes on the second and its code redeems on the first', async () => {
  const browser = new Browser();
  const callback = await signInUpstream(browser, env.first, 'idp', ACCOUNT);
  const code = await codeFrom(await browser.request(at(env.second, callback)));
  tokens = await redeem(env.first, code);
  for (const instance of [env.first, env.second]) {
    const profile = await me(instance, tokens.access_token);
    assert.equal(profile.status, 200, JSON.stringify(profile.body));
    assert.equal(profile.body.identities[0].subject, ACCOUNT);
    assert.equal(profile.body.identities[0].email_verified, true);
  }
});

braidTest('a callback finished on one instance is refused as no_flow when replayed on the other', async () => {
  const browser = new Browser();
  const callback = await signInUpstream(browser, env.first, 'idp', ACCOUNT);
  await codeFrom(await browser.request(at(env.first, callback)));
  const series = 'braid_federated_logins_total{outcome="no_flow",provider="idp"}';
  const before = (await metric(env.second, series)) ?? 0;
  const replay = await browser.request(at(env.second, callback));
  assert.equal(replay.status, 400);
  assert.match(await replay.text(), /not started in this browser, expired, or was already completed/);
  assert.equal(await metric(env.second, series), before + 1, 'counted as no_flow, not as another failure');
  assert.equal(await metric(env.second, 'braid_federated_logins_total{outcome="provider_disabled",provider="idp"}'), null);
});

braidTest('a refresh token rotated on one instance is refused when replayed on the other', async () => {
  assert.ok(tokens, 'the first test signed in');
  const rotated = await post(env.first, '/auth/refresh', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
  assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
  const replayed = await post(env.second, '/auth/refresh', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
  assert.equal(replayed.status, 400);
  assert.equal(replayed.body.error, 'invalid_grant');
  // Reuse revokes the family: the token the first rotation issued is dead everywhere.
  const next = await post(env.first, '/auth/refresh', { grant_type: 'refresh_token', refresh_token: rotated.body.refresh_token });
  assert.equal(next.status, 400);
  assert.equal(next.body.error, 'invalid_grant');
});

braidTest('both instances checked both providers at start-up and show them ready', async () => {
  for (const instance of [env.first, env.second]) {
    for (const provider of ['idp', 'idp-es']) {
      const series = `braid_provider_status{provider="${provider}",state="ready"}`;
      let value = null;
      for (let i = 0; i < 50 && value !== 1; i += 1) {
        value = await metric(instance, series);
        if (value !== 1) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(value, 1, `${series} at ${instance.url}`);
    }
  }
});

braidTest('a provider that signs its ID tokens with ES256 works with no id_token_alg setting', async () => {
  const browser = new Browser();
  const callback = await signInUpstream(browser, env.second, 'idp-es', ES_ACCOUNT);
  const code = await codeFrom(await browser.request(at(env.second, callback)));
  const redeemed = await redeem(env.second, code);
  const profile = await me(env.first, redeemed.access_token);
  assert.equal(profile.body.identities[0].provider, 'idp-es');
  assert.equal(profile.body.identities[0].subject, ES_ACCOUNT);
});
