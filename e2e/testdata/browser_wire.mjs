// TestCompressionInBrowser (e2e/wire_test.go): headless Chromium against
// the gateway: fetch() POSTs with the browser's own Accept-Encoding, and a
// WebSocket with the browser's own permessage-deflate offer.
//   node browser_wire.mjs <http url of the chain> <ws url of the chain>

import { openPage, run, screenshot } from './browser.mjs';

const [httpURL, wsURL] = process.argv.slice(2);
if (!httpURL || !wsURL) {
  console.error('usage: node browser_wire.mjs <http url> <ws url>');
  process.exit(2);
}

await run(async (browser) => {
  const { page, log } = await openPage(browser);
  try {
    // A page of the gateway's origin, so fetch() is same-origin (the GET
    // itself answers 405, which is fine for a blank page).
    await page.goto(httpURL, { timeout: 30000 });
    return await page.evaluate(async ({ httpURL, wsURL }) => {
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
  } catch (err) {
    err.log = log;
    throw err;
  } finally {
    await screenshot(page);
  }
});
