package app

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func dur(d time.Duration) caddy.Duration { return caddy.Duration(d) }

func ptrDur(d time.Duration) *caddy.Duration { c := caddy.Duration(d); return &c }

func ptrU64(v uint64) *uint64 { return &v }

// chainsJSON is the chains part of the app's JSON config.
func chainsJSON(t *testing.T, chains map[string]*ChainConfig) string {
	t.Helper()
	b, err := json.Marshal(chains)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAppUnmarshalCaddyfile(t *testing.T) {
	cases := []struct {
		name  string
		input string
		want  map[string]*ChainConfig
	}{
		{"empty", "elara", nil},
		{"empty block", "elara {\n}", nil},
		{"one node, no block", "elara {\n chain polkadot {\n  node wss://rpc.polkadot.io\n }\n}",
			map[string]*ChainConfig{"polkadot": {Nodes: []*NodeConfig{{URL: "wss://rpc.polkadot.io"}}}}},
		{"chain without block", "elara {\n chain dev\n}", map[string]*ChainConfig{"dev": {}}},
		{"node options", `elara {
			chain polkadot {
				node ws://10.0.0.1:9944 {
					pool 8
					dial_timeout 3s
					ping_interval 1m
					max_message_size 16MiB
				}
			}
		}`, map[string]*ChainConfig{"polkadot": {Nodes: []*NodeConfig{{
			URL: "ws://10.0.0.1:9944", Pool: 8, DialTimeout: dur(3 * time.Second),
			PingInterval: dur(time.Minute), MaxMessageSize: 16 << 20,
		}}}}},
		{"node option sizes", "elara {\n chain a {\n  node ws://h {\n   max_message_size 100MB\n  }\n }\n}",
			map[string]*ChainConfig{"a": {Nodes: []*NodeConfig{{URL: "ws://h", MaxMessageSize: 100_000_000}}}}},
		{"extra connections", "elara {\n chain a {\n  node ws://h {\n   extra_connections 0\n  }\n  node ws://i {\n   extra_connections 8\n  }\n }\n}",
			map[string]*ChainConfig{"a": {Nodes: []*NodeConfig{{URL: "ws://h", ExtraConnections: ptrInt(0)}, {URL: "ws://i", ExtraConnections: ptrInt(8)}}}}},
		{"pool zero means default", "elara {\n chain a {\n  node ws://h {\n   pool 0\n  }\n }\n}",
			map[string]*ChainConfig{"a": {Nodes: []*NodeConfig{{URL: "ws://h"}}}}},
		{"empty node block", "elara {\n chain a {\n  node ws://h {\n  }\n }\n}",
			map[string]*ChainConfig{"a": {Nodes: []*NodeConfig{{URL: "ws://h"}}}}},
		{"chain options", `elara {
			chain kusama {
				node wss://a
				node http://b:9933 {
					pool 2
				}
				node wss://c
				request_timeout 20s
				max_lag 3
				head_timeout 2m
				health_interval 10s
				subscription_grace 0s
			}
		}`, map[string]*ChainConfig{"kusama": {
			Nodes:          []*NodeConfig{{URL: "wss://a"}, {URL: "http://b:9933", Pool: 2}, {URL: "wss://c"}},
			RequestTimeout: dur(20 * time.Second), MaxLag: ptrU64(3), HeadTimeout: ptrDur(2 * time.Minute),
			HealthInterval: dur(10 * time.Second), SubscriptionGrace: ptrDur(0),
		}}},
		{"zero max_lag and head_timeout are kept", "elara {\n chain a {\n  node ws://h\n  max_lag 0\n  head_timeout 0s\n }\n}",
			map[string]*ChainConfig{"a": {Nodes: []*NodeConfig{{URL: "ws://h"}}, MaxLag: ptrU64(0), HeadTimeout: ptrDur(0)}}},
		{"options after a node without block", "elara {\n chain a {\n  node ws://h\n  request_timeout 1s\n  node ws://i\n }\n}",
			map[string]*ChainConfig{"a": {Nodes: []*NodeConfig{{URL: "ws://h"}, {URL: "ws://i"}}, RequestTimeout: dur(time.Second)}}},
		{"placeholders kept for provisioning", "elara {\n chain a {\n  node {env.NODE_URL}\n }\n}",
			map[string]*ChainConfig{"a": {Nodes: []*NodeConfig{{URL: "{env.NODE_URL}"}}}}},
		{"placeholder scheme checked at provisioning", "elara {\n chain a {\n  node {env.SCHEME}://h:1\n  node wss://{env.HOST}/{env.KEY}\n }\n}",
			map[string]*ChainConfig{"a": {Nodes: []*NodeConfig{{URL: "{env.SCHEME}://h:1"}, {URL: "wss://{env.HOST}/{env.KEY}"}}}}},
		{"upper-case scheme", "elara {\n chain a {\n  node WSS://h\n }\n}",
			map[string]*ChainConfig{"a": {Nodes: []*NodeConfig{{URL: "WSS://h"}}}}},
		{"several chains", "elara {\n chain a {\n  node ws://a\n }\n chain b {\n  node ws://b\n }\n}",
			map[string]*ChainConfig{"a": {Nodes: []*NodeConfig{{URL: "ws://a"}}}, "b": {Nodes: []*NodeConfig{{URL: "ws://b"}}}}},
		{"chain bounds", "elara {\n chain a {\n  node ws://h\n  max_upstream_calls 16\n  max_pending_calls 1000\n  max_shared_subscriptions 50\n }\n}",
			map[string]*ChainConfig{"a": {Nodes: []*NodeConfig{{URL: "ws://h"}}, MaxUpstreamCalls: 16, MaxPendingCalls: 1000, MaxSharedSubscriptions: 50}}},
		{"chain bounds unset: defaults at provisioning", "elara {\n chain a {\n  node ws://h\n }\n}",
			map[string]*ChainConfig{"a": {Nodes: []*NodeConfig{{URL: "ws://h"}}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a App
			if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input)); err != nil {
				t.Fatalf("UnmarshalCaddyfile: %v", err)
			}
			if got, want := chainsJSON(t, a.Chains), chainsJSON(t, tc.want); got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestAppUnmarshalCaddyfileErrors(t *testing.T) {
	cases := []struct {
		name     string
		input    string
		line     int
		mentions string
	}{
		{"argument to elara", "elara extra {\n}", 1, ""},
		{"unknown option", "elara {\n chains a\n}", 2, "chains"},
		{"chain without name", "elara {\n chain\n}", 2, ""},
		{"chain with two names", "elara {\n chain a b {\n }\n}", 2, ""},
		{"duplicate chain", "elara {\n chain a {\n  node ws://x\n }\n chain a {\n  node ws://y\n }\n}", 5, "twice"},
		{"unknown chain option", "elara {\n chain a {\n  node ws://x\n  timeout 5s\n }\n}", 4, "timeout"},
		{"node without url", "elara {\n chain a {\n  node\n }\n}", 3, ""},
		{"node with two urls", "elara {\n chain a {\n  node ws://x ws://y\n }\n}", 3, ""},
		{"unknown node option", "elara {\n chain a {\n  node ws://x {\n   poool 2\n  }\n }\n}", 4, "poool"},
		{"pool without arg", "elara {\n chain a {\n  node ws://x {\n   pool\n  }\n }\n}", 4, ""},
		{"pool two args", "elara {\n chain a {\n  node ws://x {\n   pool 2 3\n  }\n }\n}", 4, ""},
		{"pool negative", "elara {\n chain a {\n  node ws://x {\n   pool -1\n  }\n }\n}", 4, "-1"},
		{"pool not a number", "elara {\n chain a {\n  node ws://x {\n   pool lots\n  }\n }\n}", 4, "lots"},
		{"dial_timeout bad", "elara {\n chain a {\n  node ws://x {\n   dial_timeout 5\n  }\n }\n}", 4, "5"},
		{"dial_timeout without arg", "elara {\n chain a {\n  node ws://x {\n   dial_timeout\n  }\n }\n}", 4, ""},
		{"ping_interval two args", "elara {\n chain a {\n  node ws://x {\n   ping_interval 1s 2s\n  }\n }\n}", 4, ""},
		{"max_message_size bad", "elara {\n chain a {\n  node ws://x {\n   max_message_size huge\n  }\n }\n}", 4, "huge"},
		{"max_message_size over 1TiB", "elara {\n chain a {\n  node ws://x {\n   max_message_size 2TiB\n  }\n }\n}", 4, "2TiB"},
		{"request_timeout bad", "elara {\n chain a {\n  node ws://x\n  request_timeout never\n }\n}", 4, "never"},
		{"request_timeout without arg", "elara {\n chain a {\n  node ws://x\n  request_timeout\n }\n}", 4, ""},
		{"max_lag negative", "elara {\n chain a {\n  node ws://x\n  max_lag -2\n }\n}", 4, "-2"},
		{"max_lag not a number", "elara {\n chain a {\n  node ws://x\n  max_lag few\n }\n}", 4, "few"},
		{"head_timeout bad", "elara {\n chain a {\n  node ws://x\n  head_timeout 3\n }\n}", 4, "3"},
		{"health_interval bad", "elara {\n chain a {\n  node ws://x\n  health_interval often\n }\n}", 4, "often"},
		{"subscription_grace bad", "elara {\n chain a {\n  node ws://x\n  subscription_grace x\n }\n}", 4, "x"},
		// One reading of every option: what makes no sense at zero or
		// below is refused, naming the option and its line.
		{"request_timeout negative", "elara {\n chain a {\n  node ws://x\n  request_timeout -1s\n }\n}", 4, "request_timeout"},
		{"request_timeout zero", "elara {\n chain a {\n  node ws://x\n  request_timeout 0s\n }\n}", 4, "request_timeout"},
		{"health_interval zero", "elara {\n chain a {\n  node ws://x\n  health_interval 0s\n }\n}", 4, "health_interval"},
		{"head_timeout negative", "elara {\n chain a {\n  node ws://x\n  head_timeout -1s\n }\n}", 4, "head_timeout"},
		{"subscription_grace negative", "elara {\n chain a {\n  node ws://x\n  subscription_grace -2s\n }\n}", 4, "subscription_grace"},
		{"dial_timeout negative", "elara {\n chain a {\n  node ws://x {\n   dial_timeout -5s\n  }\n }\n}", 4, "dial_timeout"},
		{"ping_interval zero", "elara {\n chain a {\n  node ws://x {\n   ping_interval 0s\n  }\n }\n}", 4, "ping_interval"},
		{"max_message_size zero", "elara {\n chain a {\n  node ws://x {\n   max_message_size 0\n  }\n }\n}", 4, "max_message_size"},
		{"chain name with a slash", "elara {\n chain a {\n  node ws://x\n }\n\n chain a/b {\n  node ws://x\n }\n}", 6, "a/b"},
		{"chain name with a dot", "elara {\n chain a.b\n}", 2, "a.b"},
		{"chain name too long", "elara {\n chain " + strings.Repeat("c", 65) + "\n}", 2, "at most 64"},
		{"node url with ftp scheme", "elara {\n chain a {\n  node ws://x\n  node ftp://x:21\n }\n}", 4, "ftp"},
		{"node url with no scheme", "elara {\n chain a {\n  node 127.0.0.1:9944\n }\n}", 3, "ws://"},
		{"node url scheme only", "elara {\n chain a {\n  node localhost:9944\n }\n}", 3, "ws://"},
		{"node url secrets stay out of the error", "elara {\n chain a {\n  node ftp://user:s3cret@x/key123\n }\n}", 3, "ftp"},
		{"max_upstream_calls zero", "elara {\n chain a {\n  node ws://x\n  max_upstream_calls 0\n }\n}", 4, "0"},
		{"max_pending_calls negative", "elara {\n chain a {\n  node ws://x\n\n  max_pending_calls -5\n }\n}", 5, "-5"},
		{"max_shared_subscriptions not a number", "elara {\n chain a {\n  node ws://x\n  max_shared_subscriptions many\n }\n}", 4, "many"},
		{"max_upstream_calls without arg", "elara {\n chain a {\n  node ws://x\n  max_upstream_calls\n }\n}", 4, ""},
		{"max_pending_calls two args", "elara {\n chain a {\n  node ws://x\n  max_pending_calls 1 2\n }\n}", 4, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a App
			err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if err == nil {
				t.Fatalf("accepted, got %s", chainsJSON(t, a.Chains))
			}
			if want := "Testfile:" + strconv.Itoa(tc.line); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not give the line (%s)", err, want)
			}
			if tc.mentions != "" && !strings.Contains(err.Error(), tc.mentions) {
				t.Errorf("error %q does not mention %q", err, tc.mentions)
			}
			for _, secret := range []string{"s3cret", "key123"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows a secret of the node url", err)
				}
			}
		})
	}
}

func TestSizeArg(t *testing.T) {
	cases := []struct {
		arg  string
		want int64
		ok   bool
	}{
		{"16MiB", 16 << 20, true},
		{"16mib", 16 << 20, true},
		{"16MB", 16_000_000, true},
		{"1KiB", 1024, true},
		{"1024", 1024, true},
		{"0", 0, false}, // no size option means anything at zero
		{"1.5KiB", 1536, true},
		{"1TiB", 1 << 40, true},
		{"1TB", 1_000_000_000_000, true},
		{"1.1TiB", 0, false},
		{"1PB", 0, false},
		{"-1", 0, false},
		{"MiB", 0, false},
		{"16XiB", 0, false},
		{"lots", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.arg, func(t *testing.T) {
			d := caddyfile.NewTestDispenser("size " + tc.arg)
			d.Next()
			got, err := SizeArg(d)
			if tc.ok != (err == nil) || got != tc.want {
				t.Errorf("SizeArg(%s) = %d, %v; want %d (ok=%v)", tc.arg, got, err, tc.want, tc.ok)
			}
		})
	}
	d := caddyfile.NewTestDispenser("size")
	d.Next()
	if _, err := SizeArg(d); err == nil {
		t.Error("SizeArg without an argument accepted")
	}
}

func TestParseGlobalOption(t *testing.T) {
	d := caddyfile.NewTestDispenser("elara {\n chain dev {\n  node ws://127.0.0.1:9944 {\n   pool 2\n  }\n  request_timeout 2s\n }\n}")
	v, err := ParseGlobalOption(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	ha, ok := v.(httpcaddyfile.App)
	if !ok {
		t.Fatalf("got %T, want httpcaddyfile.App", v)
	}
	if ha.Name != "elara" {
		t.Errorf("app name %q", ha.Name)
	}
	var back App
	if err := caddy.StrictUnmarshalJSON(ha.Value, &back); err != nil {
		t.Fatalf("app JSON %s does not decode strictly: %v", ha.Value, err)
	}
	cc := back.Chains["dev"]
	if cc == nil || len(cc.Nodes) != 1 || cc.Nodes[0].URL != "ws://127.0.0.1:9944" || cc.Nodes[0].Pool != 2 || cc.RequestTimeout != dur(2*time.Second) {
		t.Errorf("round trip through JSON: %s", ha.Value)
	}
	if _, err := ParseGlobalOption(caddyfile.NewTestDispenser("elara {\n bogus\n}"), nil); err == nil {
		t.Error("ParseGlobalOption accepted an unknown option")
	}
}

func ptrInt(v int) *int { return &v }
