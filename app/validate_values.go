package app

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// checkValues refuses, in a JSON config, the negative durations and sizes
// the Caddyfile readers (package caddyarg) refuse: zero keeps meaning
// "the default" in JSON (omitempty), a negative value has no meaning.
func (cc *ChainConfig) checkValues() error {
	durations := []struct {
		name string
		d    caddy.Duration
	}{
		{"request_timeout", cc.RequestTimeout},
		{"health_interval", cc.HealthInterval},
	}
	if cc.HeadTimeout != nil {
		durations = append(durations, struct {
			name string
			d    caddy.Duration
		}{"head_timeout", *cc.HeadTimeout})
	}
	if cc.SubscriptionGrace != nil {
		durations = append(durations, struct {
			name string
			d    caddy.Duration
		}{"subscription_grace", *cc.SubscriptionGrace})
	}
	for _, v := range durations {
		if v.d < 0 {
			return fmt.Errorf("%s cannot be negative (%s)", v.name, time.Duration(v.d))
		}
	}
	for i, n := range cc.Nodes {
		if n.DialTimeout < 0 || n.PingInterval < 0 || n.MaxMessageSize < 0 {
			return fmt.Errorf("node %d: dial_timeout, ping_interval and max_message_size cannot be negative", i)
		}
	}
	return nil
}
