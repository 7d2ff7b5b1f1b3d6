#!/usr/bin/env bash
# Starts a local Substrate dev chain for trying the gateway offline:
# Chopsticks (a real Substrate runtime, from npm) on a raw chain spec.
#
#   scripts/dev-chain.sh PORT      # runs in the foreground until killed
#
# The spec comes from ELARA_E2E_CHAINSPEC (default: testdata/westend-dev-spec-raw.json,
# shipped with the repository; see testdata/NOTICE).
# A block is made every ELARA_DEV_BLOCK_TIME seconds (default 6) so heads move.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PORT="${1:-9944}"
SPEC="${ELARA_E2E_CHAINSPEC:-$ROOT/testdata/westend-dev-spec-raw.json}"
BLOCK_TIME="${ELARA_DEV_BLOCK_TIME:-6}"
NPM_DIR="$ROOT/e2e/testdata"
[[ -f "$SPEC" ]] || { echo "chain spec not found: $SPEC (set ELARA_E2E_CHAINSPEC)" >&2; exit 2; }
if [[ ! -f "$NPM_DIR/node_modules/@acala-network/chopsticks/chopsticks.cjs" ]]; then
	echo "installing chopsticks (npm ci, about 2 minutes the first time)..." >&2
	(cd "$NPM_DIR" && npm ci --no-audit --no-fund --loglevel=error) >&2
fi
WORK="$(mktemp -d)"
NORM="$WORK/spec.json"
# Chopsticks requires "properties" to be an object; dev specs often have null.
SPEC="$SPEC" NORM="$NORM" node -e '
	const fs = require("fs");
	const s = JSON.parse(fs.readFileSync(process.env.SPEC, "utf8"));
	if (!s.properties || typeof s.properties !== "object")
		s.properties = { ss58Format: 42, tokenDecimals: 12, tokenSymbol: "UNIT" };
	fs.writeFileSync(process.env.NORM, JSON.stringify(s));'
node "$NPM_DIR/node_modules/@acala-network/chopsticks/chopsticks.cjs" \
	--genesis "$NORM" --host 127.0.0.1 --port "$PORT" --build-block-mode Instant > "$WORK/chopsticks.log" 2>&1 &
PID=$!
# The sleeps below run in the background and are waited for, so that a
# signal is handled at once instead of after the current sleep.
trap 'kill $(jobs -p) 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
for _ in $(seq 1 240); do
	kill -0 "$PID" 2>/dev/null || { cat "$WORK/chopsticks.log" >&2; exit 1; }
	if curl -sf -m 2 -H 'Content-Type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"system_chain","params":[]}' "http://127.0.0.1:$PORT" >/dev/null; then
		break
	fi
	sleep 0.5 & wait $!
done
echo "dev chain (chopsticks pid $PID) on ws://127.0.0.1:$PORT, a block every ${BLOCK_TIME}s" >&2
while kill -0 "$PID" 2>/dev/null; do
	sleep "$BLOCK_TIME" & wait $!
	curl -sf -m 5 -H 'Content-Type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"dev_newBlock","params":[]}' "http://127.0.0.1:$PORT" >/dev/null || true
done
