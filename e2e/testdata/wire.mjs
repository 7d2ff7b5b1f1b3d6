// Wire-level checks with the `ws` library, the WebSocket client polkadot.js
// uses under Node.js. Prints one `ELARA_E2E_RESULT {json}` line.
//
//   node wire.mjs oversize <ws url> <bytes> <deflate 0|1>
//     sends one text message of <bytes> bytes and reports how the
//     connection closed: {code, reason, extensions}.
//   node wire.mjs metadata <ws url> <deflate 0|1>
//     calls state_getMetadata and reports {extensions, length, sha256}.
import { createHash } from 'node:crypto';
import WebSocket from 'ws';

const [cmd, url, a, b] = process.argv.slice(2);
const done = (r) => {
  console.log('ELARA_E2E_RESULT ' + JSON.stringify(r));
  process.exit(0);
};
setTimeout(() => done({ error: 'timeout' }), 20000);

if (cmd === 'oversize') {
  const size = Number(a);
  const ws = new WebSocket(url, { perMessageDeflate: b === '1' });
  const prefix = '{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic","params":["0x';
  ws.on('open', () => ws.send(prefix + '0'.repeat(size - prefix.length - 3) + '"]}'));
  ws.on('error', () => {}); // the close event tells the outcome
  ws.on('close', (code, reason) => done({ code, reason: reason.toString(), extensions: ws.extensions }));
} else if (cmd === 'metadata') {
  const ws = new WebSocket(url, { perMessageDeflate: a === '1' });
  ws.on('open', () => ws.send('{"jsonrpc":"2.0","id":1,"method":"state_getMetadata","params":[]}'));
  ws.on('message', (data) => {
    const r = JSON.parse(data.toString());
    done({
      extensions: ws.extensions,
      length: r.result ? r.result.length : 0,
      sha256: r.result ? createHash('sha256').update(r.result).digest('hex') : '',
      error: r.error ? JSON.stringify(r.error) : undefined,
    });
  });
  ws.on('error', (e) => done({ error: e.message }));
} else {
  done({ error: 'unknown command ' + cmd });
}
