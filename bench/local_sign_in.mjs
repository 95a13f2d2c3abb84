#!/usr/bin/env node
// Password sign-ins of local accounts: sign-ins per second, the broker's CPU per sign-in at the
// argon2id parameters Braid uses (19 MiB, 2 iterations, 1 lane), and its peak RSS with
// `--concurrency` sign-ins at once (default 16).
//
// Usage (from the repository root, after `cd e2e && npm ci` once):
//   node bench/local_sign_in.mjs [PATH_TO_BRAID] [--accounts N] [--sign-ins M]
//                                [--concurrency C] [--warmup W]
// Default binary: $CARGO_TARGET_DIR/release/braid, else target/release/braid.
// Database: SQLite in a fresh temp dir; BRAID_BENCH_DATABASE_URL=postgres://… for PostgreSQL
// (a database prepared by the caller; addresses get a per-run tag).
//
// Set-up (not measured): braid with `[local_accounts] enabled = true`, an SMTP sink
// (../e2e/lib/smtp.mjs) and password limits raised out of the way; `--accounts` accounts
// (default 50) each made by `POST /auth/register`, confirmed by `POST /auth/verify-email` with
// the code read from the sink. Then `--warmup` sign-ins (default 32), then `--sign-ins`
// (default 800) measured ones: `POST /auth/login` (JSON: email, password, client_id,
// redirect_uri, state), each answered 200 with an exchange code, by `--concurrency` workers
// round-robin over the accounts. Any other answer makes the exit status 1.
//
// CPU: utime+stime of the braid process from /proc/<pid>/stat before and after the measured
// sign-ins. RSS: VmRSS sampled every 5 ms during the measured sign-ins (max), and VmHWM (the
// kernel's high-water mark since start), from /proc/<pid>/status.

import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { braidBinFromEnv, startBraid, tomlString } from '../e2e/lib/braid.mjs';
import { SmtpServer } from '../e2e/lib/smtp.mjs';
import { freePort, randomToken } from '../e2e/lib/util.mjs';

function parseArgs(argv) {
  const opts = { accounts: 50, signIns: 800, concurrency: 16, warmup: 32, bin: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => Number(argv[++i]);
    if (a === '--accounts') opts.accounts = next();
    else if (a === '--sign-ins') opts.signIns = next();
    else if (a === '--concurrency') opts.concurrency = next();
    else if (a === '--warmup') opts.warmup = next();
    else if (!a.startsWith('--')) opts.bin = a;
    else throw new Error(`unknown option ${a}`);
  }
  return opts;
}

function defaultBin() {
  if (process.env.BRAID_E2E_BIN) return braidBinFromEnv();
  const target = process.env.CARGO_TARGET_DIR || new URL('../target', import.meta.url).pathname;
  return `${target}/release/braid`;
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / CLK_TCK, system: Number(fields[12]) / CLK_TCK };
}

function statusKb(pid, key) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${key}:`));
  return Number(line.split(/\s+/)[1]);
}

const opts = parseArgs(process.argv.slice(2));
const bin = opts.bin ?? defaultBin();
const tag = randomToken(6).toLowerCase().replace(/[^a-z0-9]/g, 'x');
const APP = 'bench-app';
const REDIRECT = 'https://app.example/cb';
const password = (i) => `bench passphrase ${i} ${tag}`;
const email = (i) => `user${i}-${tag}@example.com`;

const smtp = await new SmtpServer().start();
const braid = await startBraid({
  bin,
  port: await freePort(),
  providers: {},
  clients: { [APP]: { redirectUris: [REDIRECT], secret: randomToken(32) } },
  databaseUrl: process.env.BRAID_BENCH_DATABASE_URL,
  extraToml: [
    '[smtp]',
    `url = ${tomlString(smtp.url)}`,
    'from = "Bench <bench@braid.test>"',
    '',
    '[local_accounts]',
    'enabled = true',
    'emails_per_address_per_hour = 1000',
    'requests_per_client_per_hour = 100000',
    '',
    '[limits]',
    'password_attempts_per_account = 1000000',
    'password_attempts_per_address = 1000000',
  ].join('\n'),
});

async function post(path, body) {
  const res = await fetch(`${braid.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

const app = { client_id: APP, redirect_uri: REDIRECT, state: 'bench' };
let failures = 0;
try {
  for (let i = 0; i < opts.accounts; i++) {
    const r = await post('/auth/register', { email: email(i), password: password(i) });
    if (r.status !== 202) throw new Error(`register ${i}: ${r.status} ${JSON.stringify(r.body)}`);
    const mail = await smtp.waitFor((m) => m.rcptTo.includes(email(i)), 20_000);
    const code = mail.text.match(/\b(\d{6})\b/)[1];
    const v = await post('/auth/verify-email', { ...app, email: email(i), password: password(i), code });
    if (v.status !== 200) throw new Error(`verify ${i}: ${v.status} ${JSON.stringify(v.body)}`);
  }

  const pid = braid.child.pid;
  const latencies = [];
  async function run(total, measure) {
    let next = 0;
    const worker = async () => {
      while (next < total) {
        const i = next++ % opts.accounts;
        const t0 = performance.now();
        const r = await post('/auth/login', { ...app, email: email(i), password: password(i) });
        if (measure) latencies.push(performance.now() - t0);
        if (r.status !== 200 || !r.body.code) {
          failures++;
          console.error(`sign-in ${i}: ${r.status} ${JSON.stringify(r.body)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
  }

  await run(opts.warmup, false);
  const rssBefore = statusKb(pid, 'VmRSS');
  let rssMax = rssBefore;
  const sampler = setInterval(() => {
    rssMax = Math.max(rssMax, statusKb(pid, 'VmRSS'));
  }, 5);
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  await run(opts.signIns, true);
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = cpuSeconds(pid);
  clearInterval(sampler);
  const hwm = statusKb(pid, 'VmHWM');

  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))].toFixed(1);
  const user = ((cpu1.user - cpu0.user) / opts.signIns) * 1000;
  const system = ((cpu1.system - cpu0.system) / opts.signIns) * 1000;
  console.log(`binary: ${bin}`);
  console.log(`database: ${process.env.BRAID_BENCH_DATABASE_URL ? 'postgres' : 'sqlite'}; accounts ${opts.accounts}; concurrency ${opts.concurrency}; cores ${execFileSync('nproc').toString().trim()}`);
  console.log(`sign-ins: ${opts.signIns} in ${seconds.toFixed(2)} s = ${(opts.signIns / seconds).toFixed(1)} /s; failures ${failures}`);
  console.log(`latency ms: p50 ${pct(50)}, p95 ${pct(95)}, p99 ${pct(99)}, max ${latencies.at(-1).toFixed(1)}`);
  console.log(`braid CPU per sign-in: ${(user + system).toFixed(2)} ms (user ${user.toFixed(2)}, system ${system.toFixed(2)})`);
  console.log(`braid RSS: ${(rssBefore / 1024).toFixed(1)} MB before, peak ${(rssMax / 1024).toFixed(1)} MB sampled, VmHWM ${(hwm / 1024).toFixed(1)} MB`);
} finally {
  await braid.stop();
  await smtp.stop();
}
process.exit(failures ? 1 : 0);
