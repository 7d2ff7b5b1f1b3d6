// End-to-end check with the real polkadot.js client (@polkadot/api 16.5.6).
//
// Usage: node pjs_compare.mjs GATEWAY_WS_URL DIRECT_WS_URL [GATEWAY_HTTP_URL]
//   (or env ELARA_E2E_GATEWAY_URL, ELARA_E2E_DIRECT_URL, ELARA_E2E_GATEWAY_HTTP_URL)
//
// Connects one ApiPromise through the gateway and one directly to the node
// (Chopsticks), asks both the same questions, subscribes to new heads through
// the gateway while blocks are made directly on the node (dev_newBlock, which
// the gateway denies), and sends a signed transfer from //Alice to //Bob
// through the gateway. Prints exactly one line
//   ELARA_E2E_RESULT {json}
// on stdout (other library logging may appear around it). The Go test asserts
// on that object; this script only collects facts. Exit status 0 when the
// script ran to the end, 1 on an exception or the overall deadline.

import { createHash } from 'node:crypto';
import { ApiPromise, HttpProvider, Keyring, WsProvider } from '@polkadot/api';
import { cryptoWaitReady } from '@polkadot/util-crypto';

const gatewayURL = process.argv[2] || process.env.ELARA_E2E_GATEWAY_URL;
const directURL = process.argv[3] || process.env.ELARA_E2E_DIRECT_URL;
const gatewayHTTP = process.argv[4] || process.env.ELARA_E2E_GATEWAY_HTTP_URL || '';
const deadlineMs = Number(process.env.ELARA_E2E_SCRIPT_TIMEOUT_MS || 90000);
const STEP_MS = 20000;

const result = { gatewayURL, directURL, steps: [] };

function emit(code) {
  process.stdout.write('\nELARA_E2E_RESULT ' + JSON.stringify(result) + '\n', () => process.exit(code));
}

if (!gatewayURL || !directURL) {
  result.error = 'usage: node pjs_compare.mjs GATEWAY_WS_URL DIRECT_WS_URL [GATEWAY_HTTP_URL]';
  emit(2);
}

const overall = setTimeout(() => {
  result.error = `overall deadline of ${deadlineMs} ms reached (last step: ${result.steps.at(-1) || 'none'})`;
  emit(1);
}, deadlineMs);

function step(name) {
  result.steps.push(name);
}

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    })
  ]).finally(() => clearTimeout(t));
}

const sha256 = (hex) => createHash('sha256').update(Buffer.from(hex.replace(/^0x/, ''), 'hex')).digest('hex');

async function connect(url) {
  // autoConnectMs=false: no endless reconnect loop; we connect once and fail fast.
  const provider = new WsProvider(url, false, {}, STEP_MS);
  await withTimeout(provider.connect(), STEP_MS, `connect ${url}`);
  const api = await withTimeout(
    ApiPromise.create({ provider, throwOnConnect: true, noInitWarn: true }),
    STEP_MS * 2,
    `ApiPromise.create ${url}`
  );
  return { api, provider };
}

