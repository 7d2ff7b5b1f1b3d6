#!/usr/bin/env bash
# Builds Caddy with the Elara plugin and runs the gateway on 127.0.0.1:8080
# (ELARA_BIND and ELARA_PORT change the address).
#
#   ./run.sh                                     # in front of a local dev chain (Chopsticks, offline)
#   ELARA_UPSTREAM=wss://node.example ./run.sh   # in front of a real node
#
# With the dev chain the gateway serves it as "westend-dev"; in front of a
# real node as $ELARA_CHAIN (default "polkadot"). The URLs to use are printed
# once the gateway answers. SIGTERM, SIGINT (Ctrl-C) or any exit stops every
# process this script started.
set -euo pipefail
cd "$(dirname "$0")"
# ELARA_CADDY_BIN runs another build of the gateway (the tests use it).
# ./caddy is rebuilt when it is missing or older than a source file, so a
# run after `git pull` or an edit runs what the checkout holds.
CADDY="${ELARA_CADDY_BIN:-./caddy}"
if [[ -z "${ELARA_CADDY_BIN:-}" ]]; then
	if [[ ! -x ./caddy || -n "$(find . -path ./e2e/testdata/node_modules -prune -o \( -name '*.go' -o -name go.mod -o -name go.sum \) -newer ./caddy -print -quit)" ]]; then
		./xcaddy.sh
	fi
fi

export ELARA_BIND="${ELARA_BIND:-127.0.0.1}" ELARA_PORT="${ELARA_PORT:-8080}"
# Where this machine's clients reach the gateway.
HOST="$ELARA_BIND"; [[ "$HOST" == 0.0.0.0 || "$HOST" == "::" ]] && HOST=127.0.0.1
[[ "$HOST" == *:* ]] && HOST="[$HOST]"
GATEWAY="$HOST:$ELARA_PORT"
PIDS=()
stop_children() {
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap 'stop_children' EXIT
trap 'stop_children; exit 143' TERM
trap 'stop_children; exit 130' INT

rpc_answers() { # URL: true once a JSON-RPC call there gets a result
	local reply
	reply="$(curl -sf -m 2 -H 'Content-Type: application/json' \
		-d '{"jsonrpc":"2.0","id":1,"method":"system_chain","params":[]}' "$1" 2>/dev/null)" || return 1
	[[ "$reply" == *'"result"'* ]]
}

if [[ -z "${ELARA_UPSTREAM:-}" ]]; then
	export ELARA_CHAIN="${ELARA_CHAIN:-westend-dev}"
	DEV_PORT="${ELARA_DEV_PORT:-9944}"
	scripts/dev-chain.sh "$DEV_PORT" &
	PIDS+=("$!")
	for _ in $(seq 1 600); do
		rpc_answers "http://127.0.0.1:$DEV_PORT" && break
		kill -0 "${PIDS[0]}" 2>/dev/null || { echo "run.sh: the dev chain did not start (see its output above)" >&2; exit 1; }
		sleep 0.5
	done
	export ELARA_UPSTREAM="ws://127.0.0.1:$DEV_PORT"
else
	export ELARA_CHAIN="${ELARA_CHAIN:-polkadot}"
fi

"$CADDY" run --config caddyfile_examples/quickstart.Caddyfile --adapter caddyfile &
CADDY_PID=$!
PIDS+=("$CADDY_PID")
for _ in $(seq 1 120); do
	rpc_answers "http://$GATEWAY/$ELARA_CHAIN" && break
	kill -0 "$CADDY_PID" 2>/dev/null || { echo "run.sh: caddy exited (see its log above)" >&2; exit 1; }
	sleep 0.5
done
cat >&2 <<MSG

Elara is ready: chain "$ELARA_CHAIN" in front of $ELARA_UPSTREAM
  HTTP:      http://$GATEWAY/$ELARA_CHAIN
  WebSocket: ws://$GATEWAY/$ELARA_CHAIN
  Metrics:   http://$GATEWAY/metrics
Stop with Ctrl-C.

MSG
wait "$CADDY_PID"
