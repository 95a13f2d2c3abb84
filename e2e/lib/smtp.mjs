// A real SMTP server for the tests (the npm package `smtp-server`), on loopback, that keeps
// every message it accepts, parsed by `mailparser`. Plain SMTP: no STARTTLS (Braid speaks
// plain SMTP to a loopback address); AUTH PLAIN/LOGIN when `auth` is given (then required).
//
//   const smtp = new SmtpServer({ auth: { username: 'braid', password: 's3cret' } });
//   await smtp.start();                       // a free port; smtp.url = smtp://127.0.0.1:PORT
//   const mail = await smtp.waitFor((m) => m.to === 'alice@example.com', 10_000);
//   await smtp.stop();                        // the port closes; messages are kept
//   await smtp.start(smtp.port);              // back on the same port

import { SMTPServer } from 'smtp-server';
import { simpleParser } from 'mailparser';
import { sleep } from './util.mjs';

const MAX_MESSAGE_BYTES = 1024 * 1024;

/**
 * @typedef {object} ReceivedMail
 * @property {string} mailFrom    envelope sender
 * @property {string[]} rcptTo    envelope recipients
 * @property {string|null} authUser  the user that authenticated, if any
 * @property {string} from        From header as text
 * @property {string} to          To header as text
 * @property {string} subject
 * @property {string|undefined} messageId
 * @property {string|undefined} text  the text/plain part
 * @property {string|false|undefined} html  the text/html part
 * @property {Map<string, unknown>} headers
 * @property {string} raw         the message as received
 */

export class SmtpServer {
  /** @param {{auth?: {username: string, password: string}}} [options] */
  constructor({ auth } = {}) {
    this.auth = auth;
    /** @type {ReceivedMail[]} */
    this.messages = [];
    /** Rejected AUTH attempts (user names only). */
    this.failedLogins = [];
    this.port = null;
    this.server = null;
  }

  get url() {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Listens on `port` (default: a free one, or the previous one after a stop). */
  async start(port = this.port ?? 0) {
    if (this.server) throw new Error('the SMTP server is already running');
    const server = new SMTPServer({
      name: 'smtp.e2e.test',
      banner: 'e2e test server',
      logger: false,
      size: MAX_MESSAGE_BYTES,
      disabledCommands: this.auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
      authOptional: !this.auth,
      authMethods: ['PLAIN', 'LOGIN'],
      // Loopback only: credentials in clear are acceptable here.
      allowInsecureAuth: true,
      // Braid keeps pooled connections open; a stop should not wait for them.
      closeTimeout: 200,
      onAuth: (auth, _session, callback) => {
        const ok = this.auth && auth.username === this.auth.username && auth.password === this.auth.password;
        if (!ok) {
          this.failedLogins.push(auth.username);
          return callback(new Error('Invalid username or password'));
        }
        return callback(null, { user: auth.username });
      },
      onData: (stream, session, callback) => {
        const chunks = [];
        stream.on('data', (c) => chunks.push(c));
        stream.on('end', async () => {
          if (stream.sizeExceeded) return callback(Object.assign(new Error('Message too big'), { responseCode: 552 }));
          try {
            const raw = Buffer.concat(chunks).toString('utf8');
            const parsed = await simpleParser(raw);
            this.messages.push({
              mailFrom: session.envelope.mailFrom?.address ?? '',
              rcptTo: session.envelope.rcptTo.map((r) => r.address),
              authUser: session.user ?? null,
              from: parsed.from?.text ?? '',
              to: parsed.to?.text ?? '',
              subject: parsed.subject ?? '',
              messageId: parsed.messageId,
              text: parsed.text,
              html: parsed.html,
              headers: parsed.headers,
              raw,
            });
            callback();
          } catch (err) {
            callback(err);
          }
        });
      },
    });
    server.on('error', () => {}); // connection errors (a client hanging up) are not test failures
    await new Promise((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.port = server.server.address().port;
    return this;
  }

  /** Closes the port (open connections after a short grace). Received messages are kept. */
  async stop() {
    const server = this.server;
    if (!server) return;
    this.server = null;
    await new Promise((resolve) => server.close(resolve));
  }

  /**
   * The first message matching `predicate`, waiting up to `timeoutMs` for it.
   * @param {(m: ReceivedMail) => boolean} [predicate]
   * @returns {Promise<ReceivedMail>}
   */
  async waitFor(predicate = () => true, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(predicate);
      if (found) return found;
      if (Date.now() >= deadline) {
        const seen = this.messages.map((m) => `${m.to}: ${m.subject}`).join('; ') || 'none';
        throw new Error(`no matching message within ${timeoutMs} ms (received: ${seen})`);
      }
      await sleep(50);
    }
  }
}

/** Starts a server; see {@link SmtpServer}. */
export async function startSmtp(options) {
  return new SmtpServer(options).start();
}
