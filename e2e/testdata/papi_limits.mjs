// Projects and limits with the real polkadot-api client. Driven by
// TestProjectsWithPolkadotAPI.
//
// Usage: node papi_limits.mjs PROJECT_WS_URL
//
// Connects polkadot-api (getWsProvider, the `ws` package's WebSocket) to
// /{chain}/{project} (a plan of 5 calls/s with a burst of 20), reads the
// chain spec, waits for the burst to refill and sends 40
// chain_getBlockHash(i) at once with client._request: it reports how many
// were served and the errors of the refused ones, and that the client
// still works afterwards.

import { createClient } from 'polkadot-api';
import { getWsProvider } from 'polkadot-api/ws';
import { WebSocket } from 'ws';

const [url] = process.argv.slice(2);
const result = { ok: false, served: 0, refused: [], chain: '', after: '' };
const timeout = setTimeout(() => finish('timeout'), 60000);

function finish(error) {
  clearTimeout(timeout);
  if (error) result.error = String(error);
  console.log('ELARA_E2E_RESULT ' + JSON.stringify(result));
  process.exit(0);
}

try {
  const client = createClient(getWsProvider(url, { websocketClass: WebSocket }));
  result.chain = (await client.getChainSpecData()).name;
  await new Promise((r) => setTimeout(r, 4500));
  const calls = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => client._request('chain_getBlockHash', [i])));
  for (const c of calls) {
    if (c.status === 'fulfilled') result.served++;
    else result.refused.push((c.reason && c.reason.code !== undefined ? c.reason.code + ': ' : '') + String(c.reason && c.reason.message || c.reason));
  }
  await new Promise((r) => setTimeout(r, 1500));
  result.after = await client._request('system_chain', []);
  result.ok = true;
  client.destroy();
  finish();
} catch (e) {
  finish(e && e.stack || e);
}
