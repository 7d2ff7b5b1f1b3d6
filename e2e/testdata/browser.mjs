// Headless Chromium for the browser tests, driven with playwright-core (no
// browser download: the system's Chromium, ELARA_CHROMIUM, is used). The Go
// side (runBrowserScript in e2e/browser_harness_test.go) sets:
//   ELARA_CHROMIUM          the Chromium executable
//   ELARA_BROWSER_SHOT      where to write a screenshot of the page (the Go
//                           test keeps it in its artefact dir when it fails)
// A script prints its result as one line `ELARA_BROWSER_RESULT {json}`.

import { chromium } from 'playwright-core';

// Flags for a headless run as root in a container, touching no network but
// the pages' own: no sandbox (root), no GPU, no background services. No
// zygote: its processes outlive the browser as zombies where PID 1 does not
// reap orphans.
const flags = [
  '--no-sandbox',
  '--no-zygote',
  '--headless',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-extensions',
  '--no-first-run',
  '--no-default-browser-check',
];

// launchBrowser starts Chromium with a fresh profile (playwright creates a
// new user data dir per launch and removes it on close).
export async function launchBrowser() {
  const executablePath = process.env.ELARA_CHROMIUM;
  if (!executablePath) throw new Error('ELARA_CHROMIUM is not set');
  return chromium.launch({ executablePath, args: flags, headless: true, timeout: 60000 });
}

// openPage opens a page that records what a developer would see in the
// console (messages, uncaught errors, failed requests), in `log`.
export async function openPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const log = [];
  page.on('console', (m) => log.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => log.push(`requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText ?? ''}`));
  return { page, log };
}

// screenshot writes the page to ELARA_BROWSER_SHOT (or path), never throwing:
// it runs on failure paths.
export async function screenshot(page, path = process.env.ELARA_BROWSER_SHOT) {
  if (!page || !path) return;
  try {
    await page.screenshot({ path, fullPage: true, timeout: 10000 });
  } catch (err) {
    console.error(`screenshot failed: ${err}`);
  }
}

// run calls fn(browser), prints its result line, and exits: 0 when fn
// returned, 1 when it threw (the result then carries the error).
export async function run(fn) {
  let browser;
  let result;
  let code = 0;
  try {
    browser = await launchBrowser();
    result = { ok: true, ...(await fn(browser)) };
  } catch (err) {
    // A script may attach what the page logged to the error (err.log).
    result = { ok: false, error: String(err?.stack ?? err), log: err?.log };
    code = 1;
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  await new Promise((resolve) => process.stdout.write(`ELARA_BROWSER_RESULT ${JSON.stringify(result)}\n`, resolve));
  process.exit(code);
}
