// Many polkadot-api clients through the gateway at once (issue 11): each
// opens its own chainHead_v1_follow, which the gateway serves from one
// upstream follow.
//
// Usage: node papi_many.mjs GATEWAY_WS_URL DIRECT_WS_URL CLIENTS
//
// CLIENTS clients (getWsProvider, the ws package's WebSocket) each read the
// finalized block and System.Account(//Alice) there, and watch
// finalizedBlock$. Blocks are made directly on the node (dev_newBlock) and
// every client must see each one finalized. Then a transfer //Alice ->
// //Bob is sent through the first client and watched until finalized;
// every client must see its block finalized and read Bob's balance there.
// Prints one line `ELARA_E2E_RESULT {json}`; papi_many_test.go asserts.

import { createClient } from 'polkadot-api';
import { getWsProvider } from 'polkadot-api/ws';
import { getPolkadotSigner } from 'polkadot-api/signer';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { WebSocket } from 'ws';

const [gatewayURL, directURL, countArg] = process.argv.slice(2);
const CLIENTS = Number(countArg || 50);
const deadlineMs = Number(process.env.ELARA_E2E_SCRIPT_TIMEOUT_MS || 150000);
const STEP_MS = 120000;
const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
const BOB = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
const AMOUNT = 1_000_000_000_000n;

const result = { steps: [], clients: CLIENTS };

function emit(code) {
  process.stdout.write('\nELARA_E2E_RESULT ' + JSON.stringify(result, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n', () => process.exit(code));
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

async function until(what, cond) {
  const end = Date.now() + STEP_MS;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timeout: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main() {
  await cryptoWaitReady();
  const alice = new Keyring({ type: 'sr25519' }).addFromUri('//Alice');
  // Chopsticks' genesis hash is not its header's; polkadot-api needs a block.
  step('new block');
  await devCall('dev_newBlock', [{ count: 1 }]);

  step('connect');
  const clients = [];
  for (let i = 0; i < CLIENTS; i++) {
    const client = createClient(getWsProvider(gatewayURL, { websocketClass: WebSocket }));
    const seen = { finalized: [], errors: [] };
    client.finalizedBlock$.subscribe({
      next: (b) => seen.finalized.push({ number: b.number, hash: b.hash }),
      error: (e) => seen.errors.push(String(e))
    });
    clients.push({ client, seen });
  }
  try {
    step('read storage');
    const reads = await withTimeout(
      Promise.all(
        clients.map(async ({ client }) => {
          const fin = await client.getFinalizedBlock();
          const acc = await client.getUnsafeApi().query.System.Account.getValue(ALICE, { at: fin.hash });
          return { number: fin.number, free: acc.data.free.toString() };
        })
      ),
      STEP_MS,
      'every client reads //Alice'
    );
    result.aliceFree = [...new Set(reads.map((r) => r.free))];

    step('blocks');
    result.made = [];
    for (let i = 0; i < 3; i++) {
      const hash = await devCall('dev_newBlock', [{ count: 1 }]);
      result.made.push(hash);
      await until(`block ${hash} finalized on every client`, () => clients.every(({ seen }) => seen.finalized.some((b) => b.hash === hash)));
    }

    step('transfer');
    const api = clients[0].client.getUnsafeApi();
    const signer = getPolkadotSigner(alice.publicKey, 'Sr25519', (input) => alice.sign(input));
    const tx = api.tx.Balances.transfer_keep_alive({ dest: { type: 'Id', value: BOB }, value: AMOUNT });
    const bobBefore = (await api.query.System.Account.getValue(BOB, { at: 'finalized' })).data.free;
    const outcome = await withTimeout(
      new Promise((resolve, reject) => {
        let timer;
        const sub = tx.signSubmitAndWatch(signer).subscribe({
          next: (ev) => {
            if (ev.type === 'broadcasted' && !timer) {
              const make = () => devCall('dev_newBlock', [{ count: 1 }]).catch(reject);
              make();
              timer = setInterval(make, 3000);
            }
            if (ev.type === 'finalized') {
              clearInterval(timer);
              sub.unsubscribe();
              resolve({ ok: ev.ok, number: ev.block.number, hash: ev.block.hash });
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
    result.transfer = outcome;
    await until('the transfer block finalized on every client', () => clients.every(({ seen }) => seen.finalized.some((b) => b.hash === outcome.hash)));
    result.sawTransfer = clients.filter(({ seen }) => seen.finalized.some((b) => b.hash === outcome.hash)).length;
    const bobs = await withTimeout(
      Promise.all(clients.map(({ client }) => client.getUnsafeApi().query.System.Account.getValue(BOB, { at: outcome.hash }))),
      STEP_MS,
      'every client reads //Bob at the transfer block'
    );
    result.bobDelta = [...new Set(bobs.map((b) => (b.data.free - bobBefore).toString()))];
    result.amount = AMOUNT.toString();

    // Every client's finalized stream: in order, no repeat, no gap.
    result.streamErrors = [];
    clients.forEach(({ seen }, i) => {
      for (let j = 1; j < seen.finalized.length; j++) {
        if (seen.finalized[j].number !== seen.finalized[j - 1].number + 1) {
          result.streamErrors.push(`client ${i}: ${seen.finalized[j - 1].number} then ${seen.finalized[j].number}`);
          break;
        }
      }
      if (seen.errors.length) result.streamErrors.push(`client ${i}: ${seen.errors.join('; ')}`);
    });
    step('done');
    result.ok = true;
  } finally {
    clients.forEach(({ client }) => client.destroy());
  }
}

main().then(
  () => emit(0),
  (e) => {
    result.error = String(e && e.stack ? e.stack : e);
    emit(1);
  }
);
