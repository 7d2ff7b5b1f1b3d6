// TestDashboardInBrowser (e2e/dashboard_test.go): headless Chromium drives
// the elara_dashboard page of the built gateway as an operator and as a
// project owner would.
//   node browser_dashboard.mjs <dashboard url> <shots dir> <other project name> <calls to send> [docs shot path]
// It creates a project in the UI, calls it at once from Node, waits for it
// in the table, sends calls and reads the totals the page shows (while
// statistics are on), opens the owner link at phone width, disables the
// project in the UI and calls it again, enables it, lowers its daily
// limit in the UI and calls it again, deletes it (confirmed), and
// measures horizontal overflow at phone width. Screenshots go to <shots
// dir>.

import WebSocket from 'ws';
import { run, screenshot } from './browser.mjs';

const [dashURL, shots, otherName, callsArg, docsShot] = process.argv.slice(2);
if (!dashURL || !shots || !otherName || !callsArg) {
  console.error('usage: node browser_dashboard.mjs <dashboard url> <shots dir> <other project name> <calls> [docs shot]');
  process.exit(2);
}
const calls = Number(callsArg);
const phone = { width: 390, height: 844 };

async function rpc(url) {
  const resp = await fetch(url, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: '{"jsonrpc":"2.0","id":1,"method":"system_chain","params":[]}',
  });
  let body = null;
  try { body = await resp.json(); } catch { /* not JSON */ }
  return { status: resp.status, body };
}