async function main() {
  await cryptoWaitReady();

  step('connect');
  const gw = await connect(gatewayURL);
  const dx = await connect(directURL);
  const newBlockDirect = async (count = 1) =>
    withTimeout(dx.provider.send('dev_newBlock', [{ count }]), STEP_MS, 'dev_newBlock (direct)');

  // --- static facts, gateway vs direct -------------------------------------
  step('chain');
  result.chain = {
    gateway: (await gw.api.rpc.system.chain()).toString(),
    direct: (await dx.api.rpc.system.chain()).toString()
  };
  result.genesisHash = { gateway: gw.api.genesisHash.toHex(), direct: dx.api.genesisHash.toHex() };

  step('runtimeVersion');
  result.runtimeVersion = {
    gateway: (await gw.api.rpc.state.getRuntimeVersion()).toJSON(),
    direct: (await dx.api.rpc.state.getRuntimeVersion()).toJSON()
  };

  step('metadata');
  // Raw wire bytes (provider.send returns the JSON result untouched) and the
  // decoded form (api.rpc.state.getMetadata) re-encoded to hex.
  const rawGw = await withTimeout(gw.provider.send('state_getMetadata', []), STEP_MS, 'state_getMetadata (gateway)');
  const rawDx = await withTimeout(dx.provider.send('state_getMetadata', []), STEP_MS, 'state_getMetadata (direct)');
  const decGw = (await gw.api.rpc.state.getMetadata()).toHex();
  result.metadata = {
    gateway: { length: rawGw.length, sha256: sha256(rawGw) },
    direct: { length: rawDx.length, sha256: sha256(rawDx) },
    gatewayDecoded: { length: decGw.length, sha256: sha256(decGw) },
    gatewayVersion: (await gw.api.rpc.state.getMetadata()).version
  };

  if (gatewayHTTP) {
    step('http');
    const http = new HttpProvider(gatewayHTTP);
    result.httpChain = await withTimeout(http.send('system_chain', []), STEP_MS, 'system_chain over HTTP');
    result.httpHeaderNumber = Number((await withTimeout(http.send('chain_getHeader', []), STEP_MS, 'chain_getHeader over HTTP')).number);
  }

  const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
  const alice = keyring.addFromUri('//Alice');
  const bob = keyring.addFromUri('//Bob');

  step('storage');
  result.aliceAccount = {
    address: alice.address,
    gateway: (await gw.api.query.system.account(alice.address)).toJSON(),
    direct: (await dx.api.query.system.account(alice.address)).toJSON()
  };

  // --- subscription through the gateway, blocks made directly -------------
  step('subscription');
  const seen = [];
  let wake = () => {};
  const finalized = [];
  const unsub = await gw.api.rpc.chain.subscribeNewHeads((header) => {
    seen.push({ number: header.number.toNumber(), hash: header.hash.toHex() });
    wake();
  });
  const unsubFinal = await gw.api.rpc.chain.subscribeFinalizedHeads((header) => {
    finalized.push({ number: header.number.toNumber(), hash: header.hash.toHex() });
    wake();
  });
  const waitSeen = (pred, what) =>
    withTimeout(
      new Promise((resolve) => {
        const check = () => (pred() ? resolve() : (wake = check));
        check();
      }),
      STEP_MS,
      what
    );
  await waitSeen(() => seen.length >= 1, 'first new head through the gateway');
  const startNumber = seen[seen.length - 1].number;
  const made = [];
  for (let i = 0; i < 3; i++) {
    const hash = await newBlockDirect(1);
    const hdr = await dx.api.rpc.chain.getHeader(hash);
    made.push({ number: hdr.number.toNumber(), hash: hdr.hash.toHex() });
    await waitSeen(() => seen.some((s) => s.hash === made[i].hash), `new head #${made[i].number} through the gateway`);
  }
  await waitSeen(() => finalized.some((s) => s.hash === made[2].hash), `finalized head #${made[2].number} through the gateway`);
  unsub();
  unsubFinal();
  result.subscription = { startNumber, made, seen, finalized };

  // --- signed transfer through the gateway ---------------------------------
  step('transfer');
  const amount = 1_234_567_890_000n;
  const bobBefore = (await gw.api.query.system.account(bob.address)).data.free.toBigInt();
  // storage subscription (state_subscribeStorage) through the gateway
  const bobSeen = [];
  const unsubBob = await gw.api.query.system.account(bob.address, (acc) => {
    bobSeen.push(acc.data.free.toBigInt());
    wake();
  });
  const statuses = [];
  // Signed here, submitted and watched through the gateway with the RPC
  // call itself: signAndSend's status stream may skip InBlock when
  // Finalized follows at once (it fetches events per status with
  // switchMap), and the test is about what the gateway delivers.
  const signed = await gw.api.tx.balances.transferKeepAlive(bob.address, amount).signAsync(alice);
  const watched = await withTimeout(
    new Promise((resolve, reject) => {
      let built = 0;
      let retry;
      let unsubTx = () => {};
      const makeBlock = () => {
        built++;
        newBlockDirect(1).catch(reject);
      };
      gw.api.rpc.author
        .submitAndWatchExtrinsic(signed, (s) => {
          statuses.push(s.type);
          if ((s.isReady || s.isFuture) && !retry) {
            // Manual block mode: make the block that includes it, directly.
            makeBlock();
            retry = setInterval(() => built < 4 && makeBlock(), 5000);
          }
          if (s.isInBlock) {
            clearInterval(retry);
            unsubTx();
            resolve(s.asInBlock.toHex());
          }
          if (s.isFinalized || s.isDropped || s.isInvalid || s.isUsurped) {
            clearInterval(retry);
            unsubTx();
            reject(new Error('transaction ' + s.type + ' before InBlock'));
          }
        })
        .then((u) => {
          unsubTx = u;
        }, reject);
    }),
    STEP_MS * 2,
    'transfer InBlock'
  );
  // Its events, read through the gateway at the block that included it.
  const inBlock = await gw.api.rpc.chain.getBlock(watched);
  const index = inBlock.block.extrinsics.findIndex((x) => x.hash.toHex() === signed.hash.toHex());
  const records = await (await gw.api.at(watched)).query.system.events();
  const events = records
    .filter(({ phase }) => phase.isApplyExtrinsic && phase.asApplyExtrinsic.toNumber() === index)
    .map(({ event }) => `${event.section}.${event.method}`);
  const transfer = { inBlock: watched, events, txHash: signed.hash.toHex(), index };
  const bobAfter = (await gw.api.query.system.account(bob.address)).data.free.toBigInt();
  await waitSeen(() => bobSeen.includes(bobAfter), "Bob's new balance via the storage subscription");
  unsubBob();
  const bobAfterDirect = (await dx.api.query.system.account(bob.address)).data.free.toBigInt();
  result.transfer = {
    ...transfer,
    statuses,
    amount: amount.toString(),
    bobBefore: bobBefore.toString(),
    bobAfter: bobAfter.toString(),
    bobAfterDirect: bobAfterDirect.toString(),
    bobSubscription: bobSeen.map(String),
    delta: (bobAfter - bobBefore).toString()
  };

  step('done');
  await gw.api.disconnect();
  await dx.api.disconnect();
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
