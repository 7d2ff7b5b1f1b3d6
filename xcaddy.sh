#!/usr/bin/env bash
# Builds ./caddy: Caddy with the Elara plugin from this checkout.
#   ./xcaddy.sh            # build ./caddy
#   OUTPUT=/path ./xcaddy.sh
# xcaddy is pinned in tools/go.mod and run through `go tool`, which fetches
# it from the Go module proxy the first time.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$PWD"
CADDY_VERSION="${CADDY_VERSION:-v2.11.9}"
OUTPUT="${OUTPUT:-$PWD/caddy}"
MODULE="$(go list -m)"
# The plugin's module path is not published; a version on the replacement
# keeps xcaddy from asking the module proxy for it.
(cd tools && go tool xcaddy build "$CADDY_VERSION" \
	--output "$OUTPUT" \
	--with "$MODULE@v0.0.0=$ROOT")
# Read the whole list before matching: with pipefail, grep -q leaving
# early could fail the pipeline on list-modules' broken pipe.
MODULES="$("$OUTPUT" list-modules)"
grep -qx 'http.handlers.elara_rpc' <<<"$MODULES" || { echo "built caddy lacks elara_rpc" >&2; exit 1; }
echo "built $OUTPUT"
