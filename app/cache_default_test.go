package app_test

import (
	"fmt"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// The cache is on without any cache option: a repeated cacheable call is
// answered without the node. `cache off` (or its JSON form) sends every
// call to the node.
func TestCacheIsOnByDefault(t *testing.T) {
	cases := []struct {
		name   string
		option string // added to the elara global option
		json   bool   // load the config as Caddy JSON instead of a Caddyfile
		cached bool
	}{
		{"no cache option", "", false, true},
		{"cache off", "cache off", false, false},
		{"json without cache", "", true, true},
		{"json disabled", `"cache": {"disabled": true},`, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := fakenode.Start(t)
			var gw *testgw.Gateway
			if tc.json {
				gw = startJSON(t, fmt.Sprintf(`{%s "chains": {"dev": {"nodes": [{"url": %q}], "health_interval": 3600000000000}}}`, tc.option, node.URL()))
			} else {
				gw = testgw.Start(t, fmt.Sprintf("\t\tchain dev {\n\t\t\tnode %s\n\t\t\thealth_interval 1h\n\t\t}\n\t\t%s\n", node.URL(), tc.option), "\telara_rpc")
			}
			url := gw.HTTP("/dev")
			hash := node.Chain().Finalized().Hash
			want := nodeAnswer(t, node, "chain_getHeader", []string{hash})
			// repeat makes 3 calls and reports how many reached the node.
			repeat := func() int {
				before := node.Calls("chain_getHeader")
				for range 3 {
					if r := testgw.PostCall(t, url, "chain_getHeader", []string{hash}); string(r.Result) != want {
						t.Fatalf("got %s, want %s", r.Raw, want)
					}
				}
				return node.Calls("chain_getHeader") - before
			}
			if !tc.cached {
				if got := repeat(); got != 3 {
					t.Fatalf("3 calls reached the node %d times, want 3 (cache off)", got)
				}
				return
			}
			// Until the cache knows the chain (its genesis), calls go to the
			// node; then repeated calls never do.
			eventually(t, func() string {
				if got := repeat(); got != 0 {
					return fmt.Sprintf("3 repeated calls reached the node %d times, want 0 (cache on by default)", got)
				}
				return ""
			})
		})
	}
}

// startJSON loads a Caddy JSON config whose elara app is elara, serving
// elara_rpc on a free port, as an operator writing JSON would.
func startJSON(t *testing.T, elara string) *testgw.Gateway {
	t.Helper()
	testgw.Isolate()
	gw := &testgw.Gateway{Port: testgw.FreePort(t)}
	cfg := fmt.Sprintf(`{
	"admin": {"disabled": true},
	"logging": {"logs": {"default": {"level": "ERROR"}}},
	"apps": {
		"elara": %s,
		"http": {"servers": {"rpc": {
			"listen": ["127.0.0.1:%d"],
			"automatic_https": {"disable": true},
			"routes": [{"handle": [{"handler": "elara_rpc"}]}]
		}}}
	}
}`, elara, gw.Port)
	if err := caddy.Load([]byte(cfg), true); err != nil {
		t.Fatalf("loading config: %v\n%s", err, cfg)
	}
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Logf("stopping caddy: %v", err)
		}
	})
	return gw
}
