// The application a person signs in to: a tiny HTTP server on loopback whose redirect URI
// (`/callback`) Braid sends the browser back to. It records every request and answers with a
// plain page, so a real browser lands somewhere and a test can read what arrived.

import http from 'node:http';

/**
 * @returns {Promise<{origin: string, redirectUri: string,
 *   hits: Array<{path: string, query: URLSearchParams}>, close: () => Promise<void>}>}
 */
export async function startApp() {
  const hits = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://app.invalid');
    hits.push({ path: url.pathname, query: url.searchParams });
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    const title = url.pathname === '/callback' ? 'The app received the sign-in' : 'The app';
    res.end(`<!doctype html><title>${title}</title><h1>${title}</h1>`);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    redirectUri: `${origin}/callback`,
    hits,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
