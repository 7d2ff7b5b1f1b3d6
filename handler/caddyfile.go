package handler

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/internal/caddyarg"
)

// ParseCaddyfile builds the handler from the `elara_rpc` directive.
func ParseCaddyfile(helper httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h := new(Handler)
	err := h.UnmarshalCaddyfile(helper.Dispenser)
	return h, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	elara_rpc [<chain>...] {
//		chains            <chain>...           # limit to some chains (default: all)
//		allow             <method-pattern>...  # allow-only mode: serve just these
//		deny              <method-pattern>...  # never serve these (always wins)
//		max_batch         <calls>              # calls per batch (default 100)
//		max_request_size  <size>               # HTTP body / WebSocket message (default 8MiB)
//		max_subscriptions <subscriptions>      # per WebSocket connection (default 1024)
//		ping_interval     <duration>           # client keepalive (default 30s)
//		send_queue        <messages>           # waiting per client before it is dropped (default 4096)
//		send_queue_bytes  <size>               # bytes waiting per client (default 16MiB, at least 64KiB)
//		write_timeout     <duration>           # a client accepting nothing this long is dropped (default 10s)
//		origins           <origin>...          # browser origins that may call (default: every origin)
//		ws_compression    [on|off]             # permessage-deflate when offered (default on)
//		max_calls_in_flight      <calls>         # per connection at the nodes; more wait (default 32)
//		max_connections_per_ip   <connections>   # WebSockets per client IP, IPv6 by /64 (default 1024)
//		max_subscriptions_per_ip <subscriptions> # held by one client IP's WebSockets (default 2048)
//	}
//
// Chains given inline or with `chains` limit the handler to those chains
// of the `elara` app; by default it serves them all. Method patterns may
// hold one `*`. `allow` and `deny` may repeat; their lists add up.
// `origins` lists the browser origins (`scheme://host[:port]`) that may
// call the handler; it may repeat and adds up. Without it, or with
// `origins *`, every origin may.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	for d.NextArg() {
		if err := checkChainName(d); err != nil {
			return err
		}
		h.Chains = append(h.Chains, d.Val())
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "chains":
			h.Chains, err = appendChecked(d, h.Chains, checkChainName)
		case "allow":
			h.Allow, err = appendChecked(d, h.Allow, checkPattern)
		case "deny":
			h.Deny, err = appendChecked(d, h.Deny, checkPattern)
		case "max_batch":
			h.MaxBatch, err = caddyarg.Count(d)
		case "max_request_size":
			h.MaxRequestSize, err = caddyarg.Size(d)
		case "max_subscriptions":
			h.MaxSubscriptions, err = caddyarg.Count(d)
		case "ping_interval":
			h.PingInterval, err = caddyarg.Duration(d)
		case "write_timeout":
			h.WriteTimeout, err = caddyarg.Duration(d)
		case "send_queue":
			h.SendQueue, err = caddyarg.Count(d)
		case "send_queue_bytes":
			h.SendQueueBytes, err = caddyarg.Size(d)
		case "origins":
			if h.Origins, err = appendChecked(d, h.Origins, checkOrigin); err == nil {
				// `*` mixed with origins is wrong on the line that mixes them.
				if _, cerr := NewCORS(h.Origins); cerr != nil {
					err = d.WrapErr(cerr)
				}
			}
		case "max_calls_in_flight":
			h.MaxCallsInFlight, err = caddyarg.Count(d)
		case "max_connections_per_ip":
			h.MaxConnectionsPerIP, err = caddyarg.Count(d)
		case "max_subscriptions_per_ip":
			h.MaxSubscriptionsPerIP, err = caddyarg.Count(d)
		case "ws_compression":
			var on bool
			on, err = caddyarg.OnOff(d)
			h.WSCompression = &on
		default:
			return d.Errf("unrecognized elara_rpc option '%s'", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// appendChecked appends the remaining arguments, at least one, checking
// each where the Caddyfile can say on which line it is.
func appendChecked(d *caddyfile.Dispenser, to []string, check func(*caddyfile.Dispenser) error) ([]string, error) {
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	for {
		if err := check(d); err != nil {
			return nil, err
		}
		to = append(to, d.Val())
		if !d.NextArg() {
			return to, nil
		}
	}
}

// checkPattern checks a method pattern now; Provision checks JSON configs.
func checkPattern(d *caddyfile.Dispenser) error {
	if _, err := compilePattern(d.Val()); err != nil {
		return d.WrapErr(err)
	}
	return nil
}

// checkOrigin checks an origin now; Provision checks JSON configs.
func checkOrigin(d *caddyfile.Dispenser) error {
	if d.Val() == "*" {
		return nil
	}
	if _, err := NormalizeOrigin(d.Val()); err != nil {
		return d.WrapErr(err)
	}
	return nil
}

// checkChainName checks the form of a chain name; whether the elara app
// configures it is known only at Validate.
func checkChainName(d *caddyfile.Dispenser) error {
	if !app.ValidChainName(d.Val()) {
		return d.Errf("chain %q: names are letters, digits, '-' and '_', at most 64", d.Val())
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
