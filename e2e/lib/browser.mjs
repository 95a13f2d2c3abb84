// A minimal "browser" for plain-HTTP end-to-end flows: a cookie jar, manual redirects, and a
// helper that signs in at an `oidc-provider` instance started by ./idp.mjs.
//
// The jar follows RFC 6265 the way browsers do for http://127.0.0.1: cookies are keyed by
// host (NOT port: Braid and every IdP share one jar for 127.0.0.1), name and path; Path and
// expiry (Max-Age, Expires) are honoured; Secure cookies are never sent over http. SameSite is
// not enforced: everything here is the same site (127.0.0.1, any port), so a browser would send
// Lax and Strict cookies on these top-level navigations anyway.

const DEFAULT_MAX_HOPS = 20;
const REQUEST_TIMEOUT_MS = 15_000;

function defaultPath(pathname) {
  // RFC 6265 §5.1.4
  if (!pathname.startsWith('/')) return '/';
  const i = pathname.lastIndexOf('/');
  return i <= 0 ? '/' : pathname.slice(0, i);
}

function pathMatches(requestPath, cookiePath) {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

export class CookieJar {
  /** @type {Map<string, {name: string, value: string, host: string, path: string,
   *   expires: number | null, secure: boolean, httpOnly: boolean, sameSite: string | null}>} */
  #cookies = new Map();

  static #key(host, path, name) {
    return `${host}\u0000${path}\u0000${name}`;
  }

  /** Stores every Set-Cookie of a response to `url`. Returns the cookies set (or deleted). */
  store(url, response) {
    const u = new URL(url);
    const stored = [];
    for (const header of response.headers.getSetCookie()) {
      const c = this.#parse(u, header);
      if (c) stored.push(c);
    }
    return stored;
  }

  #parse(u, header) {
    const [pair, ...attrs] = header.split(';');
    const eq = pair.indexOf('=');
    if (eq <= 0) return null; // nameless cookies: ignored
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const cookie = {
      name,
      value,
      host: u.hostname,
      path: defaultPath(u.pathname),
      expires: null,
      secure: false,
      httpOnly: false,
      sameSite: null,
    };
    let maxAgeSeen = false;
    for (const attr of attrs) {
      const i = attr.indexOf('=');
      const key = (i === -1 ? attr : attr.slice(0, i)).trim().toLowerCase();
      const val = i === -1 ? '' : attr.slice(i + 1).trim();
      switch (key) {
        case 'path':
          if (val.startsWith('/')) cookie.path = val;
          break;
        case 'max-age': {
          if (/^-?\d+$/.test(val)) {
            maxAgeSeen = true;
            const secs = Number(val);
            cookie.expires = secs <= 0 ? 0 : Date.now() + secs * 1000;
          }
          break;
        }
        case 'expires': {
          if (!maxAgeSeen) {
            const t = Date.parse(val);
            if (!Number.isNaN(t)) cookie.expires = t;
          }
          break;
        }
        case 'domain': {
          // Only host-only cookies and a Domain equal to the host make sense on an IP address.
          const d = val.replace(/^\./, '').toLowerCase();
          if (d && d !== u.hostname) return null;
          break;
        }
        case 'secure':
          cookie.secure = true;
          break;
        case 'httponly':
          cookie.httpOnly = true;
          break;
        case 'samesite':
          cookie.sameSite = val.toLowerCase();
          break;
        default:
      }
    }
    if (cookie.secure && u.protocol !== 'https:') return null; // browsers reject these
    const key = CookieJar.#key(cookie.host, cookie.path, cookie.name);
    if (cookie.expires !== null && cookie.expires <= Date.now()) {
      this.#cookies.delete(key);
      return { ...cookie, deleted: true };
    }
    this.#cookies.set(key, cookie);
    return cookie;
  }

  /** The cookies a browser would send to `url`, longest path first (RFC 6265 §5.4). */
  cookiesFor(url) {
    const u = new URL(url);
    const now = Date.now();
    const out = [];
    for (const [key, c] of this.#cookies) {
      if (c.expires !== null && c.expires <= now) {
        this.#cookies.delete(key);
        continue;
      }
      if (c.host !== u.hostname) continue;
      if (c.secure && u.protocol !== 'https:') continue;
      if (!pathMatches(u.pathname, c.path)) continue;
      out.push(c);
    }
    return out.sort((a, b) => b.path.length - a.path.length);
  }

  header(url) {
    const list = this.cookiesFor(url);
    return list.length ? list.map((c) => `${c.name}=${c.value}`).join('; ') : null;
  }

  /** Every stored cookie (for assertions and diagnostics). */
  all() {
    return [...this.#cookies.values()];
  }
}

/**
 * One request, exactly like a browser would send it (plus the jar's cookies), never following
 * redirects. Stores the response's cookies. Returns the response with two extras:
 * `location` (absolute, or null) and `setCookies` (what this response set).
 */
