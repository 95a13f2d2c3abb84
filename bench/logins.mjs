#!/usr/bin/env node
// Complete federated logins per second, and the broker's own CPU time per login.
// Issue budget: Braid uses <= 0.6 ms of CPU per complete federated login.
//
// Usage (from the repository root, after `cd e2e && npm ci` once):
//   node bench/logins.mjs [PATH_TO_BRAID] [--logins N] [--concurrency C] [--warmup W]
//                         [--accounts A] [--max-seconds S] [--upstream oidc|oauth2]
// --upstream oauth2: the upstream is instead the plain OAuth 2.0 server of the e2e suite
// (../e2e/lib/oauth2-server.mjs, GitHub-shaped: token endpoint, /api/user, /api/user/emails),
// configured in braid with `preset = "oauth2"` and a claim mapping.
// Default binary: $CARGO_TARGET_DIR/release/braid, else target/release/braid.
// Database: SQLite in a fresh temp dir; BRAID_BENCH_DATABASE_URL=postgres://… for PostgreSQL
// (a database prepared by the caller; subjects and emails get a per-run tag).
//
// One oidc-provider IdP (../e2e/lib/idp.mjs, in a child process of its own so its CPU can be
// told apart from the load driver's) with A accounts (verified emails), the release braid
// (../e2e/lib/braid.mjs, automatic linking), and C concurrent "browsers" (../e2e/lib/browser.mjs),
// each login in a fresh cookie jar:
//   GET braid /auth/connect/idp-a?client_id&redirect_uri&state  -> 303 to the IdP
//   IdP authorize -> interaction page -> POST login -> resume      -> 303 to braid's callback
//   GET braid callback (braid calls the IdP's token and userinfo   -> 303 to the app with `code`
//     endpoints: the `oidc` preset fetches userinfo)
// Every measured login must end in a 303 to the app's redirect URI with a code and the same
// state; any failure makes the exit status 1. CPU comes from /proc/<pid>/stat (utime+stime, in
// clock ticks of 1/CLK_TCK s) read right before and after the measured logins.

import { execFileSync, fork } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { braidBinFromEnv, startBraid } from '../e2e/lib/braid.mjs';
import { Browser, findFormAction } from '../e2e/lib/browser.mjs';
import { freePort, randomToken } from '../e2e/lib/util.mjs';

const SELF = fileURLToPath(import.meta.url);
const APP = 'bench-app';
const APP_REDIRECT = 'https://app.example/cb'; // never requested: the login stops at the 303
const PROVIDER = 'idp-a';
const MAX_HOPS = 12;

// ---------------------------------------------------------------- IdP child process
// `node bench/logins.mjs --idp-server`: started by the parent with fork(); receives
// {accounts, clients} over IPC, answers {issuer} once listening, exits on 'stop' or when the
// parent goes away.
if (process.argv[2] === '--idp-server') {
  process.once('message', async ({ accounts, clients, upstream }) => {
    let idp;
    if (upstream === 'oauth2') {
      const { startOAuth2Server } = await import('../e2e/lib/oauth2-server.mjs');
      idp = await startOAuth2Server({ client: clients[0], accounts });
      idp.authorizationEndpoint = `${idp.url}/login/oauth/authorize`;
    } else {
      const { startIdp } = await import('../e2e/lib/idp.mjs'); // oidc-provider: loaded only here
      idp = await startIdp({ name: PROVIDER, accounts, clients });
    }
    process.send({ issuer: idp.issuer ?? idp.url, authorizationEndpoint: idp.authorizationEndpoint });
    process.on('message', async (m) => {
      if (m === 'stop') {
        await idp.close();
        process.exit(0);
      }
    });
  });
  process.on('disconnect', () => process.exit(0));
} else {
  main().catch((err) => {
    console.error(`FAILED: ${err?.message ?? err}`);
    process.exit(1);
  });
}

// ---------------------------------------------------------------- helpers
function parseArgs(argv) {
  const opts = { logins: 1000, concurrency: 8, warmup: 50, accounts: 200, maxSeconds: 600, bin: null, upstream: 'oidc' };
  const names = { '--logins': 'logins', '--concurrency': 'concurrency', '--warmup': 'warmup', '--accounts': 'accounts', '--max-seconds': 'maxSeconds' };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (a === '--upstream') {
      opts.upstream = argv[(i += 1)];
      if (!['oidc', 'oauth2'].includes(opts.upstream)) throw new Error('--upstream is oidc or oauth2');
    } else if (names[a]) {
      const v = Number(argv[(i += 1)]);
      if (!Number.isInteger(v) || v < (a === '--warmup' ? 0 : 1)) throw new Error(`${a} needs a positive integer`);
      opts[names[a]] = v;
    } else if (a.startsWith('--')) {
      throw new Error(`unknown option ${a}`);
    } else {
      opts.bin = a;
    }
  }
  return opts;
}

