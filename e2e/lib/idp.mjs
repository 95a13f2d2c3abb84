// A real upstream OpenID provider (the `oidc-provider` package) on loopback, with in-memory
// accounts and a login interaction that a test drives over plain HTTP:
//
//   GET  /interaction/:uid        a tiny HTML form (one radio per account)
//   POST /interaction/:uid/login  login=<account id>  → finishes the interaction (login + grant)
//   POST /interaction/:uid/abort  → finishes it with access_denied
//
// The grant for the requested scopes and claims is created together with the login, so no
// consent page is ever shown.

import http from 'node:http';
import { randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';
import { escapeHtml, readForm } from './util.mjs';

const SCOPES = ['openid', 'email', 'profile', 'phone'];

/** Claims per scope. email_verified is only ever a JSON boolean (the account decides). */
const CLAIMS = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name'],
  phone: ['phone_number', 'phone_number_verified'],
};

const ACCOUNT_CLAIMS = new Set(Object.values(CLAIMS).flat());

/**
 * Listens on 127.0.0.1 on a free port (or `port`) and resolves once it accepts connections.
 * @returns {Promise<{server: http.Server, port: number}>}
 */
function listenLoopback(handler, port = 0) {
  const server = http.createServer(handler);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve({ server, port: server.address().port });
    });
  });
}

