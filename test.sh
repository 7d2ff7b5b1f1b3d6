#!/usr/bin/env bash
# Runs every test: unit, integration (Caddy in-process and built binaries,
# fake nodes, a real Redis) and end-to-end (Chopsticks + polkadot.js).
# Installs what it needs on a fresh Debian machine with Go, Node and npm:
# redis-server from Debian packages and the pinned npm packages.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$PWD"

if ! command -v redis-server >/dev/null 2>&1; then
	echo "== installing redis-server" >&2
	SUDO=""; [[ "$(id -u)" == 0 ]] || SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

# npm ci again whenever the lockfile is newer than the installed tree.
if [[ ! -d e2e/testdata/node_modules || e2e/testdata/package-lock.json -nt e2e/testdata/node_modules ]]; then
	echo "== npm ci (e2e/testdata)" >&2
	(cd e2e/testdata && npm ci --no-audit --no-fund --loglevel=error)
	touch e2e/testdata/node_modules
fi

echo "== building caddy with xcaddy" >&2
./xcaddy.sh >&2

echo "== go vet" >&2
go vet ./...

export ELARA_CADDY_BIN="$ROOT/caddy"
export ELARA_E2E_CHAINSPEC="${ELARA_E2E_CHAINSPEC:-$ROOT/../shared/peer/westend-dev-spec-raw.json}"
# Missing Redis, npm packages or chain spec fail the run instead of skipping.
export ELARA_REQUIRE_REDIS=1
export ELARA_REQUIRE_E2E=1

echo "== go test" >&2
go test -race -count=1 -timeout 20m "$@" ./...