function defaultBin() {
  const target = process.env.CARGO_TARGET_DIR ?? path.join(path.dirname(SELF), '..', 'target');
  return path.resolve(target, 'release', 'braid');
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process (all its threads), in ms, from /proc/<pid>/stat fields 14 and 15. */
/** [user, system] CPU milliseconds of a process (fields 14 and 15 of /proc/<pid>/stat). */
function cpuSplitMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // rest[0] is field 3 (state)
  return [Number(rest[14 - 3]), Number(rest[15 - 3])].map((ticks) => (ticks * 1000) / CLK_TCK);
}

/** Context switches of all of a process's threads (voluntary + involuntary). */
function contextSwitches(pid) {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)) total += Number(m[1]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return total;
}

function cpuMs(pid) {
  const [user, system] = cpuSplitMs(pid);
  return user + system;
}

const selfCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** A request whose body is always read, so keep-alive connections are reused. */
async function get(browser, url, init) {
  const r = await browser.request(url, init);
  r.bodyText = await r.text();
  return r;
}

/**
 * One complete federated login in a fresh browser. Returns the two braid-side latencies (ms);
 * throws with the request trace on anything but a 303 to the app with a code and our state.
 */
async function login(env, account) {
  const browser = new Browser({ userAgent: 'braid-bench' });
  const state = randomToken(16);
  const start = new URL(`/auth/connect/${PROVIDER}`, env.braidUrl);
  start.search = new URLSearchParams({ client_id: APP, redirect_uri: APP_REDIRECT, state }).toString();

  let t0 = performance.now();
  let r = await get(browser, start.href);
  const startMs = performance.now() - t0;
  if (![302, 303].includes(r.status) || !r.location?.startsWith(`${env.authorizationEndpoint}?`)) {
    throw new Error(`start: ${r.status} ${r.location ?? r.bodyText.slice(0, 300)}`);
  }

  // At the IdP until it redirects to braid's callback (not requested here).
  let loggedIn = false;
  let callback = null;
  r = await get(browser, r.location);
  for (let hop = 0; hop < MAX_HOPS && !callback; hop += 1) {
    if ([302, 303].includes(r.status) && r.location) {
      if (r.location.startsWith(`${env.callbackUrl}?`)) callback = r.location;
      else r = await get(browser, r.location);
    } else if (r.status === 200 && !loggedIn && new URL(r.requestUrl).pathname === '/login/oauth/authorize') {
      // The plain OAuth 2.0 server's page: a hidden request id and one radio per account.
      const request = r.bodyText.match(/name="request" value="([^"]+)"/)?.[1];
      if (!request) break;
      loggedIn = true;
      r = await get(browser, new URL('/login/oauth/authorize', r.requestUrl).href, { method: 'POST', form: { request, account } });
    } else if (r.status === 200 && !loggedIn && /\/interaction\/[^/]+$/.test(new URL(r.requestUrl).pathname)) {
      const action = findFormAction(r.bodyText, r.requestUrl, /\/interaction\/[^/]+\/login$/);
      if (!action) break;
      loggedIn = true;
      r = await get(browser, action, { method: 'POST', form: { login: account } });
    } else {
      break;
    }
  }
  if (!callback || !loggedIn) throw new Error(`IdP login did not reach braid's callback\n${browser.describeTrace()}`);

  t0 = performance.now();
  r = await get(browser, callback);
  const callbackMs = performance.now() - t0;
  const back = r.location ? new URL(r.location) : null;
  if (
    r.status !== 303 ||
    !r.location.startsWith(`${APP_REDIRECT}?`) ||
    !back.searchParams.get('code') ||
    back.searchParams.get('state') !== state ||
    back.searchParams.get('error') !== null
  ) {
    throw new Error(`callback: ${r.status} ${r.location ?? r.bodyText.slice(0, 500)}\n${browser.describeTrace()}`);
  }
  return { startMs, callbackMs };
}

