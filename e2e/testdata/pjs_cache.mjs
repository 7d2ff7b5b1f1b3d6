// The response cache with the real polkadot.js client (@polkadot/api
// 16.5.6). Driven by TestCacheThroughGateway through session.mjs.
//
// Usage: node pjs_cache.mjs GATEWAY_WS_URL DIRECT_WS_URL
//
// One ApiPromise through the gateway (which caches), one directly on the node.
// Commands:
//   start                      connect both
//   compare {at, atNumber}     the same questions on both sides: runtime version,
//                              metadata, headers, blocks, block hashes, storage at
//                              latest and at block `at`, runtime call at `at`, system_*;
//                              raw wire results (metadata as sha256) and decoded ones
//   repeat {at, atNumber, times}  the cacheable gateway calls of compare, `times` times
//   transfer {amount}          //Alice → //Bob through the gateway, blocks made directly
//   setCode {codeFile, signSpec, checks, expectSpec}
//                              sudo(system.setCode) with the code in codeFile, signed
//                              with spec version signSpec (what the running runtime
//                              checks) and sent directly; then waits until the node,
//                              and through the gateway both the polkadot.js API and a
//                              raw state_getRuntimeVersion, report expectSpec
//   headRace {blocks}          make blocks directly; on each new head through the
//                              gateway ask at once for the latest header, block hash
//                              and System.Number (storage without a block hash)
//   exit                       disconnect

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ApiPromise, Keyring, WsProvider } from '@polkadot/api';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { serve, withTimeout } from './session.mjs';

const gatewayURL = process.argv[2];
const directURL = process.argv[3];
const STEP_MS = 20000;

let gw;
let dx;
let alice;
let bob;
const gwRuntimeSeen = []; // specVersions notified through the gateway

const sha256 = (hex) => createHash('sha256').update(Buffer.from(String(hex).replace(/^0x/, ''), 'hex')).digest('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function connect(url) {
  const provider = new WsProvider(url, false, {}, STEP_MS);
  await withTimeout(provider.connect(), STEP_MS, `connect ${url}`);
  const api = await withTimeout(ApiPromise.create({ provider, throwOnConnect: true, noInitWarn: true }), STEP_MS * 2, `ApiPromise.create ${url}`);
  return { api, provider, send: (m, p) => withTimeout(provider.send(m, p), STEP_MS, `${m} ${url}`) };
}

const newBlockDirect = () => dx.send('dev_newBlock', [{ count: 1 }]);

// The raw calls compared and repeated: [name, method, params, digest?].
function rawCalls(at, atNumber) {
  const bobKey = dx.api.query.system.account.key(bob.address);
  const aliceKey = dx.api.query.system.account.key(alice.address);
  const accountPrefix = dx.api.query.system.account.keyPrefix();
  return [
    ['runtimeVersion', 'state_getRuntimeVersion', []],
    ['runtimeVersionAt', 'state_getRuntimeVersion', [at]],
    ['metadata', 'state_getMetadata', [], true],
    ['metadataAt', 'state_getMetadata', [at], true],
    ['header', 'chain_getHeader', []],
    ['headerAt', 'chain_getHeader', [at]],
    ['blockAt', 'chain_getBlock', [at]],
    ['block', 'chain_getBlock', []],
    ['blockHashAt', 'chain_getBlockHash', [atNumber]],
    ['blockHash', 'chain_getBlockHash', []],
    ['finalizedHead', 'chain_getFinalizedHead', []],
    ['bob', 'state_getStorage', [bobKey]],
    ['bobAt', 'state_getStorage', [bobKey, at]],
    ['alice', 'state_getStorage', [aliceKey]],
    ['keysPagedAt', 'state_getKeysPaged', [accountPrefix, 5, accountPrefix, at]],
    ['coreVersionAt', 'state_call', ['Core_version', '0x', at]],
    ['chain', 'system_chain', []],
    ['properties', 'system_properties', []],
    ['rpcMethods', 'rpc_methods', []]
  ];
}

async function rawSide(side, calls) {
  const out = {};
  for (const [name, method, params, digest] of calls) {
    try {
      const v = await side.send(method, params);
      out[name] = digest ? { length: String(v).length, sha256: sha256(v) } : v;
    } catch (err) {
      out[name] = { error: String(err.message || err) };
    }
  }
  return out;
}