export class Browser {
  constructor({ jar = new CookieJar(), userAgent = 'braid-e2e' } = {}) {
    this.jar = jar;
    this.userAgent = userAgent;
    /** Every request made, for diagnostics: {method, url, status, location}. */
    this.trace = [];
  }

  async request(url, { method = 'GET', headers = {}, body, form } = {}) {
    const h = new Headers(headers);
    if (!h.has('user-agent')) h.set('user-agent', this.userAgent);
    if (!h.has('accept')) h.set('accept', 'text/html,application/json;q=0.9,*/*;q=0.8');
    const cookie = this.jar.header(url);
    if (cookie) h.set('cookie', cookie);
    let payload = body;
    if (form) {
      payload = new URLSearchParams(form).toString();
      h.set('content-type', 'application/x-www-form-urlencoded');
    }
    const response = await fetch(url, {
      method,
      headers: h,
      body: payload,
      redirect: 'manual',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const setCookies = this.jar.store(url, response);
    const raw = response.headers.get('location');
    const location = raw === null ? null : new URL(raw, url).href;
    this.trace.push({ method, url, status: response.status, location });
    return Object.assign(response, { location, setCookies, requestUrl: url });
  }

  /**
   * Follows redirects from `url` (GET, as browsers do after 301/302/303) until `until(location)`
   * is true for a redirect target, which is returned WITHOUT being requested. A non-redirect
   * response is handed to `onPage(response, body)`, which may return the next response (e.g.
   * after submitting a form) or null to stop with an error. Bounded by `maxHops`.
   */
  async followUntil(url, { until, onPage, maxHops = DEFAULT_MAX_HOPS }) {
    let response = await this.request(url);
    for (let hop = 0; hop < maxHops; hop += 1) {
      if (response.location && [301, 302, 303, 307, 308].includes(response.status)) {
        if (until(response.location)) return { location: response.location, response };
        response = await this.request(response.location);
        continue;
      }
      const body = await response.text();
      const next = onPage ? await onPage(response, body) : null;
      if (!next) {
        throw new Error(
          `stopped at ${response.status} ${response.requestUrl} without reaching the expected redirect\n` +
            `body: ${body.slice(0, 1500)}\n${this.describeTrace()}`,
        );
      }
      response = next;
    }
    throw new Error(`more than ${maxHops} hops without reaching the expected redirect\n${this.describeTrace()}`);
  }

  describeTrace() {
    return [
      'request trace:',
      ...this.trace.map((t) => `  ${t.method} ${t.url} -> ${t.status}${t.location ? ` Location: ${t.location}` : ''}`),
    ].join('\n');
  }
}

/** The first `<form method="post" action="…">` whose action matches `pattern`, absolute. */
export function findFormAction(html, baseUrl, pattern) {
  for (const m of html.matchAll(/<form\b[^>]*>/gi)) {
    const tag = m[0];
    if (!/method\s*=\s*["']?post/i.test(tag)) continue;
    const action = tag.match(/action\s*=\s*"([^"]*)"/i)?.[1] ?? tag.match(/action\s*=\s*'([^']*)'/i)?.[1];
    if (action === undefined) continue;
    const decoded = action.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&');
    const abs = new URL(decoded, baseUrl).href;
    if (!pattern || pattern.test(abs)) return abs;
  }
  return null;
}

/**
 * Signs in at an IdP started by ./idp.mjs: starting at `authorizeUrl` (the IdP's authorization
 * endpoint with its query, e.g. the Location Braid redirected to), follows redirects, submits
 * the login form as `account`, and follows on until a redirect whose Location satisfies
 * `until` (e.g. Braid's callback). Returns that Location, not requested.
 *
 * With `requireLogin` (default), a flow that never shows the login form (an IdP session left
 * over from an earlier login) is an error, so a test never silently signs in as someone else.
 */
export async function idpLogin(browser, authorizeUrl, { account, until, requireLogin = true, maxHops }) {
  let loggedIn = false;
  const result = await browser.followUntil(authorizeUrl, {
    until,
    maxHops,
    async onPage(response, body) {
      const url = new URL(response.requestUrl);
      if (response.status !== 200 || !/^\/interaction\/[^/]+$/.test(url.pathname)) return null;
      if (loggedIn) return null; // a second login page means the first submission failed
      const action = findFormAction(body, url, /\/interaction\/[^/]+\/login$/);
      if (!action) return null;
      loggedIn = true;
      return browser.request(action, { method: 'POST', form: { login: account } });
    },
  });
  if (requireLogin && !loggedIn) {
    throw new Error(`the IdP never asked to sign in (stale IdP session?)\n${browser.describeTrace()}`);
  }
  return result.location;
}
