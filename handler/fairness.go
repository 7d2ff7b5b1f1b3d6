package handler

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/limits"
	"github.com/elara-gateway/elara/suber"
)

// DefaultMaxCallsInFlight is the default max_calls_in_flight: calls of
// one connection (or HTTP request) at the nodes at once.
const DefaultMaxCallsInFlight = 32

// withFairClient returns r with the client its upstream calls are
// scheduled for: the chain's nodes serve client IPs in turn, then each
// IP's connections, and a connection has at most max_calls_in_flight
// calls at the nodes; its other calls wait their turn. An HTTP request
// is a client of its own; a WebSocket keeps this one for its life.
func (h *Handler) withFairClient(r *http.Request, rt route) *http.Request {
	c := &suber.Client{IP: ipLimitKey(hostOnly(rt.clientIP)), MaxInFlight: h.MaxCallsInFlight}
	return r.WithContext(suber.WithClient(r.Context(), c))
}

// sessionContext is the base context of a WebSocket session's calls: it
// keeps the request's fair-scheduling client but not its cancellation.
func sessionContext(r *http.Request) context.Context {
	ctx := context.Background()
	if c := suber.ClientFrom(r.Context()); c != nil {
		ctx = suber.WithClient(ctx, c)
	}
	return ctx
}

// hostOnly strips a port from a client address.
func hostOnly(ip string) string {
	if host, _, err := net.SplitHostPort(ip); err == nil {
		return host
	}
	return ip
}

// tooManyPending is the error of a call refused by the chain's bound on
// pending upstream calls: nothing was sent to a node.
func tooManyPending(rt route) *jsonrpc.Error {
	n := rt.chain.Bounds().PendingCalls
	return jsonrpc.NewError(CodeOverLimit, "Over the limit: this chain already has "+strconv.Itoa(n)+
		" calls pending upstream (max_pending_calls); retry shortly")
}

// fairDefaults sets the defaults of the fairness and per-IP options.
func (h *Handler) fairDefaults() {
	if h.MaxCallsInFlight == 0 {
		h.MaxCallsInFlight = DefaultMaxCallsInFlight
	}
	if h.MaxConnectionsPerIP == 0 {
		h.MaxConnectionsPerIP = DefaultMaxConnectionsPerIP
	}
	if h.MaxSubscriptionsPerIP == 0 {
		h.MaxSubscriptionsPerIP = DefaultMaxSubscriptionsPerIP
	}
}

// validateFair refuses negative bounds, which a JSON config can hold (0
// is the default there; the Caddyfile refuses both).
func (h *Handler) validateFair() error {
	for _, b := range []struct {
		name string
		v    int
	}{
		{"max_calls_in_flight", h.MaxCallsInFlight},
		{"max_connections_per_ip", h.MaxConnectionsPerIP},
		{"max_subscriptions_per_ip", h.MaxSubscriptionsPerIP},
	} {
		if b.v < 0 {
			return fmt.Errorf("%s must be at least 1 (%d)", b.name, b.v)
		}
	}
	return nil
}

// refuseOverChain refuses a subscribe while the chain holds as many
// upstream subscriptions as max_shared_subscriptions allows; nothing is
// sent to a node. Subscribes that would join a shared subscription are
// refused too: which ones would is the matcher's to know, and at the
// bound a clear refusal is better than a node's.
func (s *wsSession) refuseOverChain(req *jsonrpc.Request) *answer {
	c := s.route().chain
	limit := c.Bounds().SharedSubscriptions
	if n := c.Matcher.SharedCount(); limit > 0 && n >= limit {
		ex := &limits.Exceeded{Limit: "max_shared_subscriptions", Scope: "chain",
			Value: float64(limit), Used: int64(n), RetryAfter: time.Second}
		a := refusal(req, http.StatusTooManyRequests, ex.RetryAfterSeconds(), overLimitError(ex))
		return &a
	}
	return nil
}
