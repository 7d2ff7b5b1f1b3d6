#!/usr/bin/env bash
# Builds Caddy with the Elara plugin and runs the gateway on 127.0.0.1:8080.
#
#   ./run.sh                                  # in front of a local dev chain (Chopsticks, offline)
#   ELARA_UPSTREAM=wss://node.example ./run.sh   # in front of a real node
#
# Then: ws://127.0.0.1:8080/polkadot (WebSocket) or POST http://127.0.0.1:8080/polkadot
set -euo pipefail
cd "$(dirname "$0")"
[[ -x ./caddy ]] || ./xcaddy.sh
export ELARA_CHAIN="${ELARA_CHAIN:-polkadot}"
export ELARA_LISTEN="${ELARA_LISTEN:-127.0.0.1:8080}"
if [[ -z "${ELARA_UPSTREAM:-}" ]]; then
	DEV_PORT="${ELARA_DEV_PORT:-9944}"
	scripts/dev-chain.sh "$DEV_PORT" &
	DEV_PID=$!
	trap 'kill "$DEV_PID" 2>/dev/null || true; wait "$DEV_PID" 2>/dev/null || true' EXIT INT TERM
	for _ in $(seq 1 600); do
		curl -sf -m 2 -H 'Content-Type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"system_chain","params":[]}' "http://127.0.0.1:$DEV_PORT" >/dev/null && break
		kill -0 "$DEV_PID" 2>/dev/null || exit 1
		sleep 0.5
	done
	export ELARA_UPSTREAM="ws://127.0.0.1:$DEV_PORT"
fi
echo "gateway: ws://$ELARA_LISTEN/$ELARA_CHAIN -> $ELARA_UPSTREAM" >&2
./caddy run --config caddyfile_examples/quickstart.Caddyfile --adapter caddyfile
