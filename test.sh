#!/usr/bin/env bash
# Runs every test: unit, integration (Caddy in-process and built binaries,
# fake nodes, a real Redis), end-to-end (Chopsticks + polkadot.js and
# polkadot-api) and in a real browser (headless Chromium).
# Installs what it needs on a fresh Debian machine with Go, Node and npm:
# redis-server and chromium from Debian packages, the pinned npm packages.
# Needs nothing outside the repository.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$PWD"

# Debian packages the tests need: Redis for the shared-store tests, Chromium
# for the browser tests.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if ((${#missing[@]})); then
	echo "== installing ${missing[*]}" >&2
	SUDO=""; [[ "$(id -u)" == 0 ]] || SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
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
export ELARA_E2E_CHAINSPEC="${ELARA_E2E_CHAINSPEC:-$ROOT/testdata/westend-dev-spec-raw.json}"
# Missing Redis, Chromium, npm packages or chain spec fail the run instead of skipping.
export ELARA_REQUIRE_REDIS=1
export ELARA_REQUIRE_E2E=1
export ELARA_REQUIRE_BROWSER=1

echo "== go test" >&2
go test -race -count=1 -timeout 20m "$@" ./...

# The race detector inflates goroutine stacks, so the memory bound per
# WebSocket client is checked in a build without it.
echo "== go test (memory per WebSocket client, without -race)" >&2
go test -count=1 ./handler -run '^TestMemoryPerIdleSubscribedClient$'
