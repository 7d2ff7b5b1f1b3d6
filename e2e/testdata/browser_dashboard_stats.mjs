// TestDashboardDrawsStatistics (e2e/dashboard_charts_test.go): the
// dashboard page against a fixed API with statistics on.
//   node browser_dashboard_stats.mjs <dashboard url> <shots dir> <project id>

import { openPage, run, screenshot } from './browser.mjs';

const [dashURL, shots, id] = process.argv.slice(2);
if (!dashURL || !shots || !id) {
  console.error('usage: node browser_dashboard_stats.mjs <dashboard url> <shots dir> <project id>');
  process.exit(2);
}

const sums = (page, sel) => page.$$eval(sel, (cs) => cs.map((c) => Object.fromEntries(JSON.parse(c.dataset.sums))));
const texts = (page, sel) => page.$$eval(sel, (rs) => rs.map((r) => r.innerText.replace(/\s+/g, ' ').trim()));

await run(async (browser) => {
  const { page, log } = await openPage(browser);
  try {
    await page.goto(dashURL, { timeout: 30000 });
    await page.waitForFunction(() => Number(document.body.dataset.loaded || 0) > 0, null, { timeout: 30000 });
    const out = { log };
    out.todayCalls = await page.$eval('#stats [data-totals=today] [data-k=calls] b', (b) => b.textContent.replace(/,/g, ''));
    out.totalCalls = await page.$eval('#stats [data-totals=total] [data-k=calls] b', (b) => b.textContent.replace(/,/g, ''));
    out.charts = await sums(page, '#stats .chart');
    out.nodes = (await texts(page, '[data-node]')).join('\n');
    await page.screenshot({ path: `${shots}/stats.png`, fullPage: true });
    await page.click('#metric-tabs [data-metric=bytes]');
    await page.waitForFunction(() => [...document.querySelectorAll('#stats .chart')].every((c) => c.dataset.sums.includes('bytes out')), null, { timeout: 15000 });
    out.bytesSums = await sums(page, '#stats .chart');
    await page.click(`tr[data-project="${id}"] a`);
    await page.waitForSelector(`#detail [data-limits="${id}"]`, { timeout: 15000 });
    const cards = await page.$$('#detail .cards > .card');
    const rows = async (i) => (cards[i] ? texts(cards[i], 'tbody tr') : []);
    out.detail = {
      byCalls: await rows(0), byBytes: await rows(1),
      errors: (await rows(2)).join('\n'), countries: (await rows(3)).join('\n'),
      tiles: await page.innerText(`#detail [data-limits="${id}"]`),
      cacheHits: await page.innerText('#detail [data-totals=today] [data-k="cache hits"] b'),
    };
    await page.screenshot({ path: `${shots}/stats-detail.png`, fullPage: true });
    // The page redraws for the new width (a refresh after resizing).
    const before = await page.evaluate(() => Number(document.body.dataset.loaded));
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction((n) => Number(document.body.dataset.loaded) > n, before, { timeout: 15000 });
    out.overflow = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));
    await page.screenshot({ path: `${shots}/stats-phone.png`, fullPage: true });
    return out;
  } catch (err) {
    err.log = log;
    throw err;
  } finally {
    await screenshot(page);
  }
});
