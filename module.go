// Package elara registers the Elara gateway with Caddy: the `elara` app
// (global option `elara`), which owns chains and upstream connections, and
// the `elara_rpc` HTTP handler, which serves JSON-RPC clients, and the
// `elara_dashboard` HTTP handler, which serves a dashboard in the browser.
package elara

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/dashboard"
	"github.com/elara-gateway/elara/handler"
)

func init() {
	// The modules register themselves in their packages' init.
	httpcaddyfile.RegisterGlobalOption("elara", app.ParseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("elara_rpc", handler.ParseCaddyfile)
	httpcaddyfile.RegisterHandlerDirective("elara_dashboard", dashboard.ParseCaddyfile)
	// Ordered first, so it lands before elara_rpc, which answers every
	// path it is given (an order may only name a standard directive).
	httpcaddyfile.RegisterDirectiveOrder("elara_dashboard", httpcaddyfile.Before, "reverse_proxy")
	httpcaddyfile.RegisterDirectiveOrder("elara_rpc", httpcaddyfile.Before, "reverse_proxy")
}
