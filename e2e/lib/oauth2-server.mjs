// A real OAuth 2.0 server that is not an OpenID provider (no ID token, no discovery), shaped
// like GitHub's: a login page, a token endpoint and two JSON profile endpoints.
//
//   GET  /login/oauth/authorize      checks client_id, redirect_uri and PKCE S256, shows a form
//                                    (one radio per account)
//   POST /login/oauth/authorize      account=<id>&request=<id> → redirect_uri?code=…&state=…
//   POST /login/oauth/access_token   authorization_code grant (client_secret_basic or _post),
//                                    code single use, PKCE verifier checked
//   GET  /api/user                   {id, login, name, avatar_url} of the token's account
//   GET  /api/user/emails            [{email, verified, primary}]
//
// Accounts: { [accountId]: { id?: number, login, name, emails: [{email, verified, primary}] } }.
// An account without `id` gets a profile without one (a provider that leaves out the subject).

import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { escapeHtml, readForm } from './util.mjs';

const CODE_TTL_MS = 60_000;

const token = () => randomBytes(24).toString('base64url');

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function html(res, status, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Acme sign-in</title></head><body>${body}</body></html>`);
}

/** client_secret_basic (form-urlencoded id and secret, RFC 6749 §2.3.1) or client_secret_post. */
function clientCredentials(req, form) {
  const auth = req.headers.authorization ?? '';
  if (auth.startsWith('Basic ')) {
    const [id, secret] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
    return { id: decodeURIComponent(id ?? ''), secret: decodeURIComponent(secret ?? ''), method: 'client_secret_basic' };
  }
  return { id: form.get('client_id') ?? '', secret: form.get('client_secret') ?? '', method: 'client_secret_post' };
}

/**
 * @param {object} o
 * @param {{client_id: string, client_secret: string, redirect_uris: string[]}} o.client
 * @param {Record<string, object>} o.accounts
 * @returns {Promise<{url: string, requests: object[], tokenRequests: object[], close: () => Promise<void>}>}
 */
export async function startOAuth2Server({ client, accounts }) {
  const pending = new Map(); // request id → authorization request
  const codes = new Map(); // code → { account, redirectUri, challenge, expires }
  const tokens = new Map(); // access token → account id
  const requests = []; // authorization requests as received (query objects)
  const tokenRequests = []; // { method, hadVerifier }

  function authorize(url, res) {
    const q = Object.fromEntries(url.searchParams);
    requests.push(q);
    if (q.client_id !== client.client_id || !client.redirect_uris.includes(q.redirect_uri)) {
      return html(res, 400, '<h1>Unknown client or redirect URI</h1>');
    }
    const back = new URL(q.redirect_uri);
    const fail = (error) => {
      back.searchParams.set('error', error);
      if (q.state) back.searchParams.set('state', q.state);
      res.writeHead(303, { location: back.href });
      res.end();
    };
    if (q.response_type !== 'code') return fail('unsupported_response_type');
    if (q.code_challenge_method !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(q.code_challenge ?? '')) return fail('invalid_request');
    const id = token();
    pending.set(id, q);
    const radios = Object.entries(accounts)
      .map(
        ([accountId, a], i) =>
          `<p><input type="radio" name="account" id="a${i}" value="${escapeHtml(accountId)}"${i === 0 ? ' checked' : ''}>` +
          `<label for="a${i}">${escapeHtml(accountId)}</label></p>`,
      )
      .join('');
    return html(
      res,
      200,
      `<h1>Sign in to Acme</h1><p>Acme (plain OAuth 2.0) asks for: ${escapeHtml(q.scope ?? '')}</p>` +
        `<form method="post" action="/login/oauth/authorize"><input type="hidden" name="request" value="${id}">` +
        `${radios}<button type="submit">Sign in</button></form>`,
    );
  }

  async function login(req, res) {
    const form = await readForm(req);
    const q = pending.get(form.get('request') ?? '');
    const accountId = form.get('account') ?? '';
    if (!q || !(accountId in accounts)) return html(res, 400, '<h1>This sign-in has expired</h1>');
    pending.delete(form.get('request'));
    const code = token();
    codes.set(code, { account: accountId, redirectUri: q.redirect_uri, challenge: q.code_challenge, expires: Date.now() + CODE_TTL_MS });
    const back = new URL(q.redirect_uri);
    back.searchParams.set('code', code);
    if (q.state) back.searchParams.set('state', q.state);
    res.writeHead(303, { location: back.href });
    res.end();
  }

  async function exchange(req, res) {
    const form = await readForm(req);
    const creds = clientCredentials(req, form);
    tokenRequests.push({ method: creds.method, hadVerifier: form.has('code_verifier') });
    if (creds.id !== client.client_id || creds.secret !== client.client_secret) return json(res, 401, { error: 'invalid_client' });
    if (form.get('grant_type') !== 'authorization_code') return json(res, 400, { error: 'unsupported_grant_type' });
    const grant = codes.get(form.get('code') ?? '');
    codes.delete(form.get('code') ?? '');
    if (!grant || grant.expires < Date.now() || grant.redirectUri !== form.get('redirect_uri')) return json(res, 400, { error: 'invalid_grant' });
    const challenge = createHash('sha256').update(form.get('code_verifier') ?? '').digest('base64url');
    if (challenge !== grant.challenge) return json(res, 400, { error: 'invalid_grant' });
    const access = token();
    tokens.set(access, grant.account);
    return json(res, 200, { access_token: access, token_type: 'bearer', scope: 'read:user,user:email' });
  }

  function api(req, res, path) {
    const auth = req.headers.authorization ?? '';
    const accountId = auth.startsWith('Bearer ') ? tokens.get(auth.slice(7)) : undefined;
    if (!accountId) return json(res, 401, { message: 'Bad credentials' });
    const a = accounts[accountId];
    if (path === '/api/user') {
      const { emails, ...profile } = a;
      return json(res, 200, profile);
    }
    return json(res, 200, a.emails ?? []);
  }

  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, 'http://oauth2.invalid');
      if (url.pathname === '/login/oauth/authorize' && req.method === 'GET') return authorize(url, res);
      if (url.pathname === '/login/oauth/authorize' && req.method === 'POST') return await login(req, res);
      if (url.pathname === '/login/oauth/access_token' && req.method === 'POST') return await exchange(req, res);
      if ((url.pathname === '/api/user' || url.pathname === '/api/user/emails') && req.method === 'GET') return api(req, res, url.pathname);
      return json(res, 404, { message: 'Not Found' });
    } catch (err) {
      return json(res, 400, { error: 'invalid_request', error_description: err.message });
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    tokenRequests,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
