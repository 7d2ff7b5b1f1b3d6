// Projects and limits with the real polkadot.js client. Driven by
// TestProjectsWithPolkadotJS.
//
// Usage: node pjs_limits.mjs PROJECT_WS_URL ADMIN_URL PROJECT_ID
//
// Connects an ApiPromise to /{chain}/{project} (a plan with a small
// rate and a burst of 20), fires 40 api.rpc.chain.getBlockHash(i) at once and reports how many were
// served and the errors of the refused ones; then disables the project
// through the admin API and reports how the provider's connection ended
// (a raw `ws` socket on the same path reports the close code and reason).

import { ApiPromise, WsProvider } from '@polkadot/api';
import WebSocket from 'ws';
import http from 'node:http';

const [url, admin, id] = process.argv.slice(2);
const result = { ok: false, served: 0, refused: [], chain: '', closeCode: 0, closeReason: '', disconnected: false };
const timeout = setTimeout(() => { finish('timeout after steps ' + steps.join(',')); }, 60000);
const steps = [];

function finish(error) {
  clearTimeout(timeout);
  if (error) result.error = String(error);
  console.log('ELARA_E2E_RESULT ' + JSON.stringify(result));
  process.exit(0);
}

try {
  const provider = new WsProvider(url, 0); // no reconnection: the test watches the close
  provider.on('disconnected', () => { result.disconnected = true; });
  await provider.connect(); // autoConnectMs 0 does not connect by itself
  const api = await ApiPromise.create({ provider, noInitWarn: true, throwOnConnect: true });
  steps.push('connected');
  result.chain = (await api.rpc.system.chain()).toString();
  // Let the rate refill after the connection's own calls.
  await new Promise((r) => setTimeout(r, 4500));
  // Distinct params: polkadot.js shares identical calls in flight.
  const calls = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => api.rpc.chain.getBlockHash(i)));
  for (const c of calls) {
    if (c.status === 'fulfilled') result.served++;
    else result.refused.push(String(c.reason && c.reason.message || c.reason));
  }
  steps.push('burst');
  // A raw socket on the same project, to read the close frame.
  const raw = new WebSocket(url);
  await new Promise((resolve, reject) => { raw.on('open', resolve); raw.on('error', reject); });
  const closed = new Promise((resolve) => raw.on('close', (code, reason) => resolve([code, reason.toString()])));
  // node:http, as an operator's tool: fetch() sends Sec-Fetch-Mode, which
  // Caddy's admin endpoint refuses without an allowed Origin.
  const status = await new Promise((resolve, reject) => {
    const req = http.request(admin + '/elara/projects/' + id, { method: 'PATCH', headers: { 'Content-Type': 'application/json' } },
      (res) => { res.resume(); resolve(res.statusCode); });
    req.on('error', reject);
    req.end('{"status":"disabled"}');
  });
  if (status !== 200) throw new Error('PATCH: HTTP ' + status);
  steps.push('disabled');
  const t0 = Date.now();
  const [code, reason] = await closed;
  result.closeCode = code;
  result.closeReason = reason;
  result.closeMs = Date.now() - t0;
  // The provider's connection ends too.
  for (let i = 0; i < 40 && !result.disconnected; i++) await new Promise((r) => setTimeout(r, 50));
  result.ok = true;
  await api.disconnect().catch(() => {});
  finish();
} catch (e) {
  finish(e && e.stack || e);
}
