// The outbox against a real SMTP server (lib/smtp.mjs: the `smtp-server` package).
//
// First the harness alone: a hand-written SMTP client delivers to it. Then Braid: no page sends
// mail yet, so the test writes a message into Braid's outbox table the way a flow will (with
// the `sqlite3` or `psql` command-line client: Node 20 has no SQLite driver), and Braid's
// worker delivers it over SMTP with AUTH: text and HTML parts, From/To/Subject, its outbox id
// in the Message-ID. With the server down the message stays queued, and arrives once the server
// is back.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { promisify } from 'node:util';
import { braidBinFromEnv, startBraid, tomlString } from '../lib/braid.mjs';
import { SmtpServer } from '../lib/smtp.mjs';
import { freePort, randomToken, sleep } from '../lib/util.mjs';

const run = promisify(execFile);

const SKIP_BRAID =
  !process.env.BRAID_E2E_BIN && process.env.BRAID_E2E_SKIP_BRAID === '1'
    ? 'BRAID_E2E_SKIP_BRAID=1 and BRAID_E2E_BIN unset: Braid end-to-end tests skipped on purpose'
    : false;

const USER = 'braid';
const PASSWORD = randomToken(18);
const FROM = 'noreply@braid.test';

// ---------------------------------------------------------------------------------------------
// A minimal SMTP client for the harness test: one message, AUTH PLAIN, no TLS.

async function smtpSend({ port, username, password, from, to, data }) {
  const socket = net.connect(port, '127.0.0.1');
  socket.setEncoding('utf8');
  let buffer = '';
  const waiters = [];
  socket.on('data', (chunk) => {
    buffer += chunk;
    // A reply ends with a line whose code is followed by a space (not a hyphen).
    const m = buffer.match(/(?:^|\r\n)(\d{3}) [^\r\n]*\r\n$/);
    if (m && waiters.length) {
      const reply = buffer;
      buffer = '';
      waiters.shift()({ code: Number(m[1]), text: reply });
    }
  });
  const failed = new Promise((_, reject) => socket.once('error', reject));
  const read = () => Promise.race([new Promise((resolve) => waiters.push(resolve)), failed]);
  const send = (line) => {
    const reply = read();
    socket.write(`${line}\r\n`);
    return reply;
  };
  const expect = async (promise, code) => {
    const r = await promise;
    if (r.code !== code) throw Object.assign(new Error(`expected ${code}, got ${r.text.trim()}`), { code: r.code });
    return r;
  };
  try {
    await expect(read(), 220);
    await expect(send('EHLO client.e2e.test'), 250);
    const plain = Buffer.from(`\0${username}\0${password}`).toString('base64');
    await expect(send(`AUTH PLAIN ${plain}`), 235);
    await expect(send(`MAIL FROM:<${from}>`), 250);
    await expect(send(`RCPT TO:<${to}>`), 250);
    await expect(send('DATA'), 354);
    const stuffed = data.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    await expect(send(`${stuffed}\r\n.`), 250);
    await send('QUIT');
  } finally {
    socket.destroy();
  }
}

