// TestBrowserCORS (e2e/browser_test.go): loads the page at argv[2] (served
// on its own origin, it calls the gateway's endpoints itself, see
// browser_cors_page.html) in headless Chromium and reports what the page
// saw, with the browser's console and failed requests.
//   node browser_cors.mjs <page URL>

import { openPage, run, screenshot } from './browser.mjs';

const url = process.argv[2];
if (!url) {
  console.error('usage: node browser_cors.mjs <page URL>');
  process.exit(2);
}

await run(async (browser) => {
  const { page, log } = await openPage(browser);
  try {
    await page.goto(url, { timeout: 30000 });
    await page.waitForFunction(() => window.elaraResults, null, { timeout: 120000, polling: 100 });
    const results = await page.evaluate(() => window.elaraResults);
    return { results, log };
  } catch (err) {
    err.log = log;
    throw err;
  } finally {
    // The Go test keeps the screenshot only when it fails.
    await screenshot(page);
  }
});