async function decodedSide(side, at) {
  const { api } = side;
  const atApi = await api.at(at);
  return {
    bobAccount: (await api.query.system.account(bob.address)).toJSON(),
    bobAccountAt: (await atApi.query.system.account(bob.address)).toJSON(),
    runtimeVersion: (await api.rpc.state.getRuntimeVersion()).toJSON(),
    apiSpecVersion: api.runtimeVersion.specVersion.toNumber(),
    atSpecVersion: atApi.runtimeVersion.specVersion.toNumber(),
    headerNumber: (await api.rpc.chain.getHeader()).number.toNumber(),
    metadataSha: sha256((await api.rpc.state.getMetadata()).toHex())
  };
}

async function gatewayCaughtUp(ms) {
  // The cache follows the node's heads; after a block it may answer about
  // the previous head for a moment. Wait until both agree on the head.
  const start = Date.now();
  for (;;) {
    const [g, d] = await Promise.all([gw.send('chain_getHeader', []), dx.send('chain_getHeader', [])]);
    if (g.number === d.number && g.parentHash === d.parentHash) return Date.now() - start;
    if (Date.now() - start > ms) throw new Error(`gateway's latest header ${g.number} still differs from the node's ${d.number} after ${ms} ms`);
    await sleep(25);
  }
}

function signedWithSpec(api, call, signSpec, nonce) {
  call.sign(alice, {
    blockHash: api.genesisHash,
    genesisHash: api.genesisHash,
    nonce,
    runtimeVersion: { specVersion: signSpec, transactionVersion: api.runtimeVersion.transactionVersion },
    signedExtensions: api.registry.signedExtensions
  });
  return call;
}

