// End-to-end check with the real polkadot-api client (polkadot-api 2.2.2),
// which speaks only the new JSON-RPC spec (chainHead_v1_*, chainSpec_v1_*,
// transaction_v1_*).
//
// Usage: node papi_compare.mjs GATEWAY_WS_URL DIRECT_WS_URL
//
// For each provider of polkadot-api/ws — the default one (getWsProvider,
// which works around some node quirks) and the raw one (getWsRawProvider,
// which takes the wire as the spec says) — one client through the gateway
// and one directly to the node (Chopsticks) each report: chain spec data,
// finalized and best block, metadata at the finalized block, the body of
// that block, System.Account(//Alice) at best and at the finalized block.
// Both then watch finalizedBlock$ and bestBlocks$ while blocks are made
// directly on the node (dev_newBlock), and a transfer //Alice -> //Bob
// signed with an sr25519 key is sent through the gateway and watched until
// finalized. Storage is read with getUnsafeApi (no generated descriptors).
// Prints exactly one line `ELARA_E2E_RESULT {json}`; the Go test
// (papi_test.go) asserts on it. Exit 0 when the script ran to the end.

import { createHash } from 'node:crypto';
import { createClient } from 'polkadot-api';
import { getWsProvider, getWsRawProvider } from 'polkadot-api/ws';
import { getPolkadotSigner } from 'polkadot-api/signer';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { WebSocket } from 'ws';

const gatewayURL = process.argv[2];
const directURL = process.argv[3];
const deadlineMs = Number(process.env.ELARA_E2E_SCRIPT_TIMEOUT_MS || 150000);
const STEP_MS = 30000;
const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
const BOB = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
const AMOUNT = 1_000_000_000_000n;

const result = { steps: [], providers: {} };

function emit(code) {
  process.stdout.write('\nELARA_E2E_RESULT ' + JSON.stringify(result, jsonSafe) + '\n', () => process.exit(code));
}

function jsonSafe(_key, v) {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return '0x' + Buffer.from(v).toString('hex');
  return v;
}

if (!gatewayURL || !directURL) {
  result.error = 'usage: node papi_compare.mjs GATEWAY_WS_URL DIRECT_WS_URL';
  emit(2);
}

setTimeout(() => {
  result.error = `overall deadline of ${deadlineMs} ms reached (last step: ${result.steps.at(-1) || 'none'})`;
  emit(1);
}, deadlineMs).unref();

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

const hex = (u8) => '0x' + Buffer.from(u8).toString('hex');
const sha256 = (u8) => createHash('sha256').update(u8).digest('hex');
const plain = (v) => JSON.parse(JSON.stringify(v, jsonSafe));

// devCall sends one JSON-RPC call straight to the node (dev_newBlock is
// denied by the gateway, and polkadot-api has no call for it).
function devCall(method, params) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(directURL);
      ws.on('error', reject);
      ws.on('open', () => ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method, params })));
      ws.on('message', (data) => {
        const m = JSON.parse(data.toString());
        if (m.id !== 1) return;
        ws.close();
        m.error ? reject(new Error(`${method}: ${JSON.stringify(m.error)}`)) : resolve(m.result);
      });
    }),
    STEP_MS,
    method
  );
}

// facts asks one client the questions whose answers must not depend on the
// path (gateway or direct).
async function facts(client) {
  const spec = await withTimeout(client.getChainSpecData(), STEP_MS, 'getChainSpecData');
  const fin = await withTimeout(client.getFinalizedBlock(), STEP_MS, 'getFinalizedBlock');
  const best = (await withTimeout(client.getBestBlocks(), STEP_MS, 'getBestBlocks'))[0];
  const metadata = await withTimeout(client.getMetadata(fin.hash), STEP_MS, 'getMetadata');
  const body = await withTimeout(client.getBlockBody(fin.hash), STEP_MS, 'getBlockBody');
  const api = client.getUnsafeApi();
  const aliceBest = await withTimeout(api.query.System.Account.getValue(ALICE, { at: 'best' }), STEP_MS, 'System.Account best');
  const aliceFinalized = await withTimeout(api.query.System.Account.getValue(ALICE, { at: fin.hash }), STEP_MS, 'System.Account finalized');
  return plain({
    chainSpec: spec,
    finalized: { number: fin.number, hash: fin.hash },
    best: { number: best.number, hash: best.hash },
    metadata: { length: metadata.length, sha256: sha256(metadata) },
    body: body.map(hex),
    aliceBest,
    aliceFinalized
  });
}

