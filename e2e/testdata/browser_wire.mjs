// Headless Chromium against the gateway: fetch() POSTs with the browser's
// own Accept-Encoding, and a WebSocket with the browser's own
// permessage-deflate offer. Prints one `ELARA_E2E_RESULT {json}` line.
//
//   node browser_wire.mjs <http url of the chain> <ws url of the chain>
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [httpURL, wsURL] = process.argv.slice(2);
const done = (r) => {
  console.log('ELARA_E2E_RESULT ' + JSON.stringify(r));
};
const dataDir = mkdtempSync(join(tmpdir(), 'elara-chromium-'));
let browser;
try {
  // A persistent context is how playwright takes a user data dir of our own.
  browser = await chromium.launchPersistentContext(dataDir, {
    executablePath: process.env.ELARA_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const page = browser.pages()[0] || await browser.newPage();
  // A page of the gateway's origin, so fetch() is same-origin (the GET
  // itself answers 405, which is fine for a blank page).
  await page.goto(httpURL);
  const r = await page.evaluate(async ({ httpURL, wsURL }) => {
    const sha = async (s) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(s))))
      .map((b) => b.toString(16).padStart(2, '0')).join('');
    const resp = await fetch(httpURL, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: '{"jsonrpc":"2.0","id":1,"method":"state_getMetadata","params":[]}',
    });
    const json = await resp.json();
    const entry = performance.getEntriesByType('resource').filter((e) => e.name === httpURL).pop();
    const ws = new WebSocket(wsURL);
    const wsMeta = await new Promise((resolve, reject) => {
      ws.onopen = () => ws.send('{"jsonrpc":"2.0","id":2,"method":"state_getMetadata","params":[]}');
      ws.onmessage = (e) => resolve(JSON.parse(e.data).result);
      ws.onerror = () => reject(new Error('websocket error'));
    });
    const extensions = ws.extensions;
    ws.close();
    return {
      contentEncoding: resp.headers.get('content-encoding') || '',
      encodedBodySize: entry ? entry.encodedBodySize : -1,
      decodedBodySize: entry ? entry.decodedBodySize : -1,
      httpSHA256: await sha(json.result || ''),
      wsSHA256: await sha(wsMeta || ''),
      wsExtensions: extensions,
    };
  }, { httpURL, wsURL });
  done(r);
} catch (e) {
  done({ error: String(e && e.stack || e) });
} finally {
  if (browser) await browser.close();
  rmSync(dataDir, { recursive: true, force: true });
}
