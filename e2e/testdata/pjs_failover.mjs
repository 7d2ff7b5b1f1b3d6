// Shared subscriptions across a node failure, with the real polkadot.js
// client (@polkadot/api 16.5.6). Driven by TestSharedSubscriptionFailover
// through session.mjs.
//
// Usage: node pjs_failover.mjs GATEWAY_WS_URL [CLIENTS]
//
// CLIENTS (default 3) ApiPromise clients connect through the gateway, each
// subscribed to new heads and finalized heads twice: through api.rpc.chain
// (what dApps use) and through provider.subscribe (every notification exactly
// as the gateway sent it). Commands:
//   start             connect and subscribe; {first: [{new, fin}...]} numbers first seen
//   wait {number}     until every subscription of every client has seen block #number
//   calls             chain name, header, //Alice's account (raw storage) through each client
//   report            everything seen, and the providers' connection events
//   exit              disconnect

import { ApiPromise, Keyring, WsProvider } from '@polkadot/api';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { serve, withTimeout } from './session.mjs';

const gatewayURL = process.argv[2];
const nClients = Number(process.argv[3] || 3);
const STEP_MS = 20000;

const clients = [];
let wake = () => {};
const wakeAll = () => {
  const w = wake;
  wake = () => {};
  w();
};

const LISTS = ['pjsNew', 'pjsFin', 'rawNew', 'rawFin'];

async function connectClient(i) {
  const c = { i, events: { connected: 0, disconnected: 0, error: 0 }, pjsNew: [], pjsFin: [], rawNew: [], rawFin: [] };
  // autoConnectMs 1000: a dropped client would reconnect (and polkadot.js
  // would resubscribe), which the event counters make visible.
  const provider = new WsProvider(gatewayURL, 1000, {}, STEP_MS);
  provider.on('connected', () => c.events.connected++);
  provider.on('disconnected', () => c.events.disconnected++);
  provider.on('error', () => c.events.error++);
  c.provider = provider;
  c.api = await withTimeout(ApiPromise.create({ provider, noInitWarn: true }), STEP_MS * 2, `client ${i}: ApiPromise.create`);
  const rec = (list) => (header) => {
    c[list].push({ number: Number(header.number.toString()), hash: header.hash.toHex() });
    wakeAll();
  };
  const recRaw = (list) => (err, header) => {
    if (err) {
      c[list].push({ error: String(err) });
    } else {
      c[list].push({ number: parseInt(header.number, 16), hash: null });
    }
    wakeAll();
  };
  c.unsubs = [
    await c.api.rpc.chain.subscribeNewHeads(rec('pjsNew')),
    await c.api.rpc.chain.subscribeFinalizedHeads(rec('pjsFin'))
  ];
  c.rawSubs = [
    ['chain_newHead', 'chain_unsubscribeNewHeads', await provider.subscribe('chain_newHead', 'chain_subscribeNewHeads', [], recRaw('rawNew'))],
    ['chain_finalizedHead', 'chain_unsubscribeFinalizedHeads', await provider.subscribe('chain_finalizedHead', 'chain_subscribeFinalizedHeads', [], recRaw('rawFin'))]
  ];
  return c;
}

function waitFor(pred, ms, what) {
  return withTimeout(
    new Promise((resolve) => {
      const check = () => (pred() ? resolve() : (wake = check));
      check();
    }),
    ms,
    what
  );
}

const missing = (number) => {
  const out = [];
  for (const c of clients) {
    for (const l of LISTS) {
      if (!c[l].some((h) => h.number === number)) out.push(`client ${c.i} ${l} (last ${JSON.stringify(c[l].at(-1))})`);
    }
  }
  return out;
};

serve({
  async start() {
    await cryptoWaitReady();
    for (let i = 0; i < nClients; i++) clients.push(await connectClient(i));
    await waitFor(() => clients.every((c) => LISTS.every((l) => c[l].length > 0)), STEP_MS, 'first heads on every subscription');
    return { first: clients.map((c) => Object.fromEntries(LISTS.map((l) => [l, c[l][0].number]))) };
  },

  async wait({ number, timeoutMs }) {
    try {
      await waitFor(() => missing(number).length === 0, timeoutMs || STEP_MS, `block #${number} on every subscription`);
    } catch (err) {
      throw new Error(`${err.message}; missing on: ${missing(number).join('; ')}`);
    }
    return {};
  },

  async calls() {
    const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
    const alice = keyring.addFromUri('//Alice');
    const out = [];
    for (const c of clients) {
      const key = c.api.query.system.account.key(alice.address);
      out.push({
        chain: (await withTimeout(c.api.rpc.system.chain(), STEP_MS, 'system.chain')).toString(),
        header: Number((await withTimeout(c.api.rpc.chain.getHeader(), STEP_MS, 'chain.getHeader')).number.toString()),
        aliceKey: key,
        aliceRaw: await withTimeout(c.provider.send('state_getStorage', [key]), STEP_MS, 'state_getStorage'),
        aliceFree: (await withTimeout(c.api.query.system.account(alice.address), STEP_MS, 'system.account')).data.free.toString()
      });
    }
    return { calls: out };
  },

  async report() {
    return {
      clients: clients.map((c) => ({
        events: c.events,
        connected: c.provider.isConnected,
        ...Object.fromEntries(LISTS.map((l) => [l, c[l]]))
      }))
    };
  },

  async exit() {
    for (const c of clients) {
      for (const u of c.unsubs || []) u();
      await c.api.disconnect().catch(() => {});
    }
  }
});
