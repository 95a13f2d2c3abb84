import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

/** A URL-safe random string of `bytes` random bytes (default 32 → 43 characters). */
export function randomToken(bytes = 32) {
  return randomBytes(bytes).toString('base64url');
}

/** An RFC 7636 S256 pair. */
export function pkcePair() {
  const verifier = randomToken(32);
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge, method: 'S256' };
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (bound to 0, then released). Whoever uses
 * it binds it shortly after; a collision in between is possible but unlikely.
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** `Authorization: Basic` value per RFC 6749 §2.3.1 (form-urlencoded id and secret). */
export function basicAuth(id, secret) {
  const enc = (s) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Text for an HTML page of a test double. */
export function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const MAX_FORM_BYTES = 64 * 1024;

/** The form-urlencoded body of a request to a test double (at most 64 KiB). */
export async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new Error('form body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
