package handler

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/elara-gateway/elara/app"
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
//		chains            <chain>...
//		allow             <method-pattern>...
//		deny              <method-pattern>...
//		max_batch         <calls>
//		max_request_size  <size>
//		max_subscriptions <subscriptions>
//		ping_interval     <duration>
//		send_queue        <messages>
//		write_timeout     <duration>
//	}
//
// Chains given inline or with `chains` limit the handler to those chains
// of the `elara` app; by default it serves them all. Method patterns may
// hold one `*`. `allow` and `deny` may repeat; their lists add up.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	h.Chains = append(h.Chains, d.RemainingArgs()...)
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "chains":
			h.Chains, err = appendArgs(d, h.Chains)
		case "allow":
			h.Allow, err = appendArgs(d, h.Allow)
		case "deny":
			h.Deny, err = appendArgs(d, h.Deny)
		case "max_batch":
			h.MaxBatch, err = positiveInt(d)
		case "max_request_size":
			h.MaxRequestSize, err = app.SizeArg(d)
		case "max_subscriptions":
			h.MaxSubscriptions, err = positiveInt(d)
		case "ping_interval":
			h.PingInterval, err = durationArg(d)
		case "write_timeout":
			h.WriteTimeout, err = durationArg(d)
		case "send_queue":
			h.SendQueue, err = positiveInt(d)
		default:
			return d.Errf("unrecognized elara_rpc option '%s'", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func appendArgs(d *caddyfile.Dispenser, to []string) ([]string, error) {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, d.ArgErr()
	}
	return append(to, args...), nil
}

func durationArg(d *caddyfile.Dispenser) (caddy.Duration, error) {
	if !d.NextArg() {
		return 0, d.ArgErr()
	}
	dur, err := caddy.ParseDuration(d.Val())
	if err != nil || dur <= 0 {
		return 0, d.Errf("bad duration '%s'", d.Val())
	}
	if d.NextArg() {
		return 0, d.ArgErr()
	}
	return caddy.Duration(dur), nil
}

func positiveInt(d *caddyfile.Dispenser) (int, error) {
	if !d.NextArg() {
		return 0, d.ArgErr()
	}
	n, err := strconv.Atoi(d.Val())
	if err != nil || n < 1 {
		return 0, d.Errf("expected a positive number, got '%s'", d.Val())
	}
	if d.NextArg() {
		return 0, d.ArgErr()
	}
	return n, nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