/** `count` logins with `concurrency` workers; account i % accounts for login `first + i`. */
async function runLogins(env, { first, count, concurrency, deadline }) {
  const result = { ok: 0, failed: 0, errors: [], startMs: [], callbackMs: [] };
  let next = 0;
  async function worker() {
    while (next < count) {
      if (Date.now() > deadline) {
        result.failed += count - next; // not attempted in time
        result.errors.push(`time limit reached with ${count - next} logins not started`);
        next = count;
        return;
      }
      const i = first + next;
      next += 1;
      try {
        const t = await login(env, env.accountIds[i % env.accountIds.length]);
        result.ok += 1;
        result.startMs.push(t.startMs);
        result.callbackMs.push(t.callbackMs);
      } catch (err) {
        result.failed += 1;
        if (result.errors.length < 5) result.errors.push(err.message);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return result;
}

function startIdpChild(accounts, clients, upstream) {
  const child = fork(SELF, ['--idp-server'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the IdP did not start within 30 s')), 30_000);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the IdP exited early (code ${code})`)));
    child.once('message', (m) => {
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve({ child, ...m });
    });
    child.send({ accounts, clients, upstream });
  });
}

async function stopIdpChild(child) {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.send('stop');
  const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(t);
}

/** `preset = "oauth2"` against the e2e OAuth 2.0 server: GitHub's shape, as data. */
function oauth2Provider(base, secret) {
  return [
    `[federated_login.providers.${PROVIDER}]`,
    'preset = "oauth2"',
    'client_id = "braid"',
    `client_secret = "${secret}"`,
    `authorization_url = "${base}/login/oauth/authorize"`,
    `token_url = "${base}/login/oauth/access_token"`,
    `userinfo_url = ["${base}/api/user", "${base}/api/user/emails"]`,
    'scopes = ["read:user", "user:email"]',
    'trust_email = true',
    `[federated_login.providers.${PROVIDER}.mapping]`,
    'subject = "/0/id"',
    'email = "/1/*/email"',
    'email_verified = "/1/*/verified"',
    'name = "/0/name"',
    'username = "/0/login"',
  ].join('\n');
}

// ---------------------------------------------------------------- main
async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const binPath = opts.bin ?? defaultBin();
  if (!existsSync(binPath)) throw new Error(`no braid binary at ${binPath} (cargo build --release -p braid-server, or pass its path)`);
  const bin = braidBinFromEnv({ BRAID_E2E_BIN: binPath }); // also checks it is an executable file
  const pgUrl = process.env.BRAID_BENCH_DATABASE_URL;
  // A caller-provided database may hold an earlier run's users: tag this run's subjects/emails.
  const tag = pgUrl ? `-${randomToken(6).toLowerCase().replace(/[^a-z0-9]/g, 'x')}` : '';
  const accounts = {};
  for (let i = 0; i < opts.accounts; i += 1) {
    const id = `user${String(i).padStart(4, '0')}${tag}`;
    accounts[id] =
      opts.upstream === 'oauth2'
        ? { id: 1_000_000 + i, login: id, name: `Bench User ${i}`, emails: [{ email: `${id}@example.com`, verified: true, primary: true }] }
        : { email: `${id}@example.com`, email_verified: true, name: `Bench User ${i}` };
  }

  const sqliteDir = pgUrl ? null : mkdtempSync(path.join(tmpdir(), 'braid-bench-'));
  const databaseUrl = pgUrl ?? `sqlite://${path.join(sqliteDir, 'braid.db')}`;
  const braidPort = await freePort();
  const braidUrl = `http://127.0.0.1:${braidPort}`;
  const callbackUrl = `${braidUrl}/auth/connect/${PROVIDER}/callback`;
  const idpSecret = randomToken();

  let idp = null;
  let braid = null;
  const cleanup = async () => {
    await braid?.stop().catch(() => {});
    await stopIdpChild(idp?.child).catch(() => {});
    if (sqliteDir) rmSync(sqliteDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => cleanup().finally(() => process.exit(130)));

  try {
    idp = await startIdpChild(accounts, [
      {
        client_id: 'braid',
        client_secret: idpSecret,
        redirect_uris: [callbackUrl],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ], opts.upstream);
    braid = await startBraid({
      bin,
      port: braidPort,
      databaseUrl,
      resolution: 'automatic',
      providers: opts.upstream === 'oauth2' ? {} : { [PROVIDER]: { issuer: idp.issuer, clientId: 'braid', clientSecret: idpSecret, trustEmail: true } },
      clients: { [APP]: { redirectUris: [APP_REDIRECT], secret: randomToken(32) } },
      extraToml: opts.upstream === 'oauth2' ? oauth2Provider(idp.issuer, idpSecret) : undefined,
    });
    const braidPid = braid.child?.pid;
    if (!braidPid || !existsSync(`/proc/${braidPid}/stat`)) throw new Error('no /proc/<pid>/stat for braid');

    const env = { braidUrl, callbackUrl, authorizationEndpoint: idp.authorizationEndpoint, accountIds: Object.keys(accounts) };
    const deadline = Date.now() + opts.maxSeconds * 1000;

    const warm = await runLogins(env, { first: 0, count: opts.warmup, concurrency: opts.concurrency, deadline });
    if (warm.failed > 0) throw new Error(`warm-up: ${warm.failed} of ${opts.warmup} logins failed:\n${warm.errors.join('\n---\n')}`);

    const splitBefore = cpuSplitMs(braidPid);
    const switchesBefore = contextSwitches(braidPid);
    const before = { braid: cpuMs(braidPid), idp: cpuMs(idp.child.pid), driver: selfCpuMs(), wall: performance.now() };
    const run = await runLogins(env, { first: opts.warmup, count: opts.logins, concurrency: opts.concurrency, deadline });
    const splitAfter = cpuSplitMs(braidPid);
    const switchesAfter = contextSwitches(braidPid);
    const after = { braid: cpuMs(braidPid), idp: cpuMs(idp.child.pid), driver: selfCpuMs(), wall: performance.now() };

    const n = Math.max(run.ok, 1); // CPU per completed login (a run with failures is invalid anyway)
    const wallS = (after.wall - before.wall) / 1000;
    const per = (k) => (after[k] - before[k]) / n;
    const total = per('braid') + per('idp') + per('driver');
    const newUsers = Math.max(0, Math.min(opts.accounts, opts.warmup + opts.logins) - Math.min(opts.accounts, opts.warmup));
    const s = (xs) => [...xs].sort((a, b) => a - b);
    const [st, cb] = [s(run.startMs), s(run.callbackMs)];
    const pct = (xs) => `p50 ${percentile(xs, 50).toFixed(1)} ms, p95 ${percentile(xs, 95).toFixed(1)} ms`;

    console.log(`binary: ${bin}`);
    console.log(`database: ${pgUrl ? 'PostgreSQL (BRAID_BENCH_DATABASE_URL)' : 'SQLite (temp dir)'}`);
    console.log(`upstream: ${opts.upstream === 'oauth2' ? 'plain OAuth 2.0 (preset oauth2: token + 2 profile URLs)' : 'OpenID Connect (preset oidc: token + userinfo)'}`);
    console.log(
      `logins: ${opts.logins} measured after ${opts.warmup} warm-up, concurrency ${opts.concurrency}, ` +
        `${opts.accounts} IdP accounts (${newUsers} of the measured logins create a user, the rest are returning users)`,
    );
    console.log(`completed: ${run.ok} ok, ${run.failed} failed`);
    console.log(`throughput: ${(run.ok / wallS).toFixed(1)} complete logins/s (${wallS.toFixed(2)} s wall clock)`);
    console.log(`braid /auth/connect latency: ${pct(st)}`);
    console.log(`braid callback latency (includes its calls to the IdP token + userinfo endpoints): ${pct(cb)}`);
    console.log(`CPU per login (CLK_TCK ${CLK_TCK}, i.e. ${(1000 / CLK_TCK).toFixed(0)} ms ticks):`);
    const verdict = run.failed > 0 ? 'invalid run' : per('braid') <= 0.6 ? 'met' : 'NOT met';
    const [userMs, sysMs] = [0, 1].map((i) => (splitAfter[i] - splitBefore[i]) / n);
    console.log(`  braid (broker):  ${per('braid').toFixed(3)} ms   [budget <= 0.6 ms: ${verdict}]  (user ${userMs.toFixed(3)}, system ${sysMs.toFixed(3)}; ${((switchesAfter - switchesBefore) / n).toFixed(1)} context switches)`);
    console.log(`  IdP (node):      ${per('idp').toFixed(3)} ms`);
    console.log(`  driver (node):   ${per('driver').toFixed(3)} ms`);
    console.log(
      `  total:           ${total.toFixed(3)} ms  (${((total * n) / 1000 / wallS).toFixed(2)} of ` +
        `the machine's cores busy on average)`,
    );
    if (run.failed > 0) {
      console.error(`FAILED: ${run.failed} logins did not end in a 303 with a code:\n${run.errors.join('\n---\n')}`);
      process.exitCode = 1;
    }
  } finally {
    await cleanup();
  }
}