test('harness: the SMTP server accepts an authenticated multipart message and parses it', async () => {
  const smtp = await new SmtpServer({ auth: { username: USER, password: PASSWORD } }).start();
  try {
    const boundary = 'b0undary';
    await smtpSend({
      port: smtp.port,
      username: USER,
      password: PASSWORD,
      from: FROM,
      to: 'alice@example.com',
      data: [
        `From: Harness <${FROM}>`,
        'To: alice@example.com',
        'Subject: Harness check',
        'Message-ID: <harness-1@braid.test>',
        'MIME-Version: 1.0',
        `Content-Type: multipart/alternative; boundary="${boundary}"`,
        '',
        `--${boundary}`,
        'Content-Type: text/plain; charset=utf-8',
        '',
        'Code 111222',
        '.a line that starts with a dot',
        `--${boundary}`,
        'Content-Type: text/html; charset=utf-8',
        '',
        '<p>Code <b>111222</b></p>',
        `--${boundary}--`,
      ].join('\r\n'),
    });
    const mail = await smtp.waitFor((m) => m.subject === 'Harness check', 5_000);
    assert.equal(mail.authUser, USER);
    assert.equal(mail.mailFrom, FROM);
    assert.deepEqual(mail.rcptTo, ['alice@example.com']);
    assert.equal(mail.from, `"Harness" <${FROM}>`);
    assert.equal(mail.to, 'alice@example.com');
    assert.equal(mail.messageId, '<harness-1@braid.test>');
    assert.match(mail.text, /Code 111222\n\.a line that starts with a dot/);
    assert.match(mail.html, /<b>111222<\/b>/);

    await assert.rejects(
      smtpSend({ port: smtp.port, username: USER, password: 'wrong', from: FROM, to: 'bob@example.com', data: 'Subject: x\r\n\r\nx' }),
      (err) => err.code === 535,
    );
    assert.deepEqual(smtp.failedLogins, [USER]);
    assert.equal(smtp.messages.length, 1, 'nothing kept from the refused login');

    const port = smtp.port;
    await smtp.stop();
    await assert.rejects(smtpSend({ port, username: USER, password: PASSWORD, from: FROM, to: 'a@b.c', data: 'x' }));
    await smtp.start();
    assert.equal(smtp.port, port, 'back on the same port');
  } finally {
    await smtp.stop();
  }
});

// ---------------------------------------------------------------------------------------------
// Braid's outbox worker against the server.

/** SQL through the database's own command-line client; rows as arrays of strings. */
async function sql(databaseUrl, statement) {
  let out;
  if (databaseUrl.startsWith('sqlite://')) {
    const file = databaseUrl.slice('sqlite://'.length);
    ({ stdout: out } = await run('sqlite3', ['-bail', '-cmd', '.timeout 5000', file, statement]));
  } else {
    ({ stdout: out } = await run('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', databaseUrl, '-c', statement]));
  }
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('|'));
}

const quote = (s) => `'${String(s).replace(/'/g, "''")}'`;

function databaseTool() {
  const url = process.env.BRAID_E2E_DATABASE_URL ?? 'sqlite://';
  const tool = url.startsWith('sqlite://') ? 'sqlite3' : 'psql';
  const probe = spawnSync(tool, ['--version'], { stdio: 'ignore' });
  return probe.error ? `the ${tool} command is not installed (the test writes Braid's outbox table with it)` : false;
}

const SKIP = SKIP_BRAID || databaseTool();
const env = {}; // smtp, braid, ids

before(
  async () => {
    if (SKIP) return;
    env.smtp = await new SmtpServer({ auth: { username: USER, password: PASSWORD } }).start();
    env.ids = [];
    const smtpToml = [
      '[smtp]',
      `url = ${tomlString(env.smtp.url)}`,
      `username = ${tomlString(USER)}`,
      `password = ${tomlString(PASSWORD)}`,
      `from = ${tomlString(`Braid E2E <${FROM}>`)}`,
    ].join('\n');
    env.braid = await startBraid({
      bin: braidBinFromEnv(),
      port: await freePort(),
      providers: {},
      clients: {},
      extraToml: smtpToml,
    });
  },
  { timeout: 60_000 },
);

after(async () => {
  if (env.braid && env.ids?.length) {
    // A shared PostgreSQL database outlives this file: leave no message behind.
    await sql(env.braid.databaseUrl, `DELETE FROM outbox WHERE id IN (${env.ids.map(quote).join(', ')})`).catch(() => {});
  }
  await env.braid?.stop();
  await env.smtp?.stop();
});

/** Queues an email as a flow does: one INSERT, due now. */
async function enqueueEmail({ to, subject, text, html }) {
  const id = randomUUID();
  const now = Date.now();
  await sql(
    env.braid.databaseUrl,
    'INSERT INTO outbox (id, channel, recipient, subject, body, html_body, created_at, attempts, next_attempt_at) ' +
      `VALUES (${[id, 'email', to, subject, text, html].map(quote).join(', ')}, ${now}, 0, ${now})`,
  );
  env.ids.push(id);
  return id;
}

async function row(id) {
  const [r] = await sql(
    env.braid.databaseUrl,
    'SELECT attempts, CASE WHEN sent_at IS NULL THEN 0 ELSE 1 END, COALESCE(last_error, \'\'), next_attempt_at ' +
      `FROM outbox WHERE id = ${quote(id)}`,
  );
  return { attempts: Number(r[0]), sent: r[1] === '1', lastError: r[2], nextAttemptAt: Number(r[3]) };
}

