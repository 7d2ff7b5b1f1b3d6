// A command loop for scripts the Go test drives step by step (see
// pjsSession in e2e/session_test.go): one JSON object per line on stdin,
// {"cmd": NAME, ...args}; each is answered, in order, by exactly one line
//   ELARA_E2E_REPLY {"ok": true, ...result} | {"ok": false, "error": "..."}
// on stdout. {"cmd":"exit"} (or stdin closing) ends the process after the
// "exit" handler, if any, has run. Other output (library logging) may appear
// between replies; the Go side ignores it.

import { createInterface } from 'node:readline';

export function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    })
  ]).finally(() => clearTimeout(t));
}

const jsonSafe = (_k, v) => (typeof v === 'bigint' ? v.toString() : v);

function write(line) {
  return new Promise((resolve) => process.stdout.write(line, resolve));
}

export function serve(handlers) {
  const rl = createInterface({ input: process.stdin });
  let queue = Promise.resolve();
  let exiting = false;
  const finish = async () => {
    if (exiting) return;
    exiting = true;
    try {
      if (handlers.exit) await withTimeout(handlers.exit({}), 10000, 'exit handler');
    } catch (err) {
      // nothing to report to any more
    }
    process.exit(0);
  };
  rl.on('line', (line) => {
    queue = queue.then(async () => {
      if (!line.trim()) return;
      let req;
      let reply;
      try {
        req = JSON.parse(line);
        if (req.cmd === 'exit') {
          await write('\nELARA_E2E_REPLY {"ok":true}\n');
          await finish();
          return;
        }
        const h = handlers[req.cmd];
        if (!h) throw new Error(`unknown command ${req.cmd}`);
        reply = { ok: true, ...((await h(req)) || {}) };
      } catch (err) {
        reply = { ok: false, error: String((err && err.stack) || err) };
      }
      await write('\nELARA_E2E_REPLY ' + JSON.stringify(reply, jsonSafe) + '\n');
    });
  });
  rl.on('close', () => {
    queue.then(finish);
  });
}