function send(res, status, contentType, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

/**
 * The scopes and claims an authorization request asks for: everything requested is granted.
 * Requested claims come from the `claims` request parameter, if any.
 */
function requestedScopesAndClaims(params) {
  const scope = String(params.scope ?? '')
    .split(' ')
    .filter((s) => SCOPES.includes(s));
  const claims = new Set();
  if (params.claims) {
    try {
      const parsed = typeof params.claims === 'string' ? JSON.parse(params.claims) : params.claims;
      for (const part of ['id_token', 'userinfo']) {
        for (const name of Object.keys(parsed?.[part] ?? {})) claims.add(name);
      }
    } catch {
      // oidc-provider already rejected a malformed claims parameter before the interaction.
    }
  }
  return { scope: scope.join(' '), claims: [...claims] };
}

/**
 * Starts one oidc-provider instance.
 *
 * @param {object} options
 * @param {string} [options.name] label used in log lines and pages
 * @param {Record<string, {email?: string, email_verified?: boolean, name?: string,
 *   phone_number?: string, phone_number_verified?: boolean}>} options.accounts
 *   account id (= `sub`) → claims
 * @param {Array<{client_id: string, client_secret?: string, redirect_uris: string[],
 *   token_endpoint_auth_method?: string}>} options.clients
 * @param {number} [options.port] 0 (default) for a free port
 * @returns {Promise<{issuer: string, authorizationEndpoint: string, tokenEndpoint: string,
 *   jwksUri: string, provider: Provider, events: object[], close: () => Promise<void>}>}
 */
export async function startIdp({ name = 'idp', accounts, clients, port = 0, claimsInIdToken = true, alg = 'RS256' }) {
  if (!accounts || Object.keys(accounts).length === 0) throw new Error('startIdp: no accounts');
  if (!clients || clients.length === 0) throw new Error('startIdp: no clients');

  // The issuer contains the port, so listen first and hand requests to the provider once it
  // exists; nothing can connect before `listen` resolves.
  let handler = (_req, res) => send(res, 503, 'text/plain', 'starting');
  const { server, port: boundPort } = await listenLoopback((req, res) => handler(req, res), port);
  const issuer = `http://127.0.0.1:${boundPort}`;

  // `alg`: the ID token algorithm (RS256, ES256, ...); the one key is made for it.
  const { privateKey } = await generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
  const signingKey = {
    ...(await exportJWK(privateKey)),
    kid: `${name}-${randomBytes(6).toString('hex')}`,
    use: 'sig',
    alg,
  };

  /** Errors and notable events, for diagnostics when a test fails. */
  const events = [];
  const record = (type, detail) => {
    events.push({ at: new Date().toISOString(), type, ...detail });
    if (events.length > 200) events.shift();
    if (process.env.BRAID_E2E_DEBUG) console.error(`[${name}] ${type}`, detail);
  };

  const provider = new Provider(issuer, {
    clients: clients.map((c) => ({
      grant_types: ['authorization_code'],
      response_types: ['code'],
      // client_secret_basic; oidc-provider 9 accepts client_secret_post for such a client too.
      token_endpoint_auth_method: 'client_secret_basic',
      scope: SCOPES.join(' '),
      id_token_signed_response_alg: alg,
      ...c,
    })),
    jwks: { keys: [signingKey] },
    // Distinct cookie names per instance: both issuers live on 127.0.0.1, and browsers do not
    // scope cookies by port, so identical names would overwrite each other in one jar.
    cookies: {
      keys: [randomBytes(32).toString('base64url')],
      names: {
        session: `_session_${name}`,
        interaction: `_interaction_${name}`,
        resume: `_interaction_resume_${name}`,
      },
    },
    scopes: SCOPES,
    claims: CLAIMS,
    // claimsInIdToken: scope-requested claims (email, email_verified, name) go into the ID
    // token too, as most real providers do; otherwise (oidc-provider's default) only UserInfo
    // has them, so Braid must call it.
    conformIdTokenClaims: !claimsInIdToken,
    responseTypes: ['code'],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      // RFC 9207 `iss` in the authorization response is always on in oidc-provider 9.
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    ttl: {
      // Short but generous for a slow CI machine.
      AuthorizationCode: 120,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
      IdToken: 600,
      AccessToken: 600,
    },
    async findAccount(_ctx, id) {
      const account = Object.hasOwn(accounts, id) ? accounts[id] : undefined;
      if (!account) return undefined;
      return {
        accountId: id,
        async claims() {
          const out = { sub: id };
          for (const [k, v] of Object.entries(account)) {
            if (ACCOUNT_CLAIMS.has(k)) out[k] = v;
          }
          return out;
        },
      };
    },
    async renderError(ctx, out, error) {
      record('render_error', { ...out, message: error?.message });
      ctx.type = 'html';
      ctx.body = `<!doctype html><title>error</title><h1>${escapeHtml(name)}: error</h1><pre>${escapeHtml(JSON.stringify(out, null, 2))}</pre>`;
    },
  });

  for (const event of [
    'authorization.error',
    'grant.error',
    'server_error',
    'interaction.ended',
    'grant.success',
  ]) {
    provider.on(event, (...args) => {
      const err = args.find((a) => a instanceof Error);
      record(event, err ? { error: err.error ?? err.name, description: err.error_description ?? err.message } : {});
    });
  }

  const oidcCallback = provider.callback();

  async function loginPage(req, res, uid, message) {
    const details = await provider.interactionDetails(req, res);
    const options = Object.keys(accounts)
      .map((id) => `<label><input type="radio" name="login" value="${escapeHtml(id)}"> ${escapeHtml(id)}</label><br>`)
      .join('\n');
    send(
      res,
      message ? 400 : 200,
      'text/html; charset=utf-8',
      `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(name)} sign-in</title></head>
<body>
<h1>${escapeHtml(name)}: sign in to ${escapeHtml(details.params.client_id)}</h1>
${message ? `<p class="error">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
${options}
<button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort"><button type="submit">Cancel</button></form>
</body></html>`,
    );
  }

  /** A grant for everything the authorization request asked for. */
  async function grantFor(details, accountId) {
    const { prompt, params, grantId } = details;
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId, clientId: params.client_id });
    const requested = requestedScopesAndClaims(params);
    if (requested.scope) grant.addOIDCScope(requested.scope);
    if (requested.claims.length) grant.addOIDCClaims(requested.claims);
    // Whatever the consent prompt itself reports missing (e.g. on a later interaction).
    const missing = prompt?.name === 'consent' ? prompt.details ?? {} : {};
    if (missing.missingOIDCScope?.length) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims?.length) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    return grant.save();
  }

  async function interactionRoutes(req, res, url) {
    const m = url.pathname.match(/^\/interaction\/([A-Za-z0-9_-]+)(\/login|\/abort)?$/);
    if (!m) return false;
    const [, uid, action] = m;
    try {
      const details = await provider.interactionDetails(req, res);
      if (details.uid !== uid) {
        send(res, 400, 'text/plain', 'interaction cookie does not match this interaction');
        return true;
      }
      if (req.method === 'GET' && !action) {
        if (details.prompt.name === 'consent' && details.session?.accountId) {
          // Already signed in, only consent missing: grant it without a page.
          const grantId = await grantFor(details, details.session.accountId);
          await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
          return true;
        }
        await loginPage(req, res, uid);
        return true;
      }
      if (req.method === 'POST' && action === '/login') {
        const form = await readForm(req);
        const accountId = form.get('login') ?? '';
        if (!Object.hasOwn(accounts, accountId)) {
          await loginPage(req, res, uid, `unknown account ${JSON.stringify(accountId)}`);
          return true;
        }
        record('login', { accountId, client_id: details.params.client_id });
        const grantId = await grantFor(details, accountId);
        await provider.interactionFinished(
          req,
          res,
          { login: { accountId, remember: false }, consent: { grantId } },
          { mergeWithLastSubmission: false },
        );
        return true;
      }
      if (req.method === 'POST' && action === '/abort') {
        await provider.interactionFinished(
          req,
          res,
          { error: 'access_denied', error_description: 'the user cancelled the sign-in' },
          { mergeWithLastSubmission: false },
        );
        return true;
      }
      send(res, 405, 'text/plain', 'method not allowed');
      return true;
    } catch (err) {
      record('interaction_error', { message: err.message, name: err.name });
      send(res, err.statusCode ?? 400, 'text/plain', `${err.name}: ${err.message}`);
      return true;
    }
  }

  handler = async (req, res) => {
    const url = new URL(req.url, issuer);
    if (await interactionRoutes(req, res, url)) return;
    oidcCallback(req, res);
  };

  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  return {
    name,
    issuer,
    authorizationEndpoint: `${issuer}/auth`,
    tokenEndpoint: `${issuer}/token`,
    jwksUri: `${issuer}/jwks`,
    provider,
    events,
    async close() {
      await new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections?.();
        for (const s of sockets) s.destroy();
      });
    },
  };
}