async function waitForRow(id, what, done, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await row(id);
    if (done(r)) return r;
    if (Date.now() >= deadline) throw new Error(`${what} within ${timeoutMs} ms; the row is ${JSON.stringify(r)}`);
    await sleep(100);
  }
}

async function outboxMetric(outcome) {
  const text = await (await fetch(`${env.braid.url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const line = text.split('\n').find((l) => l.startsWith(`braid_outbox_messages_total{channel="email",outcome="${outcome}"} `));
  return line ? Number(line.split(' ').pop()) : 0;
}

function context() {
  return `\n--- braid output ---\n${env.braid?.output().slice(-4000) ?? '(not started)'}`;
}

test('braid delivers a queued email to a real SMTP server: AUTH, text and HTML, From/To/Subject', { skip: SKIP, timeout: 60_000 }, async () => {
  const code = String(100000 + Math.floor(Math.random() * 900000));
  const id = await enqueueEmail({
    to: 'alice@example.com',
    subject: 'Your verification code',
    text: `Your verification code is ${code}.\nIt expires in 10 minutes.\n`,
    html: `<p>Your verification code is <b>${code}</b>.</p>`,
  });
  const mail = await env.smtp.waitFor((m) => m.subject === 'Your verification code' && m.text?.includes(code), 15_000).catch((e) => {
    throw new Error(e.message + context());
  });
  assert.equal(mail.authUser, USER, 'Braid authenticated with smtp.username/password');
  assert.equal(mail.mailFrom, FROM);
  assert.deepEqual(mail.rcptTo, ['alice@example.com']);
  assert.equal(mail.from, `"Braid E2E" <${FROM}>`);
  assert.equal(mail.to, 'alice@example.com');
  assert.equal(mail.messageId, `<${id}@braid.test>`);
  assert.match(mail.headers.get('content-type').value, /^multipart\/alternative$/);
  assert.equal(mail.text.trim(), `Your verification code is ${code}.\nIt expires in 10 minutes.`);
  assert.equal(mail.html.trim(), `<p>Your verification code is <b>${code}</b>.</p>`);

  const sent = await waitForRow(id, 'marked sent', (r) => r.sent);
  assert.equal(sent.attempts, 1);
  assert.equal(env.smtp.messages.filter((m) => m.messageId === mail.messageId).length, 1, 'sent once');
  assert.ok(!env.braid.output().includes(code), 'the code is in no log line');
  assert.ok(!env.braid.output().includes(PASSWORD), 'nor the SMTP password');
});

test('with the SMTP server down braid keeps the email queued and delivers it once the server is back', { skip: SKIP, timeout: 60_000 }, async () => {
  const sentBefore = await outboxMetric('sent');
  await env.smtp.stop();
  const queuedAt = Date.now();
  const id = await enqueueEmail({
    to: 'bob@example.com',
    subject: 'Sent after an outage',
    text: 'Hello Bob.',
    html: '<p>Hello Bob.</p>',
  });
  const failed = await waitForRow(id, 'a failed attempt recorded', (r) => r.lastError !== '').catch((e) => {
    throw new Error(e.message + context());
  });
  assert.equal(failed.attempts, 1);
  assert.equal(failed.sent, false);
  assert.ok(failed.nextAttemptAt >= queuedAt + 5_000, `retried after a backoff: ${JSON.stringify(failed)}`);
  assert.ok((await outboxMetric('failed')) >= 1);

  await env.smtp.start();
  const mail = await env.smtp.waitFor((m) => m.subject === 'Sent after an outage', 20_000).catch((e) => {
    throw new Error(e.message + context());
  });
  assert.deepEqual(mail.rcptTo, ['bob@example.com']);
  assert.ok(Date.now() >= failed.nextAttemptAt, 'not before the backoff ended');
  const sent = await waitForRow(id, 'marked sent', (r) => r.sent);
  assert.equal(sent.attempts, 2);
  assert.equal(await outboxMetric('sent'), sentBefore + 1);
});
