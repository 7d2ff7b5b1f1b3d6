// The gateway behind Caddy's TLS, as dApps reach it: polkadot.js
// (@polkadot/api WsProvider and HttpProvider) and polkadot-api (getWsProvider
// with the ws package's WebSocket) over wss:// and https://, trusting only
// what Node.js trusts plus NODE_EXTRA_CA_CERTS (the test's Caddy local CA).
// No certificate check is turned off anywhere.
//
// Usage: node tls_clients.mjs GATEWAY_WSS_URL GATEWAY_HTTPS_URL DIRECT_WS_URL
//
// Prints exactly one line `ELARA_E2E_RESULT {json}` on stdout; the Go test
// asserts on it. Exit status 0 when the script ran to the end.

import { ApiPromise, HttpProvider, WsProvider } from '@polkadot/api';
import { createClient } from 'polkadot-api';
import { getWsProvider } from 'polkadot-api/ws';
import { WebSocket } from 'ws';

const [wssURL, httpsURL, directURL] = process.argv.slice(2);
const deadlineMs = Number(process.env.ELARA_E2E_SCRIPT_TIMEOUT_MS || 90000);
const STEP_MS = 20000;
const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';

const result = { steps: [] };

function emit(code) {
  const json = JSON.stringify(result, (_, v) => (typeof v === 'bigint' ? v.toString() : v));
  process.stdout.write('\nELARA_E2E_RESULT ' + json + '\n', () => process.exit(code));
}

if (!wssURL || !httpsURL || !directURL) {
  result.error = 'usage: node tls_clients.mjs GATEWAY_WSS_URL GATEWAY_HTTPS_URL DIRECT_WS_URL';
  emit(2);
}

const overall = setTimeout(() => {
  result.error = `overall deadline of ${deadlineMs} ms reached (last step: ${result.steps.at(-1) || 'none'})`;
  emit(1);
}, deadlineMs);

const step = (name) => result.steps.push(name);

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    })
  ]).finally(() => clearTimeout(t));
}

async function pjs(url) {
  // autoConnect off: one attempt, so a refused certificate fails the step
  // instead of retrying until the deadline.
  const provider = new WsProvider(url, false, {}, STEP_MS);
  await withTimeout(provider.connect(), STEP_MS, `connect ${url}`);
  return withTimeout(ApiPromise.create({ provider, throwOnConnect: true, noInitWarn: true }), STEP_MS * 2, `ApiPromise.create ${url}`);
}

async function main() {
  step('polkadot.js wss');
  const gw = await pjs(wssURL);
  const direct = await pjs(directURL);
  const free = async (api) => (await api.query.system.account(ALICE)).data.free.toString();
  result.pjs = {
    chain: (await gw.rpc.system.chain()).toString(),
    genesisHash: gw.genesisHash.toHex(),
    aliceFree: await free(gw)
  };
  result.direct = {
    chain: (await direct.rpc.system.chain()).toString(),
    genesisHash: direct.genesisHash.toHex(),
    aliceFree: await free(direct)
  };
  await gw.disconnect();
  await direct.disconnect();

  step('polkadot.js https');
  const http = new HttpProvider(httpsURL);
  result.pjsHttpChain = await withTimeout(http.send('system_chain', []), STEP_MS, 'system_chain over https');

  step('polkadot-api wss');
  const client = createClient(getWsProvider(wssURL, { websocketClass: WebSocket }));
  try {
    const spec = await withTimeout(client.getChainSpecData(), STEP_MS, 'getChainSpecData');
    const api = client.getUnsafeApi();
    const account = await withTimeout(api.query.System.Account.getValue(ALICE), STEP_MS * 2, 'System.Account');
    result.papi = { chain: spec.name, genesisHash: spec.genesisHash, aliceFree: account.data.free };
  } finally {
    client.destroy();
  }
  step('done');
}

main().then(
  () => {
    clearTimeout(overall);
    result.ok = true;
    emit(0);
  },
  (err) => {
    clearTimeout(overall);
    result.error = String((err && err.stack) || err);
    emit(1);
  }
);
