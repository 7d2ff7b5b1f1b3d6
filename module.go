// Package elara registers the Elara gateway with Caddy: the `elara` app
// (global option `elara`), which owns chains and upstream connections, and
// the `elara_rpc` HTTP handler, which serves JSON-RPC clients.
package elara

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/handler"
)

func init() {
	// The modules register themselves in their packages' init.
	httpcaddyfile.RegisterGlobalOption("elara", app.ParseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("elara_rpc", handler.ParseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("elara_rpc", httpcaddyfile.Before, "reverse_proxy")
}
