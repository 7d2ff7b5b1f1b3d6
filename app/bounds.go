package app

import (
	"fmt"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/elara-gateway/elara/internal/caddyarg"
	"github.com/elara-gateway/elara/suber"
)

// Defaults of a chain's total bounds (ChainBounds).
const (
	// DefaultMaxUpstreamCalls keeps a node's own queue short, so that
	// the gateway's fair turn-taking, not the node's arrival order,
	// decides who waits.
	DefaultMaxUpstreamCalls = 128
	DefaultMaxPendingCalls  = 8192
	// DefaultMaxSharedSubscriptions is what a Substrate node accepts by
	// default on the default pool: 1024 per connection, 4 connections.
	DefaultMaxSharedSubscriptions = 4096
)

// ChainBounds are the totals one chain's clients may use together, as in
// force for the running config.
type ChainBounds struct {
	// UpstreamCalls is the most client calls at the chain's nodes at once;
	// more wait and are admitted in turn per client IP and connection.
	UpstreamCalls int
	// PendingCalls is the most client calls waiting for or at the nodes
	// at once; a call over it is refused (-32029) and reaches no node.
	PendingCalls int
	// SharedSubscriptions is the most upstream subscriptions the chain
	// holds for its clients; a new subscribe over it is refused (-32029).
	SharedSubscriptions int
}

// Bounds returns the chain's bounds in the running config.
func (c *Chain) Bounds() ChainBounds {
	if b := c.bounds.Load(); b != nil {
		return *b
	}
	return ChainBounds{DefaultMaxUpstreamCalls, DefaultMaxPendingCalls, DefaultMaxSharedSubscriptions}
}

// bounds are cc's bounds, defaults applied.
func (cc *ChainConfig) bounds() ChainBounds {
	b := ChainBounds{UpstreamCalls: cc.MaxUpstreamCalls, PendingCalls: cc.MaxPendingCalls,
		SharedSubscriptions: cc.MaxSharedSubscriptions}
	if b.UpstreamCalls == 0 {
		b.UpstreamCalls = DefaultMaxUpstreamCalls
	}
	if b.PendingCalls == 0 {
		b.PendingCalls = DefaultMaxPendingCalls
	}
	if b.SharedSubscriptions == 0 {
		b.SharedSubscriptions = DefaultMaxSharedSubscriptions
	}
	return b
}

// setBounds applies bounds to a chain, which may be kept from an earlier
// config: the config in force decides (chain_apply.go).
func (c *Chain) setBounds(b ChainBounds) {
	c.bounds.Store(&b)
	c.Upstream.Scheduler().SetLimits(suber.SchedulerLimits{InFlight: b.UpstreamCalls, Pending: b.PendingCalls})
}

// checkBounds refuses negative bounds in a JSON config (0 is the default).
func (cc *ChainConfig) checkBounds() error {
	if cc.MaxUpstreamCalls < 0 || cc.MaxPendingCalls < 0 || cc.MaxSharedSubscriptions < 0 {
		return fmt.Errorf("max_upstream_calls, max_pending_calls and max_shared_subscriptions must be positive")
	}
	if cc.MaxPendingCalls > 0 && cc.MaxPendingCalls < cc.MaxUpstreamCalls {
		return fmt.Errorf("max_pending_calls (%d) must be at least max_upstream_calls (%d)", cc.MaxPendingCalls, cc.MaxUpstreamCalls)
	}
	return nil
}

// unmarshalBound reads a chain bound option; ok is false for other options.
func (cc *ChainConfig) unmarshalBound(d *caddyfile.Dispenser) (ok bool, err error) {
	switch d.Val() {
	case "max_upstream_calls":
		cc.MaxUpstreamCalls, err = caddyarg.Count(d)
	case "max_pending_calls":
		cc.MaxPendingCalls, err = caddyarg.Count(d)
	case "max_shared_subscriptions":
		cc.MaxSharedSubscriptions, err = caddyarg.Count(d)
	default:
		return false, nil
	}
	return true, err
}