serve({
  async start() {
    await cryptoWaitReady();
    const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
    alice = keyring.addFromUri('//Alice');
    bob = keyring.addFromUri('//Bob');
    gw = await connect(gatewayURL);
    dx = await connect(directURL);
    await gw.api.rpc.state.subscribeRuntimeVersion((v) => gwRuntimeSeen.push(v.specVersion.toNumber()));
    return { specVersion: dx.api.runtimeVersion.specVersion.toNumber() };
  },

  async compare({ at, atNumber }) {
    const caughtUpMs = await gatewayCaughtUp(10000);
    const calls = rawCalls(at, atNumber);
    // gateway first: a stale cache answer cannot hide behind a later node read
    const gateway = await rawSide(gw, calls);
    const direct = await rawSide(dx, calls);
    const gatewayDecoded = await decodedSide(gw, at);
    const directDecoded = await decodedSide(dx, at);
    return { caughtUpMs, gateway, direct, gatewayDecoded, directDecoded, bobKey: dx.api.query.system.account.key(bob.address) };
  },

  async repeat({ at, atNumber, times }) {
    const calls = rawCalls(at, atNumber);
    for (let i = 0; i < times; i++) await rawSide(gw, calls);
    return {};
  },

  async transfer({ amount }) {
    const value = BigInt(amount);
    const bobBefore = (await gw.api.query.system.account(bob.address)).data.free.toBigInt();
    const statuses = [];
    const inBlock = await withTimeout(
      new Promise((resolve, reject) => {
        let built = 0;
        let retry;
        let unsubTx = () => {};
        const makeBlock = () => {
          built++;
          newBlockDirect().catch(reject);
        };
        const done = (fn) => {
          clearInterval(retry);
          unsubTx();
          fn();
        };
        gw.api.tx.balances
          .transferKeepAlive(bob.address, value)
          .signAndSend(alice, (res) => {
            const s = res.status;
            statuses.push(s.type);
            if (s.isReady || s.isFuture) {
              makeBlock();
              retry = setInterval(() => built < 4 && makeBlock(), 5000);
            }
            if (res.dispatchError) return done(() => reject(new Error('dispatch error: ' + res.dispatchError.toString())));
            if (s.isInBlock || s.isFinalized) return done(() => resolve((s.isInBlock ? s.asInBlock : s.asFinalized).toHex()));
            if (s.isDropped || s.isInvalid || s.isUsurped) return done(() => reject(new Error('transaction ' + s.type)));
          })
          .then((u) => {
            unsubTx = u;
          }, reject);
      }),
      STEP_MS * 2,
      'transfer in a block'
    );
    // what a dApp reads right after its transaction is in a block, then
    // after the gateway's latest answers caught up with the node
    const bobImmediate = (await gw.api.query.system.account(bob.address)).data.free.toBigInt();
    await gatewayCaughtUp(10000);
    const bobAfter = (await gw.api.query.system.account(bob.address)).data.free.toBigInt();
    return { inBlock, statuses, bobBefore: bobBefore.toString(), bobImmediate: bobImmediate.toString(), bobAfter: bobAfter.toString() };
  },

  async setCode({ codeFile, signSpec, checks, expectSpec }) {
    const code = readFileSync(codeFile, 'utf8').trim();
    const api = dx.api;
    const inner = checks ? api.tx.system.setCode(code) : api.tx.system.setCodeWithoutChecks(code);
    const call = api.tx.sudo.sudoUncheckedWeight(inner, { refTime: 1, proofSize: 0 });
    const nonce = await api.rpc.system.accountNextIndex(alice.address);
    const tx = signedWithSpec(api, call, signSpec, nonce);
    const seenBefore = gwRuntimeSeen.length;
    await dx.send('author_submitExtrinsic', [tx.toHex()]);
    const started = Date.now();
    const blockHash = await withTimeout(newBlockDirect(), STEP_MS * 2, 'dev_newBlock with the setCode extrinsic');
    const direct = await dx.send('state_getRuntimeVersion', []);
    if (direct.specVersion !== expectSpec) {
      const events = await dx.send('state_getStorage', [api.query.system.events.key(), blockHash]);
      throw new Error(`node runtime spec ${direct.specVersion} after the setCode block ${blockHash}, want ${expectSpec} (System.Events raw ${String(events).slice(0, 400)})`);
    }
    const blockMs = Date.now() - started;
    // through the gateway: the raw call, then polkadot.js's own view
    const firstRaw = (await gw.send('state_getRuntimeVersion', [])).specVersion;
    let rawMs = -1;
    for (const t0 = Date.now(); Date.now() - t0 < 10000; await sleep(25)) {
      if ((await gw.send('state_getRuntimeVersion', [])).specVersion === expectSpec) {
        rawMs = Date.now() - started - blockMs;
        break;
      }
    }
    let apiMs = -1;
    for (const t0 = Date.now(); Date.now() - t0 < 15000; await sleep(50)) {
      if (gw.api.runtimeVersion.specVersion.toNumber() === expectSpec && gwRuntimeSeen.slice(seenBefore).includes(expectSpec)) {
        apiMs = Date.now() - started - blockMs;
        break;
      }
    }
    // the direct API re-initialises too; let it settle before comparing
    for (const t0 = Date.now(); Date.now() - t0 < 15000 && dx.api.runtimeVersion.specVersion.toNumber() !== expectSpec; ) await sleep(50);
    return {
      blockHash,
      blockMs,
      firstRawSpec: firstRaw,
      rawMs,
      apiMs,
      gatewayNotified: gwRuntimeSeen.slice(seenBefore),
      gatewayApiSpec: gw.api.runtimeVersion.specVersion.toNumber()
    };
  },

  async headRace({ blocks }) {
    // What a dApp does on a new head: ask about "the latest" at once —
    // chain_getHeader(), chain_getBlockHash() and storage without a block
    // hash (System.Number, which every block changes).
    const numberKey = gw.api.query.system.number.key();
    const out = [];
    let pending = null;
    const unsub = await gw.api.rpc.chain.subscribeNewHeads((h) => {
      const n = h.number.toNumber();
      if (!pending || n !== pending.number) return;
      const p = pending;
      pending = null;
      Promise.all([gw.send('chain_getHeader', []), gw.send('chain_getBlockHash', []), gw.send('state_getStorage', [numberKey])]).then(
        ([hdr, hash, num]) =>
          p.resolve({
            notified: n,
            hash: h.hash.toHex(),
            getHeader: parseInt(hdr.number, 16),
            getBlockHash: hash,
            systemNumber: num ? Buffer.from(num.slice(2), 'hex').readUInt32LE(0) : null
          }),
        p.reject
      );
    });
    try {
      for (let i = 0; i < blocks; i++) {
        const before = (await dx.send('chain_getHeader', [])).number;
        const got = new Promise((resolve, reject) => (pending = { number: parseInt(before, 16) + 1, resolve, reject }));
        await newBlockDirect();
        out.push(await withTimeout(got, STEP_MS, 'new head through the gateway'));
      }
    } finally {
      unsub();
    }
    return { race: out };
  },

  async exit() {
    for (const side of [gw, dx]) if (side) await side.api.disconnect().catch(() => {});
  }
});
