package app

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestAppValidate(t *testing.T) {
	node := func(url string, pool int) *NodeConfig { return &NodeConfig{URL: url, Pool: pool} }
	ok := func() *ChainConfig { return &ChainConfig{Nodes: []*NodeConfig{node("ws://127.0.0.1:1", 0)}} }
	cases := []struct {
		name     string
		chains   map[string]*ChainConfig
		mentions string // "" = valid
	}{
		{"no chains", nil, ""},
		{"simple", map[string]*ChainConfig{"polkadot": ok()}, ""},
		{"name with digits, dash and underscore", map[string]*ChainConfig{"asset-hub_2": ok()}, ""},
		{"upper case name", map[string]*ChainConfig{"Kusama": ok()}, ""},
		{"64-character name", map[string]*ChainConfig{strings.Repeat("a", 64): ok()}, ""},
		{"pool 256", map[string]*ChainConfig{"a": {Nodes: []*NodeConfig{node("ws://h", 256)}}}, ""},
		{"empty name", map[string]*ChainConfig{"": ok()}, "names are"},
		{"65-character name", map[string]*ChainConfig{strings.Repeat("a", 65): ok()}, "names are"},
		{"slash in name", map[string]*ChainConfig{"a/b": ok()}, "names are"},
		{"dot in name", map[string]*ChainConfig{"a.b": ok()}, "names are"},
		{"space in name", map[string]*ChainConfig{"a b": ok()}, "names are"},
		{"non-ascii name", map[string]*ChainConfig{"pølkadot": ok()}, "names are"},
		{"no nodes", map[string]*ChainConfig{"a": {}}, "at least one node"},
		{"empty node list", map[string]*ChainConfig{"a": {Nodes: []*NodeConfig{}}}, "at least one node"},
		{"pool over 256", map[string]*ChainConfig{"a": {Nodes: []*NodeConfig{node("ws://h", 257)}}}, "pool"},
		{"negative pool", map[string]*ChainConfig{"a": {Nodes: []*NodeConfig{node("ws://h", 1), node("ws://i", -1)}}}, "node 1"},
		// JSON reads values as the Caddyfile does: negative ones are refused.
		{"negative request_timeout", map[string]*ChainConfig{"a": {Nodes: ok().Nodes, RequestTimeout: -1}}, "request_timeout"},
		{"negative health_interval", map[string]*ChainConfig{"a": {Nodes: ok().Nodes, HealthInterval: -1}}, "health_interval"},
		{"negative head_timeout", map[string]*ChainConfig{"a": {Nodes: ok().Nodes, HeadTimeout: new(caddy.Duration(-1))}}, "head_timeout"},
		{"zero head_timeout", map[string]*ChainConfig{"a": {Nodes: ok().Nodes, HeadTimeout: new(caddy.Duration(0))}}, ""},
		{"negative dial_timeout", map[string]*ChainConfig{"a": {Nodes: []*NodeConfig{{URL: "ws://h", DialTimeout: -1}}}}, "dial_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &App{Chains: tc.chains}
			err := a.Validate()
			if tc.mentions == "" {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("invalid config accepted")
			}
			if !strings.Contains(err.Error(), tc.mentions) {
				t.Errorf("error %q does not mention %q", err, tc.mentions)
			}
		})
	}
}

func TestAppJSONIsStrict(t *testing.T) {
	cases := []struct {
		name  string
		json  string
		field string // "" = must decode
	}{
		{"valid", `{"chains":{"x":{"nodes":[{"url":"ws://127.0.0.1:1","pool":2,"dial_timeout":"1s","max_message_size":1024}],"request_timeout":"5s","max_lag":3}}}`, ""},
		{"misspelled node field", `{"chains":{"x":{"nodes":[{"url":"ws://127.0.0.1:1","pooll":2}]}}}`, "pooll"},
		{"misspelled chain field", `{"chains":{"x":{"nodes":[{"url":"ws://127.0.0.1:1"}],"request_timout":"5s"}}}`, "request_timout"},
		{"misspelled app field", `{"chainz":{}}`, "chainz"},
		{"wrong type", `{"chains":{"x":{"nodes":[{"url":"ws://127.0.0.1:1","pool":"2"}]}}}`, "pool"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a App
			err := caddy.StrictUnmarshalJSON([]byte(tc.json), &a)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %s", tc.json)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %q", err, tc.field)
			}
		})
	}
}

func TestCaddyValidateRejectsUnknownFields(t *testing.T) {
	// The full path Caddy takes when it loads a config: the app module is
	// decoded strictly, so a typo is an error, not a silently ignored field.
	cases := []struct {
		name     string
		config   string
		mentions string // "" = valid
	}{
		{"valid", `{"apps":{"elara":{"chains":{"x":{"nodes":[{"url":"ws://127.0.0.1:1","pool":2}]}}}}}`, ""},
		{"misspelled pool", `{"apps":{"elara":{"chains":{"x":{"nodes":[{"url":"ws://127.0.0.1:1","pooll":2}]}}}}}`, "pooll"},
		{"bad chain name", `{"apps":{"elara":{"chains":{"a/b":{"nodes":[{"url":"ws://127.0.0.1:1"}]}}}}}`, "a/b"},
		{"no nodes", `{"apps":{"elara":{"chains":{"x":{"nodes":[]}}}}}`, "at least one node"},
		{"bad scheme", `{"apps":{"elara":{"chains":{"x":{"nodes":[{"url":"ftp://127.0.0.1:1"}]}}}}}`, "scheme"},
		{"null chain", `{"apps":{"elara":{"chains":{"x":null}}}}`, "x"},
	}
	// Keep Caddy's storage and locks out of $HOME.
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cfg caddy.Config
			if err := json.Unmarshal([]byte(tc.config), &cfg); err != nil {
				t.Fatal(err)
			}
			cfg.Admin = &caddy.AdminConfig{Disabled: true}
			err := caddy.Validate(&cfg)
			if tc.mentions == "" {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("invalid config accepted")
			}
			if !strings.Contains(err.Error(), tc.mentions) {
				t.Errorf("error %q does not mention %q", err, tc.mentions)
			}
		})
	}
}