// watch records what the block streams deliver.
function watch(client) {
  const seen = { finalized: [], best: [] };
  const subs = [
    client.finalizedBlock$.subscribe({
      next: (b) => seen.finalized.push({ number: b.number, hash: b.hash }),
      error: (e) => (seen.error = String(e))
    }),
    client.bestBlocks$.subscribe({
      next: (bs) => {
        const b = bs[0];
        const last = seen.best.at(-1);
        // bestBlocks$ repeats the list when a non-best block changes;
        // only a change of the best block is a new entry.
        if (!last || last.hash !== b.hash) seen.best.push({ number: b.number, hash: b.hash });
      },
      error: (e) => (seen.error = String(e))
    })
  ];
  return { seen, stop: () => subs.forEach((s) => s.unsubscribe()) };
}

async function until(what, cond) {
  const end = Date.now() + STEP_MS;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timeout: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function transfer(client, pair) {
  const api = client.getUnsafeApi();
  const signer = getPolkadotSigner(pair.publicKey, 'Sr25519', (input) => pair.sign(input));
  const tx = api.tx.Balances.transfer_keep_alive({ dest: { type: 'Id', value: BOB }, value: AMOUNT });
  const events = [];
  let blocks = 0;
  const outcome = await withTimeout(
    new Promise((resolve, reject) => {
      let timer;
      const sub = tx.signSubmitAndWatch(signer).subscribe({
        next: (ev) => {
          events.push(ev.type);
          if (ev.type === 'broadcasted' && !timer) {
            // Chopsticks builds blocks only when told: make one now and
            // again until the transaction is in one.
            const make = () => devCall('dev_newBlock', [{ count: 1 }]).then(() => blocks++).catch(reject);
            make();
            timer = setInterval(make, 3000);
          }
          if (ev.type === 'finalized') {
            clearInterval(timer);
            sub.unsubscribe();
            resolve({
              ok: ev.ok,
              block: { number: ev.block.number, hash: ev.block.hash },
              events: ev.events.map((e) => `${e.type}.${e.value.type}`)
            });
          }
        },
        error: (e) => {
          clearInterval(timer);
          reject(e);
        }
      });
    }),
    STEP_MS * 2,
    'transfer until finalized'
  );
  return { ...outcome, statuses: events, blocksMade: blocks };
}

async function run(kind, mk, pair) {
  const r = (result.providers[kind] = {});
  // A fresh Chopsticks is at genesis, whose hash (0x4545...) is not the
  // hash of its header: polkadot-api rejects that ("Unsupported hasher"),
  // directly as well. A new block also gives the finalized block a body.
  step(`${kind}: new block`);
  await devCall('dev_newBlock', [{ count: 1 }]);
  step(`${kind}: connect`);
  const gw = createClient(mk(gatewayURL));
  const dx = createClient(mk(directURL));
  try {
    step(`${kind}: facts`);
    r.gateway = await facts(gw);
    r.direct = await facts(dx);

    step(`${kind}: streams`);
    const wg = watch(gw);
    const wd = watch(dx);
    const start = r.direct.finalized.number;
    await until('first finalized block on both', () => wg.seen.finalized.length > 0 && wd.seen.finalized.length > 0);
    r.made = [];
    for (let i = 1; i <= 3; i++) {
      const hash = await devCall('dev_newBlock', [{ count: 1 }]);
      r.made.push({ number: start + i, hash });
      const seen = (w) => w.seen.finalized.some((b) => b.hash === hash) && w.seen.best.some((b) => b.hash === hash);
      await until(`block ${start + i} on both clients`, () => seen(wg) && seen(wd));
    }
    wg.stop();
    wd.stop();
    r.streams = { gateway: wg.seen, direct: wd.seen };

    step(`${kind}: transfer`);
    const api = { gateway: gw.getUnsafeApi(), direct: dx.getUnsafeApi() };
    const bobBefore = await api.gateway.query.System.Account.getValue(BOB, { at: 'finalized' });
    r.transfer = await transfer(gw, pair);
    const after = async (a) => (await a.query.System.Account.getValue(BOB, { at: r.transfer.block.hash })).data.free;
    r.bob = plain({
      before: bobBefore.data.free,
      gateway: await withTimeout(after(api.gateway), STEP_MS, 'Bob after (gateway)'),
      direct: await withTimeout(after(api.direct), STEP_MS, 'Bob after (direct)'),
      amount: AMOUNT
    });
    step(`${kind}: done`);
  } finally {
    gw.destroy();
    dx.destroy();
  }
}

async function main() {
  await cryptoWaitReady();
  const alice = new Keyring({ type: 'sr25519' }).addFromUri('//Alice');
  const providers = {
    default: (url) => getWsProvider(url, { websocketClass: WebSocket }),
    raw: (url) => getWsRawProvider(url, { websocketClass: WebSocket })
  };
  for (const [kind, mk] of Object.entries(providers)) {
    await run(kind, mk, alice);
  }
  result.ok = true;
}

main().then(
  () => emit(0),
  (e) => {
    result.error = String(e && e.stack ? e.stack : e);
    emit(1);
  }
);
