package app

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/elara-gateway/elara/suber"
)

// State kept across reloads (nodes, chains, stores) is found again by a
// key: the JSON of the config that defines it, defaults applied. A field
// added to a config struct is then part of its key without anyone having
// to remember it, and a reload that changes it builds the state anew.

// poolKey is the key of the state v defines.
func poolKey(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("state key: %w", err)
	}
	return string(b), nil
}

// nodeKey is what defines one node's connections.
type nodeKey struct {
	Chain string `json:"chain"`
	// Label names the node in metrics, which its observer carries.
	Label string `json:"label"`
	// URL is the address with placeholders replaced.
	URL string `json:"url"`
	// Node is the node's config as written, with defaults applied.
	Node NodeConfig `json:"node"`
	// HealthInterval is the chain's, which the node's health loop uses.
	HealthInterval caddy.Duration `json:"health_interval"`
	// Transport is the fingerprint of what placeholders and files hold
	// (header values, certificates): the config names them only.
	Transport string `json:"transport"`
}

// withDefaults is the node config as the node uses it.
func (nc NodeConfig) withDefaults() NodeConfig {
	if nc.Pool <= 0 {
		nc.Pool = suber.DefaultPoolSize
	}
	if nc.DialTimeout <= 0 {
		nc.DialTimeout = caddy.Duration(suber.DefaultDialTimeout)
	}
	if nc.PingInterval <= 0 {
		nc.PingInterval = caddy.Duration(suber.DefaultPingInterval)
	}
	if nc.MaxMessageSize <= 0 {
		nc.MaxMessageSize = suber.DefaultReadLimit
	}
	if nc.ExtraConnections == nil {
		x := suber.DefaultMaxExtraConnections
		nc.ExtraConnections = &x
	}
	return nc
}

// chainKey is what defines a chain: its name alone. Everything else a
// config says of a chain (its nodes, options, bounds and cache) is applied
// to the kept chain when the config starts (chain_apply.go), so that a
// reload keeps the chain's clients and their subscriptions.
type chainKey struct {
	Name string `json:"name"`
}

// settings are the chain's options, defaults applied, as a config
// applies them to the chain. Its health interval is the nodes' (nodeKey).
func (cc *ChainConfig) settings() chainSettings {
	s := chainSettings{
		RequestTimeout: time.Duration(cc.RequestTimeout),
		Readiness:      suber.DefaultReadiness,
		Grace:          DefaultSubscriptionGrace,
		Bounds:         cc.bounds(),
	}
	if s.RequestTimeout <= 0 {
		s.RequestTimeout = DefaultRequestTimeout
	}
	if cc.MaxLag != nil {
		s.Readiness.MaxLag = *cc.MaxLag
	}
	if cc.HeadTimeout != nil {
		s.Readiness.HeadTimeout = time.Duration(*cc.HeadTimeout)
	}
	if cc.SubscriptionGrace != nil {
		s.Grace = time.Duration(*cc.SubscriptionGrace)
	}
	return s
}

// healthInterval is the chain's health poll interval, default applied.
func (cc *ChainConfig) healthInterval() caddy.Duration {
	if cc.HealthInterval <= 0 {
		return caddy.Duration(suber.DefaultHealthInterval)
	}
	return cc.HealthInterval
}

// projectStoreKey is what a project store opens: a bolt file can be
// opened once per process, so the store is keyed by it alone.
type projectStoreKey struct {
	Store  string `json:"store"`
	Dir    string `json:"dir,omitempty"`
	Redis  string `json:"redis,omitempty"`
	Prefix string `json:"prefix,omitempty"`
}
