// Command caddy is Caddy with the Elara plugin, for tests and local runs.
// Release builds use xcaddy.sh, which builds the same thing.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/elara-gateway/elara"
)

func main() {
	caddycmd.Main()
}
