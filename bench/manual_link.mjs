#!/usr/bin/env node
// Completed manual links per second, and the broker's own CPU time per manual link (issue 17:
// "CPU per completed manual link (select + verify by code) on SQLite").
//
// Usage (from the repository root, after `cd e2e && npm ci` once):
//   node bench/manual_link.mjs [PATH_TO_BRAID] [--links N] [--concurrency C] [--warmup W]
//                              [--profile P] [--logins L] [--max-seconds S]
// Default binary: $CARGO_TARGET_DIR/release/braid, else target/release/braid.
// Database: SQLite in a fresh temp dir; BRAID_BENCH_DATABASE_URL=postgres://… for PostgreSQL
// (a database prepared by the caller; subjects and emails get a per-run tag).
//
// One oidc-provider IdP (../e2e/lib/idp.mjs, in a child process of its own) with one account
// per link (verified email), an SMTP sink (../e2e/lib/smtp.mjs, in this process), and the
// release braid (../e2e/lib/braid.mjs) with `resolution = "manual"` and one imported user
// (`braid users import`, no password) per IdP account, with the same verified email. Every
// sign-in therefore stops at the select page, and the proof is a code sent by email. One
// manual link, in a fresh cookie jar:
//   GET  /auth/connect/idp-a?client_id&redirect_uri&state        -> 303 to the IdP
//   IdP authorize -> interaction page -> POST login -> resume     -> 303 to braid's callback
//   GET  callback (token + userinfo requests to the IdP)           -> 303 to the select page
//   GET  select page (csrf, the one candidate)                    -> 200
//   POST select  csrf&choice=0 (a code is queued in the outbox)    -> 303 to the verify page
//   GET  verify page (csrf)                                        -> 200
//   wait for the code at the SMTP sink (sent by braid's outbox worker)
//   POST verify  csrf&method=code&code=NNNNNN (links; queues a notice to the owner)
//                                                                  -> 303 to the app with `code`
// Each user can be linked once, so every link (warm-up and profile ones included) has its own
// IdP account and imported user. Every measured link must end in a 303 to the app with a code
// and the same state; any failure makes the exit status 1. CPU comes from /proc/<pid>/stat
// (utime+stime, in clock ticks of 1/CLK_TCK s) read before and after the measured links; the
// per-request split of the profile phase from /proc/<pid>/task/*/schedstat (nanoseconds).

import { execFileSync, fork } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { braidBinFromEnv, importUsers, startBraid, tomlString } from '../e2e/lib/braid.mjs';
import { Browser, findFormAction } from '../e2e/lib/browser.mjs';
import { SmtpServer } from '../e2e/lib/smtp.mjs';
import { freePort, randomToken, sleep } from '../e2e/lib/util.mjs';

const SELF = fileURLToPath(import.meta.url);
const APP = 'bench-app';
const APP_REDIRECT = 'https://app.example/cb'; // never requested: the flow stops at the 303
const PROVIDER = 'idp-a';
const SELECT_PATH = '/auth/connect/link/select';
const VERIFY_PATH = '/auth/connect/link/verify';
const CODE_SUBJECT = 'Your verification code';
const LINKED_SUBJECT = 'A new sign-in method was added to your account';
const MAIL_TIMEOUT_MS = 30_000;
const MAX_HOPS = 12;