async function newPage(browser, viewport, log, name) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on('console', (m) => log.push(`${name} console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`${name} pageerror: ${e.message}`));
  page.on('requestfailed', (r) => log.push(`${name} requestfailed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('dialog', (d) => { log.push(`${name} dialog: ${d.message()}`); d.accept(); });
  return page;
}

// loaded waits for the page's next completed refresh.
async function loaded(page, after = 0) {
  await page.waitForFunction((n) => Number(document.body.dataset.loaded || 0) > n, after, { timeout: 30000 });
  return page.evaluate(() => Number(document.body.dataset.loaded));
}

const overflow = (page) => page.evaluate(() => ({
  scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
}));

await run(async (browser) => {
  const log = [];
  const out = { log };
  let page;
  try {
    page = await newPage(browser, { width: 1280, height: 900 }, log, 'operator');
    await page.goto(dashURL, { timeout: 30000 });
    await loaded(page);
    out.view = await page.evaluate(() => document.body.dataset.view);
    out.chains = await page.$$eval('[data-chain]', (cs) => cs.map((c) => ({ chain: c.dataset.chain, text: c.innerText })));

    // Create a project in the UI.
    await page.click('#new-project');
    await page.fill('#create-form [name=name]', 'ui-project');
    await page.fill('#create-form [name=owner]', 'ui-owner');
    await page.click('#create-form button[type=submit]');
    await page.waitForSelector('[data-created]', { timeout: 15000 });
    const created = await page.$$eval('[data-created] code', (cs) => cs.map((c) => c.textContent));
    [out.id, out.secret, out.ownerLink] = created;
    out.endpoints = await page.$$eval('#created [data-endpoint] code', (cs) => cs.map((c) => c.textContent));
    // It serves calls at once.
    out.firstCall = await rpc(out.endpoints[0]);
    for (let i = 1; i < calls; i++) await rpc(out.endpoints[0]);
    // ...and shows up in the table.
    const row = `tr[data-project="${out.id}"]`;
    await page.waitForSelector(row, { timeout: 15000 });
    out.rowText = await page.innerText(row);
    await page.fill('#search', 'no-such-project');
    out.rowsWhenSearchMisses = await page.$$eval('#projects-table tbody tr', (r) => r.length);
    await page.fill('#search', 'ui-proj');
    out.rowsWhenSearchHits = await page.$$eval('#projects-table tbody tr', (r) => r.map((x) => x.dataset.project));
    await page.fill('#search', '');

    // Totals and charts of the project (statistics on).
    out.statistics = await page.evaluate(() => !document.querySelector('#stats [data-empty=stats-off]'));
    if (out.statistics) {
      await page.selectOption('#scope', `project:${out.id}`);
      const want = String(calls);
      try {
        await page.waitForFunction((w) => {
          const b = document.querySelector('#stats [data-totals=today] [data-k=calls] b');
          return b && b.textContent.replace(/,/g, '') === w;
        }, want, { timeout: 60000 });
      } catch { /* reported below */ }
      out.todayCalls = await page.$eval('#stats [data-totals=today] [data-k=calls] b', (b) => b.textContent.replace(/,/g, ''));
      out.charts = await page.$$eval('#stats .uplot', (c) => c.length);
      // The calls each chart (24 h, 30 days) drew.
      out.chartCalls = await page.$$eval('#stats .chart', (cs) => cs.map((c) => Object.fromEntries(JSON.parse(c.dataset.sums)).calls));
    }
    await page.screenshot({ path: `${shots}/operator.png`, fullPage: true });
    if (docsShot) {
      await page.click(`${row} a`);
      await page.waitForSelector(`#detail [data-limits="${out.id}"]`, { timeout: 15000 });
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: docsShot, fullPage: true });
      await page.click(`${row} a`); // close it again
    }

    // The owner link at phone width: that project only.
    const ownerPage = await newPage(browser, phone, log, 'owner');
    await ownerPage.goto(out.ownerLink, { timeout: 30000 });
    await loaded(ownerPage);
    out.ownerView = await ownerPage.evaluate(() => document.body.dataset.view);
    out.ownerText = await ownerPage.innerText('body');
    out.ownerShowsOther = out.ownerText.includes(otherName);
    out.ownerOverflow = await overflow(ownerPage);
    await ownerPage.screenshot({ path: `${shots}/owner-phone.png`, fullPage: true });
    // A wrong secret in the link is refused.
    const bad = await newPage(browser, phone, log, 'bad-owner');
    await bad.goto(out.ownerLink.replace(/secret=[0-9a-f]+/, 'secret=' + '0'.repeat(32)), { timeout: 30000 });
    await bad.waitForSelector('#denied:not([hidden])', { timeout: 15000 });
    out.badOwnerText = await bad.innerText('#denied');

    // Disable in the UI: refused at once.
    await page.click(`${row} [data-action=disable]`);
    await page.waitForSelector(`${row} [data-status=disabled]`, { timeout: 15000 });
    out.disabledCall = await rpc(out.endpoints[0]);
    await page.click(`${row} [data-action=enable]`);
    await page.waitForSelector(`${row} [data-status=active]`, { timeout: 15000 });
    out.enabledCall = await rpc(out.endpoints[0]);

    // Lower the daily limit in the UI: applies at once.
    await page.click(`${row} a`);
    const form = `#detail form[data-edit="${out.id}"]`;
    await page.waitForSelector(form, { timeout: 15000 });
    // A connections override of 1 in the UI: a second WebSocket is refused.
    await page.fill(`${form} [name=conns]`, '1');
    await page.click(`${form} button[type=submit]`);
    await page.waitForFunction((f) => !document.querySelector(f)?.dataset.dirty, form, { timeout: 15000 });
    const wsURL = out.endpoints.find((u) => u.startsWith('ws'));
    const first = new WebSocket(wsURL);
    await new Promise((ok, fail) => { first.once('open', ok); first.once('error', fail); });
    out.secondSocketStatus = await new Promise((ok) => {
      const second = new WebSocket(wsURL);
      second.once('unexpected-response', (_, res) => ok(res.statusCode));
      second.once('open', () => { second.close(); ok(101); });
      second.once('error', () => ok(0));
    });
    first.close();
    await page.fill(`${form} [name=rpd]`, '5');
    await page.click(`${form} button[type=submit]`);
    await page.waitForFunction((r) => (document.querySelector(r)?.innerText ?? '').includes('/ 5'), row, { timeout: 15000 });
    out.limitedRow = await page.innerText(row);
    out.limitedCall = await rpc(out.endpoints[0]);

    // Delete, confirmed (the dialog handler accepts).
    await page.click(`#detail [data-action=delete]`);
    await page.waitForSelector(row, { state: 'detached', timeout: 15000 });
    out.deletedCall = await rpc(out.endpoints[0]);

    // The operator view at phone width.
    await page.setViewportSize(phone);
    await loaded(page, await loaded(page));
    out.operatorOverflow = await overflow(page);
    await page.screenshot({ path: `${shots}/operator-phone.png`, fullPage: true });
    return out;
  } catch (err) {
    err.log = log;
    throw err;
  } finally {
    await screenshot(page);
  }
});
