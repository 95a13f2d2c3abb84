// A real browser for the tests: Debian's `chromium` package, driven by `playwright-core` (which
// downloads no browser of its own). `.ci/run` installs the package; locally, without it, the
// browser tests are skipped with the reason, and under CI=true they fail instead.

import { accessSync, constants } from 'node:fs';
import { chromium } from 'playwright-core';

export const CHROMIUM_PATH = process.env.BRAID_E2E_CHROMIUM || '/usr/bin/chromium';

// The machine has no internet: without the background-networking flags Chromium keeps trying
// to reach Google's services (component updates, sync, field trials) over closed connections.
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function installed() {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const MISSING = `Chromium is not installed at ${CHROMIUM_PATH} (apt-get install chromium, or set BRAID_E2E_CHROMIUM)`;

/**
 * Why the browser tests cannot run here, or false. Under CI=true a missing browser is never a
 * reason to skip: the tests run and {@link launchChromium} fails.
 */
export function chromiumSkipReason(env = process.env) {
  if (installed() || env.CI === 'true') return false;
  console.error(`\n*** SKIPPING the browser tests: ${MISSING} ***\n`);
  return MISSING;
}

/** Launches headless Chromium; fails with what to install when it is missing. */
export async function launchChromium() {
  if (!installed()) throw new Error(`${MISSING}; under CI=true the browser tests may not be skipped`);
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ARGS, timeout: 30_000 });
}

/**
 * A new tab in `context` that records, for {@link describePage}, its main-frame navigations
 * (method, URL, status, Location) and its console, where Chromium reports what it blocked.
 */
export async function openPage(context, { timeoutMs = 15_000 } = {}) {
  const page = await context.newPage();
  page.setDefaultTimeout(timeoutMs);
  page.consoleLines = [];
  page.on('console', (m) => page.consoleLines.push(`${m.type()}: ${m.text()}`));
  page.navigations = [];
  page.on('response', (r) => {
    if (r.frame() !== page.mainFrame() || !r.request().isNavigationRequest()) return;
    const location = r.headers().location;
    page.navigations.push(`${r.request().method()} ${r.url()} -> ${r.status()}${location ? ` Location: ${location}` : ''}`);
  });
  return page;
}

/**
 * Runs `action` (a click, a goto, goBack) and resolves with the response of the document the
 * main frame ends on after any redirects, once it has loaded; also when that document has the
 * URL of the one before (a form that answers with itself). Fails at once when Chromium blocks
 * the navigation for a Content-Security-Policy.
 */
export async function navigate(page, action) {
  const isMain = (r) => r.frame() === page.mainFrame() && r.request().isNavigationRequest();
  const landed = page.waitForResponse((r) => isMain(r) && (r.status() < 300 || r.status() >= 400));
  const committed = page.waitForEvent('framenavigated', (f) => f === page.mainFrame());
  const blocked = page
    .waitForEvent('console', { predicate: (m) => /Content Security Policy/.test(m.text()), timeout: 0 })
    .then((m) => {
      throw new Error(`Chromium blocked the navigation from ${page.url()}: ${m.text()}`);
    });
  const outcome = Promise.race([Promise.all([landed, committed]), blocked]);
  outcome.catch(() => {}); // awaited below; a block seen while `action` runs is not "unhandled"
  await action();
  const [response] = await outcome;
  await page.waitForLoadState('load');
  return response;
}

/** Clicks the button named `name` as a person would; the response the page lands on. */
export const clickButton = (page, name) => navigate(page, () => page.getByRole('button', { name, exact: true }).click());

/** Where a page opened by {@link openPage} is, what it says and how it got there. */
export async function describePage(page) {
  const text = await page.locator('body').innerText({ timeout: 2_000 }).catch(() => '(no page)');
  return [
    `--- browser at ${page.url()} ---`,
    text.slice(0, 1500),
    '--- navigations ---',
    ...(page.navigations ?? []),
    '--- browser console ---',
    ...(page.consoleLines?.length ? page.consoleLines : ['(empty)']),
  ].join('\n');
}