// ---------------------------------------------------------------- IdP child process
// `node bench/manual_link.mjs --idp-server`: as in logins.mjs.
if (process.argv[2] === '--idp-server') {
  process.once('message', async ({ accounts, clients }) => {
    const { startIdp } = await import('../e2e/lib/idp.mjs'); // oidc-provider: loaded only here
    const idp = await startIdp({ name: PROVIDER, accounts, clients });
    process.send({ issuer: idp.issuer, authorizationEndpoint: idp.authorizationEndpoint });
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
  const opts = { links: 300, concurrency: 4, warmup: 20, profile: 50, logins: 300, maxSeconds: 900, bin: null };
  const names = {
    '--links': 'links',
    '--concurrency': 'concurrency',
    '--warmup': 'warmup',
    '--profile': 'profile',
    '--logins': 'logins',
    '--max-seconds': 'maxSeconds',
  };
  const mayBeZero = new Set(['--warmup', '--profile', '--logins']);
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (names[a]) {
      const v = Number(argv[(i += 1)]);
      if (!Number.isInteger(v) || v < (mayBeZero.has(a) ? 0 : 1)) throw new Error(`${a} needs a positive integer`);
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

/** [user, system] CPU milliseconds of a process (fields 14 and 15 of /proc/<pid>/stat). */
function cpuSplitMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // rest[0] is field 3 (state)
  return [Number(rest[14 - 3]), Number(rest[15 - 3])].map((ticks) => (ticks * 1000) / CLK_TCK);
}

function cpuMs(pid) {
  const [user, system] = cpuSplitMs(pid);
  return user + system;
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

/**
 * CPU time of the process's live threads in ms, at nanosecond resolution (first field of
 * /proc/<pid>/task/<tid>/schedstat). A thread that ends takes its time with it: used only for
 * the serial profile phase, where it is checked against /proc/<pid>/stat.
 */
function threadsCpuMs(pid) {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns / 1e6;
}

function rssMb(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB$/m);
  return m ? Number(m[1]) / 1024 : NaN;
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

/** The value of the first `<input … name="NAME" … value="…">` in a page, or null. */
function inputValue(html, name) {
  for (const m of html.matchAll(/<input\b[^>]*>/gi)) {
    if (!new RegExp(`\\bname="${name}"`).test(m[0])) continue;
    const v = m[0].match(/\bvalue="([^"]*)"/)?.[1];
    if (v !== undefined) return v.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&');
  }
  return null;
}

/**
 * The SMTP sink's messages as they arrive: `next(address, subject)` resolves with the first
 * message to `address` with `subject` not yet taken (no polling: the sink's push is wrapped).
 */
function mailbox(smtp) {
  const waiting = new Map(); // key -> [resolve]
  const arrived = new Map(); // key -> [message]
  const key = (to, subject) => `${to.toLowerCase()}\u0000${subject}`;
  let total = 0;
  const push = smtp.messages.push.bind(smtp.messages);
  smtp.messages.push = (...ms) => {
    for (const m of ms) {
      total += 1;
      for (const to of m.rcptTo) {
        const k = key(to, m.subject);
        const w = waiting.get(k);
        if (w?.length) w.shift()(m);
        else arrived.set(k, [...(arrived.get(k) ?? []), m]);
      }
    }
    return push(...ms);
  };
  return {
    get total() {
      return total;
    },
    next(to, subject, timeoutMs = MAIL_TIMEOUT_MS) {
      const k = key(to, subject);
      const have = arrived.get(k);
      if (have?.length) return Promise.resolve(have.shift());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "${subject}" mail to ${to} within ${timeoutMs} ms`)), timeoutMs);
        waiting.set(k, [
          ...(waiting.get(k) ?? []),
          (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        ]);
      });
    },
    /** Resolves once `n` messages in all have arrived. */
    async until(n, timeoutMs = MAIL_TIMEOUT_MS) {
      const deadline = Date.now() + timeoutMs;
      while (total < n) {
        if (Date.now() > deadline) throw new Error(`${total} of ${n} mails arrived within ${timeoutMs} ms`);
        await sleep(5);
      }
    },
  };
}

const STEPS = ['connect', 'callback', 'selectGet', 'selectPost', 'verifyGet', 'mailWait', 'verifyPost'];
const STEP_NAMES = {
  connect: 'GET /auth/connect',
  callback: 'GET callback (-> select)',
  selectGet: 'GET select page',
  selectPost: 'POST select (queues the code)',
  verifyGet: 'GET verify page',
  mailWait: 'code mail (POST select 303 -> mail at the sink)',
  verifyPost: 'POST verify (links, -> app)',
};

/**
 * One complete manual link in a fresh browser. Returns the latency of each step (ms); throws
 * with the request trace on anything unexpected. With `probe` (profile phase), braid's CPU is
 * read around each of its requests and around each email (the code: from the POST select's
 * answer until the mail arrived and braid marked it sent; the notice: likewise after the
 * verify), and the email waits come before the next request, so nothing overlaps.
 */
async function manualLink(env, person, probe = null) {
  const browser = new Browser({ userAgent: 'braid-bench' });
  const state = randomToken(16);
  const ms = {};
  const cpu = {};
  const fail = (what, r) => {
    throw new Error(`${what}: ${r.status} ${r.location ?? r.bodyText?.slice(0, 500)}\n${browser.describeTrace()}`);
  };
  const timed = async (step, fn) => {
    const c0 = probe?.();
    const t0 = performance.now();
    const r = await fn();
    ms[step] = performance.now() - t0;
    if (probe) cpu[step] = probe() - c0;
    return r;
  };

  const start = new URL(`/auth/connect/${PROVIDER}`, env.braidUrl);
  start.search = new URLSearchParams({ client_id: APP, redirect_uri: APP_REDIRECT, state }).toString();
  let r = await timed('connect', () => get(browser, start.href));
  if (![302, 303].includes(r.status) || !r.location?.startsWith(`${env.authorizationEndpoint}?`)) fail('connect', r);

  // At the IdP until it redirects to braid's callback (not requested here).
  let loggedIn = false;
  let callback = null;
  r = await get(browser, r.location);
  for (let hop = 0; hop < MAX_HOPS && !callback; hop += 1) {
    if ([302, 303].includes(r.status) && r.location) {
      if (r.location.startsWith(`${env.callbackUrl}?`)) callback = r.location;
      else r = await get(browser, r.location);
    } else if (r.status === 200 && !loggedIn && /\/interaction\/[^/]+$/.test(new URL(r.requestUrl).pathname)) {
      const action = findFormAction(r.bodyText, r.requestUrl, /\/interaction\/[^/]+\/login$/);
      if (!action) break;
      loggedIn = true;
      r = await get(browser, action, { method: 'POST', form: { login: person.account } });
    } else {
      break;
    }
  }
  if (!callback || !loggedIn) throw new Error(`IdP login did not reach braid's callback\n${browser.describeTrace()}`);

  r = await timed('callback', () => get(browser, callback));
  const selectUrl = `${env.braidUrl}${SELECT_PATH}`;
  if (r.status !== 303 || r.location !== selectUrl) fail('callback (expected a 303 to the select page)', r);

  r = await timed('selectGet', () => get(browser, selectUrl));
  const choice = inputValue(r.bodyText, 'choice'); // the first: the candidate's radio button
  const csrf = inputValue(r.bodyText, 'csrf');
  if (r.status !== 200 || !csrf || choice !== '0' || !r.bodyText.includes(person.mask)) fail('select page', r);

  r = await timed('selectPost', () => get(browser, selectUrl, { method: 'POST', form: { csrf, choice } }));
  const tSelected = performance.now();
  const verifyUrl = `${env.braidUrl}${VERIFY_PATH}`;
  if (r.status !== 303 || r.location !== verifyUrl) fail('select (expected a 303 to the verify page)', r);

  const codeMail = env.mail.next(person.email, CODE_SUBJECT);
  codeMail.catch(() => {}); // awaited below; a failed GET verify must not leave it unhandled
  if (probe) {
    const c0 = probe();
    await codeMail;
    await env.sentMarked();
    cpu.codeMail = probe() - c0;
  }

  r = await timed('verifyGet', () => get(browser, verifyUrl));
  const csrf2 = inputValue(r.bodyText, 'csrf');
  if (r.status !== 200 || !csrf2 || !r.bodyText.includes('name="code"')) fail('verify page', r);

  const mail = await codeMail;
  ms.mailWait = performance.now() - tSelected; // overlaps the GET verify, as in a browser
  const code = mail.text?.match(/\b(\d{6})\b/)?.[1];
  if (!code) throw new Error(`no 6-digit code in the mail to ${person.email}: ${mail.text}`);

  r = await timed('verifyPost', () => get(browser, verifyUrl, { method: 'POST', form: { csrf: csrf2, method: 'code', code } }));
  const back = r.location ? new URL(r.location) : null;
  if (
    r.status !== 303 ||
    !r.location.startsWith(`${APP_REDIRECT}?`) ||
    !back.searchParams.get('code') ||
    back.searchParams.get('state') !== state ||
    back.searchParams.get('error') !== null
  ) {
    fail('verify (expected a 303 to the app with a code)', r);
  }
  if (probe) {
    const c0 = probe();
    await env.mail.next(person.email, LINKED_SUBJECT);
    await env.sentMarked();
    cpu.noticeMail = probe() - c0;
  }
  return { ms, cpu };
}

/** A plain login (the identity is linked already): GET connect, the IdP, GET callback -> app. */
async function plainLogin(env, person) {
  const browser = new Browser({ userAgent: 'braid-bench' });
  const state = randomToken(16);
  const start = new URL(`/auth/connect/${PROVIDER}`, env.braidUrl);
  start.search = new URLSearchParams({ client_id: APP, redirect_uri: APP_REDIRECT, state }).toString();
  let r = await get(browser, start.href);
  if (![302, 303].includes(r.status)) throw new Error(`login connect: ${r.status}`);
  let loggedIn = false;
  let callback = null;
  r = await get(browser, r.location);
  for (let hop = 0; hop < MAX_HOPS && !callback; hop += 1) {
    if ([302, 303].includes(r.status) && r.location) {
      if (r.location.startsWith(`${env.callbackUrl}?`)) callback = r.location;
      else r = await get(browser, r.location);
    } else if (r.status === 200 && !loggedIn && /\/interaction\/[^/]+$/.test(new URL(r.requestUrl).pathname)) {
      const action = findFormAction(r.bodyText, r.requestUrl, /\/interaction\/[^/]+\/login$/);
      if (!action) break;
      loggedIn = true;
      r = await get(browser, action, { method: 'POST', form: { login: person.account } });
    } else {
      break;
    }
  }
  if (!callback) throw new Error(`login: IdP did not reach braid's callback\n${browser.describeTrace()}`);
  const t0 = performance.now();
  r = await get(browser, callback);
  const callbackMs = performance.now() - t0;
  const back = r.location ? new URL(r.location) : null;
  if (r.status !== 303 || !r.location.startsWith(`${APP_REDIRECT}?`) || back.searchParams.get('state') !== state || !back.searchParams.get('code')) {
    throw new Error(`login callback: ${r.status} ${r.location ?? r.bodyText.slice(0, 300)}\n${browser.describeTrace()}`);
  }
  return { callbackMs };
}

/** Runs `fn(people[i])` for every person with `concurrency` workers; collects results and failures. */
async function runAll(people, fn, { concurrency, deadline }) {
  const result = { ok: 0, failed: 0, errors: [], results: [] };
  let next = 0;
  async function worker() {
    while (next < people.length) {
      if (Date.now() > deadline) {
        result.failed += people.length - next;
        result.errors.push(`time limit reached with ${people.length - next} not started`);
        next = people.length;
        return;
      }
      const person = people[next];
      next += 1;
      try {
        result.results.push(await fn(person));
        result.ok += 1;
      } catch (err) {
        result.failed += 1;
        if (result.errors.length < 5) result.errors.push(err.message);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, people.length) }, worker));
  return result;
}

function startIdpChild(accounts, clients) {
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
    child.send({ accounts, clients });
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

// ---------------------------------------------------------------- main
async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const binPath = opts.bin ?? defaultBin();
  if (!existsSync(binPath)) throw new Error(`no braid binary at ${binPath} (cargo build --release -p braid-server, or pass its path)`);
  const bin = braidBinFromEnv({ BRAID_E2E_BIN: binPath });
  const pgUrl = process.env.BRAID_BENCH_DATABASE_URL;
  // Always tagged: a caller-provided database may hold an earlier run's users.
  const tag = randomToken(6).toLowerCase().replace(/[^a-z0-9]/g, 'x');
  const total = opts.warmup + opts.links + opts.profile;
  const people = Array.from({ length: total }, (_, i) => {
    const account = `ml${String(i).padStart(5, '0')}-${tag}`;
    // The select page shows the address masked: first letter, then ***@e***.com.
    return { account, email: `${account}@example.com`, externalId: `ext-${account}`, mask: 'm***@e***.com' };
  });
  const warmPeople = people.slice(0, opts.warmup);
  const runPeople = people.slice(opts.warmup, opts.warmup + opts.links);
  const profilePeople = people.slice(opts.warmup + opts.links);

  const sqliteDir = pgUrl ? null : mkdtempSync(path.join(tmpdir(), 'braid-bench-'));
  const databaseUrl = pgUrl ?? `sqlite://${path.join(sqliteDir, 'braid.db')}`;
  const braidPort = await freePort();
  const braidUrl = `http://127.0.0.1:${braidPort}`;
  const callbackUrl = `${braidUrl}/auth/connect/${PROVIDER}/callback`;
  const idpSecret = randomToken();

  let idp = null;
  let braid = null;
  let smtp = null;
  const cleanup = async () => {
    await braid?.stop().catch(() => {});
    await stopIdpChild(idp?.child).catch(() => {});
    await smtp?.stop().catch(() => {});
    if (sqliteDir) rmSync(sqliteDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => cleanup().finally(() => process.exit(130)));

  try {
    smtp = await new SmtpServer().start();
    const mail = mailbox(smtp);
    idp = await startIdpChild(
      Object.fromEntries(people.map((p) => [p.account, { email: p.email, email_verified: true, name: p.account }])),
      [{ client_id: 'braid', client_secret: idpSecret, redirect_uris: [callbackUrl], token_endpoint_auth_method: 'client_secret_basic' }],
    );
    braid = await startBraid({
      bin,
      port: braidPort,
      databaseUrl,
      resolution: 'manual',
      providers: { [PROVIDER]: { issuer: idp.issuer, clientId: 'braid', clientSecret: idpSecret, trustEmail: true } },
      clients: { [APP]: { redirectUris: [APP_REDIRECT], secret: randomToken(32) } },
      extraToml: ['[smtp]', `url = ${tomlString(smtp.url)}`, 'from = "Braid Bench <noreply@braid.test>"'].join('\n'),
    });
    const braidPid = braid.child?.pid;
    if (!braidPid || !existsSync(`/proc/${braidPid}/stat`)) throw new Error('no /proc/<pid>/stat for braid');
    await sleep(2000);
    const rssIdle = rssMb(braidPid);

    await importUsers(
      braid,
      people.map((p) => ({ external_id: p.externalId, display_name: p.account, emails: [{ email: p.email, verified: true }] })),
    );

    // braid's own count of sent messages (read once, at the end: not during a measurement).
    const sentCount = async () => {
      const text = await (await fetch(`${braidUrl}/metrics`)).text();
      return [...text.matchAll(/^braid_outbox_messages_total\{[^}]*outcome="sent"[^}]*\} (\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
    };
    const env = {
      braidUrl,
      callbackUrl,
      authorizationEndpoint: idp.authorizationEndpoint,
      mail,
      // Profile phase: braid marks a message sent after the sink's 250; give that write time.
      sentMarked: () => sleep(20),
    };
    const deadline = Date.now() + opts.maxSeconds * 1000;

    const warm = await runAll(warmPeople, (p) => manualLink(env, p), { concurrency: opts.concurrency, deadline });
    if (warm.failed > 0) throw new Error(`warm-up: ${warm.failed} of ${opts.warmup} links failed:\n${warm.errors.join('\n---\n')}`);
    await mail.until(2 * opts.warmup);
    await sleep(200);

    // ---- measured links
    const splitBefore = cpuSplitMs(braidPid);
    const switchesBefore = contextSwitches(braidPid);
    const before = { braid: cpuMs(braidPid), idp: cpuMs(idp.child.pid), driver: selfCpuMs(), wall: performance.now() };
    const run = await runAll(runPeople, (p) => manualLink(env, p), { concurrency: opts.concurrency, deadline });
    const atLast = { braid: cpuMs(braidPid), wall: performance.now() };
    // Until every notice (one per link) is out too: the whole cost of a link.
    let drained = true;
    try {
      await mail.until(2 * (opts.warmup + run.ok));
    } catch {
      drained = false;
    }
    const splitAfter = cpuSplitMs(braidPid);
    const switchesAfter = contextSwitches(braidPid);
    const after = { braid: cpuMs(braidPid), idp: cpuMs(idp.child.pid), driver: selfCpuMs(), wall: performance.now() };
    const rssAfterLinks = rssMb(braidPid);

    // ---- profile: serial links, braid's CPU around each request and each email
    let profile = null;
    if (opts.profile > 0 && run.failed === 0) {
      const probe = () => threadsCpuMs(braidPid);
      const p0 = { stat: cpuMs(braidPid), threads: probe() };
      profile = await runAll(profilePeople, (p) => manualLink(env, p, probe), { concurrency: 1, deadline });
      profile.statMs = cpuMs(braidPid) - p0.stat;
      profile.threadsMs = probe() - p0.threads;
    }

    // ---- plain logins of linked identities (no manual step), same instance and config
    let logins = null;
    if (opts.logins > 0 && run.failed === 0) {
      const again = Array.from({ length: opts.logins }, (_, i) => runPeople[i % runPeople.length]);
      const b = { braid: cpuMs(braidPid), threads: threadsCpuMs(braidPid), wall: performance.now(), switches: contextSwitches(braidPid) };
      logins = await runAll(again, (p) => plainLogin(env, p), { concurrency: opts.concurrency, deadline });
      logins.cpuMs = cpuMs(braidPid) - b.braid;
      logins.threadsMs = threadsCpuMs(braidPid) - b.threads;
      logins.wallS = (performance.now() - b.wall) / 1000;
      logins.switches = contextSwitches(braidPid) - b.switches;
    }
    const sent = await sentCount();
    const rssEnd = rssMb(braidPid);

    // ---- report
    const n = Math.max(run.ok, 1);
    const wallS = (after.wall - before.wall) / 1000;
    const lastWallS = (atLast.wall - before.wall) / 1000;
    const per = (k) => (after[k] - before[k]) / n;
    const sorted = (xs) => [...xs].sort((a, b) => a - b);
    const pct = (xs) => `p50 ${percentile(xs, 50).toFixed(1)} ms, p95 ${percentile(xs, 95).toFixed(1)} ms`;

    console.log(`binary: ${bin}`);
    console.log(`database: ${pgUrl ? 'PostgreSQL (BRAID_BENCH_DATABASE_URL)' : 'SQLite (temp dir)'}`);
    console.log(
      `manual links: ${opts.links} measured after ${opts.warmup} warm-up, concurrency ${opts.concurrency}; ` +
        `${total} IdP accounts and imported users (one per link)`,
    );
    console.log(`completed: ${run.ok} ok, ${run.failed} failed`);
    console.log(`throughput: ${(run.ok / lastWallS).toFixed(1)} complete manual links/s (${lastWallS.toFixed(2)} s wall clock)`);
    console.log('latency per step (as the driver sees it, queueing included):');
    for (const step of STEPS) {
      console.log(`  ${STEP_NAMES[step].padEnd(52)} ${pct(sorted(run.results.map((r) => r.ms[step])))}`);
    }
    console.log(`CPU per manual link (CLK_TCK ${CLK_TCK}, i.e. ${(1000 / CLK_TCK).toFixed(0)} ms ticks):`);
    const [userMs, sysMs] = [0, 1].map((i) => (splitAfter[i] - splitBefore[i]) / n);
    console.log(
      `  braid (broker):  ${per('braid').toFixed(3)} ms  (user ${userMs.toFixed(3)}, system ${sysMs.toFixed(3)}; ` +
        `${((switchesAfter - switchesBefore) / n).toFixed(1)} context switches)` +
        `${drained ? '' : '  [NOT every notice mail arrived]'}`,
    );
    console.log(
      `                   ${((atLast.braid - before.braid) / n).toFixed(3)} ms up to the last link's 303 ` +
        `(without the notices still in the outbox then; +${(wallS - lastWallS).toFixed(2)} s to drain)`,
    );
    console.log(`  IdP (node):      ${per('idp').toFixed(3)} ms`);
    console.log(`  driver (node, incl. the SMTP sink): ${per('driver').toFixed(3)} ms`);

    if (profile) {
      const pn = Math.max(profile.ok, 1);
      console.log(
        `braid CPU per request, serial (concurrency 1), ${profile.ok} links (${profile.failed} failed), ` +
          `mean from /proc/<pid>/task/*/schedstat:`,
      );
      const kinds = [
        ['connect', STEP_NAMES.connect],
        ['callback', STEP_NAMES.callback],
        ['selectGet', STEP_NAMES.selectGet],
        ['selectPost', STEP_NAMES.selectPost],
        ['codeMail', 'code email (outbox: claim, MIME, SMTP, mark sent)'],
        ['verifyGet', STEP_NAMES.verifyGet],
        ['verifyPost', STEP_NAMES.verifyPost],
        ['noticeMail', 'notice email (outbox)'],
      ];
      const means = kinds.map(([k]) => profile.results.map((r) => r.cpu[k]).reduce((a, b) => a + b, 0) / pn);
      const sum = means.reduce((a, b) => a + b, 0);
      kinds.forEach(([k, name], i) => {
        const p50 = percentile(sorted(profile.results.map((r) => r.cpu[k])), 50);
        console.log(`  ${name.padEnd(52)} ${means[i].toFixed(3)} ms (p50 ${p50.toFixed(3)}), ${((100 * means[i]) / sum).toFixed(0).padStart(2)} %`);
      });
      console.log(
        `  ${'sum'.padEnd(52)} ${sum.toFixed(3)} ms; whole phase per link: ${(profile.threadsMs / pn).toFixed(3)} ms (schedstat), ` +
          `${(profile.statMs / pn).toFixed(3)} ms (/proc/<pid>/stat)`,
      );
      if (profile.failed > 0) console.log(`  profile failures: ${profile.errors.join('\n---\n')}`);
    }
    if (logins) {
      const ln = Math.max(logins.ok, 1);
      console.log(
        `plain logins of linked identities (no manual step, same config), ${logins.ok} ok, ${logins.failed} failed, ` +
          `concurrency ${opts.concurrency}: ${(logins.ok / logins.wallS).toFixed(1)} logins/s, ` +
          `braid ${(logins.cpuMs / ln).toFixed(3)} ms CPU per login (${(logins.threadsMs / ln).toFixed(3)} ms from schedstat; ` +
          `${(logins.switches / ln).toFixed(1)} context switches), ` +
          `callback ${pct(sorted(logins.results.map((r) => r.callbackMs)))}`,
      );
      if (logins.failed > 0) console.log(`  login failures: ${logins.errors.join('\n---\n')}`);
    }
    console.log(
      `braid RSS: ${rssIdle.toFixed(1)} MB idle after start (templates compiled, SMTP configured), ` +
        `${rssAfterLinks.toFixed(1)} MB after the measured links, ${rssEnd.toFixed(1)} MB at the end`,
    );
    console.log(`mails: ${mail.total} received by the sink, braid counts ${sent} sent (braid_outbox_messages_total)`);
    if (run.failed > 0) {
      console.error(`FAILED: ${run.failed} manual links did not end in a 303 to the app with a code:\n${run.errors.join('\n---\n')}`);
      process.exitCode = 1;
    }
    if (profile?.failed > 0 || logins?.failed > 0) process.exitCode = 1;
  } finally {
    await cleanup();
  }
}
