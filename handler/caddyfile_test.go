package handler_test

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/elara-gateway/elara/handler"
	"github.com/elara-gateway/elara/internal/testgw"
)

func TestHandlerUnmarshalCaddyfile(t *testing.T) {
	cases := []struct {
		name  string
		input string
		want  handler.Handler
	}{
		{"bare", `elara_rpc`, handler.Handler{}},
		{"empty block", "elara_rpc {\n}", handler.Handler{}},
		{"inline chains", `elara_rpc polkadot kusama`, handler.Handler{Chains: []string{"polkadot", "kusama"}}},
		{"chains option", "elara_rpc {\n chains polkadot kusama\n}", handler.Handler{Chains: []string{"polkadot", "kusama"}}},
		{"inline and option chains add up", "elara_rpc polkadot {\n chains kusama\n chains westend\n}", handler.Handler{Chains: []string{"polkadot", "kusama", "westend"}}},
		{"allow and deny repeat and add up", "elara_rpc {\n allow system_* chain_*\n allow author_rotateKeys\n deny chain_getBlock\n deny *_unstable\n}",
			handler.Handler{Allow: []string{"system_*", "chain_*", "author_rotateKeys"}, Deny: []string{"chain_getBlock", "*_unstable"}}},
		{"max_batch", "elara_rpc {\n max_batch 50\n}", handler.Handler{MaxBatch: 50}},
		{"max_request_size MiB", "elara_rpc {\n max_request_size 16MiB\n}", handler.Handler{MaxRequestSize: 16 << 20}},
		{"max_request_size MB", "elara_rpc {\n max_request_size 16MB\n}", handler.Handler{MaxRequestSize: 16_000_000}},
		{"max_request_size bytes", "elara_rpc {\n max_request_size 1000000\n}", handler.Handler{MaxRequestSize: 1_000_000}},
		{"max_request_size KiB lower case", "elara_rpc {\n max_request_size 512kib\n}", handler.Handler{MaxRequestSize: 512 << 10}},
		{"max_request_size with space unit", "elara_rpc {\n max_request_size \"2 MiB\"\n}", handler.Handler{MaxRequestSize: 2 << 20}},
		{"max_subscriptions", "elara_rpc {\n max_subscriptions 7\n}", handler.Handler{MaxSubscriptions: 7}},
		{"ping_interval", "elara_rpc {\n ping_interval 45s\n}", handler.Handler{PingInterval: caddy.Duration(45 * time.Second)}},
		{"ping_interval minutes", "elara_rpc {\n ping_interval 1m30s\n}", handler.Handler{PingInterval: caddy.Duration(90 * time.Second)}},
		{"ping_interval days", "elara_rpc {\n ping_interval 1d\n}", handler.Handler{PingInterval: caddy.Duration(24 * time.Hour)}},
		{"send_queue", "elara_rpc {\n send_queue 128\n}", handler.Handler{SendQueue: 128}},
		{"send_queue_bytes", "elara_rpc {\n send_queue_bytes 4MiB\n}", handler.Handler{SendQueueBytes: 4 << 20}},
		{"write_timeout", "elara_rpc {\n write_timeout 3s\n}", handler.Handler{WriteTimeout: caddy.Duration(3 * time.Second)}},
		{"later value wins", "elara_rpc {\n max_batch 1\n max_batch 2\n}", handler.Handler{MaxBatch: 2}},
		{"everything", `elara_rpc polkadot {
			chains kusama
			allow *
			deny state_getKeys
			max_batch 10
			max_request_size 1MiB
			max_subscriptions 20
			ping_interval 10s
			send_queue 64
			write_timeout 2s
		}`, handler.Handler{
			WriteTimeout: caddy.Duration(2 * time.Second),
			Chains:       []string{"polkadot", "kusama"}, Allow: []string{"*"}, Deny: []string{"state_getKeys"},
			MaxBatch: 10, MaxRequestSize: 1 << 20, MaxSubscriptions: 20,
			PingInterval: caddy.Duration(10 * time.Second), SendQueue: 64,
		}},
		{"max_calls_in_flight", "elara_rpc {\n max_calls_in_flight 8\n}", handler.Handler{MaxCallsInFlight: 8}},
		{"max_connections_per_ip", "elara_rpc {\n max_connections_per_ip 64\n}", handler.Handler{MaxConnectionsPerIP: 64}},
		{"max_subscriptions_per_ip", "elara_rpc {\n max_subscriptions_per_ip 1024\n}", handler.Handler{MaxSubscriptionsPerIP: 1024}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h handler.Handler
			if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input)); err != nil {
				t.Fatalf("UnmarshalCaddyfile: %v", err)
			}
			if !reflect.DeepEqual(configOf(t, &h), configOf(t, &tc.want)) {
				t.Errorf("got  %s\nwant %s", configOf(t, &h), configOf(t, &tc.want))
			}
		})
	}
}

// configOf is the handler's JSON config, which holds every exported field.
func configOf(t *testing.T, h *handler.Handler) string {
	t.Helper()
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandlerUnmarshalCaddyfileErrors(t *testing.T) {
	cases := []struct {
		name     string
		input    string
		line     int
		mentions string
	}{
		{"unknown option", "elara_rpc {\n max_batch 5\n frobnicate 1\n}", 3, "frobnicate"},
		{"misspelled option", "elara_rpc {\n\n\n max_batchh 5\n}", 4, "max_batchh"},
		{"chains without args", "elara_rpc {\n chains\n}", 2, ""},
		{"allow without args", "elara_rpc {\n allow\n}", 2, ""},
		{"deny without args", "elara_rpc {\n deny\n}", 2, ""},
		{"max_batch without arg", "elara_rpc {\n max_batch\n}", 2, ""},
		{"max_batch two args", "elara_rpc {\n max_batch 1 2\n}", 2, ""},
		{"max_batch zero", "elara_rpc {\n max_batch 0\n}", 2, "0"},
		{"max_batch negative", "elara_rpc {\n max_batch -3\n}", 2, "-3"},
		{"max_batch not a number", "elara_rpc {\n max_batch many\n}", 2, "many"},
		{"max_batch float", "elara_rpc {\n max_batch 1.5\n}", 2, "1.5"},
		{"max_request_size without arg", "elara_rpc {\n max_request_size\n}", 2, ""},
		{"max_request_size bad unit", "elara_rpc {\n max_request_size 16XB\n}", 2, "16XB"},
		{"max_request_size negative", "elara_rpc {\n max_request_size -1\n}", 2, "-1"},
		{"max_request_size two args", "elara_rpc {\n max_request_size 16 MiB\n}", 2, ""},
		{"max_request_size absurd", "elara_rpc {\n max_request_size 2PiB\n}", 2, "2PiB"},
		{"max_subscriptions zero", "elara_rpc {\n max_subscriptions 0\n}", 2, "0"},
		{"ping_interval without arg", "elara_rpc {\n ping_interval\n}", 2, ""},
		{"ping_interval bad", "elara_rpc {\n ping_interval soon\n}", 2, "soon"},
		{"ping_interval no unit", "elara_rpc {\n ping_interval 30\n}", 2, "30"},
		{"ping_interval two args", "elara_rpc {\n ping_interval 1s 2s\n}", 2, ""},
		{"ping_interval zero", "elara_rpc {\n ping_interval 0s\n}", 2, "0s"},
		{"ping_interval negative", "elara_rpc {\n\n ping_interval -5s\n}", 3, "-5s"},
		{"write_timeout without arg", "elara_rpc {\n write_timeout\n}", 2, ""},
		{"write_timeout negative", "elara_rpc {\n write_timeout -1s\n}", 2, "-1s"},
		{"write_timeout bad", "elara_rpc {\n write_timeout later\n}", 2, "later"},
		{"send_queue zero", "elara_rpc {\n send_queue 0\n}", 2, "0"},
		{"send_queue two args", "elara_rpc {\n send_queue 1 2\n}", 2, ""},
		{"send_queue_bytes zero", "elara_rpc {\n send_queue_bytes 0\n}", 2, "send_queue_bytes"},
		{"send_queue_bytes negative", "elara_rpc {\n send_queue_bytes -1MiB\n}", 2, "-1MiB"},
		{"send_queue_bytes without unit word", "elara_rpc {\n send_queue_bytes lots\n}", 2, "lots"},
		{"write_timeout zero", "elara_rpc {\n write_timeout 0s\n}", 2, "write_timeout"},
		{"allow pattern with two stars", "elara_rpc {\n allow system_*\n\n allow chain_* a*b*\n}", 4, "a*b*"},
		{"deny pattern with two stars", "elara_rpc {\n deny **\n}", 2, "**"},
		{"empty deny pattern", "elara_rpc {\n deny \"\"\n}", 2, "empty"},
		{"chain name with a slash", "elara_rpc {\n chains dev\n chains a/b\n}", 3, "a/b"},
		{"inline chain name with a space", "elara_rpc dev \"a b\"", 1, "a b"},
		{"origins no argument", "elara_rpc {\n origins\n}", 2, ""},
		{"origins path", "elara_rpc {\n\n origins https://app.example.com/dapp\n}", 3, "https://app.example.com/dapp"},
		{"origins trailing slash", "elara_rpc {\n origins https://app.example.com/\n}", 2, "app.example.com/"},
		{"origins no scheme", "elara_rpc {\n origins app.example.com\n}", 2, "app.example.com"},
		{"origins query", "elara_rpc {\n origins https://a.example?x=1\n}", 2, "a.example?x=1"},
		{"origins empty query", "elara_rpc {\n origins https://a.example?\n}", 2, "a.example?"},
		{"origins fragment", "elara_rpc {\n origins https://a.example#top\n}", 2, "a.example#top"},
		{"origins empty port", "elara_rpc {\n origins https://a.example:\n}", 2, "a.example:"},
		{"origins user info", "elara_rpc {\n origins https://me@a.example\n}", 2, "me@a.example"},
		{"origins wildcard subdomain", "elara_rpc {\n origins https://*.example.com\n}", 2, "*.example.com"},
		{"origins star among origins", "elara_rpc {\n origins https://a.example\n origins *\n}", 3, "*"},
		{"origins null", "elara_rpc {\n origins null\n}", 2, "null"},
		{"max_calls_in_flight zero", "elara_rpc {\n max_calls_in_flight 0\n}", 2, "0"},
		{"max_connections_per_ip negative", "elara_rpc {\n\n max_connections_per_ip -1\n}", 3, "-1"},
		{"max_subscriptions_per_ip not a number", "elara_rpc {\n max_subscriptions_per_ip lots\n}", 2, "lots"},
		{"max_calls_in_flight two args", "elara_rpc {\n max_calls_in_flight 1 2\n}", 2, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h handler.Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if err == nil {
				t.Fatalf("accepted, got %s", configOf(t, &h))
			}
			if want := "Testfile:" + strconv.Itoa(tc.line); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not give the line (%s)", err, want)
			}
			if tc.mentions != "" && !strings.Contains(err.Error(), tc.mentions) {
				t.Errorf("error %q does not mention %q", err, tc.mentions)
			}
		})
	}
}

func TestHandlerValidateRejectsNegativeDurations(t *testing.T) {
	// A negative ping interval reaches time.NewTicker in the WebSocket
	// write loop (handler/websocket.go), which panics on a goroutine of its
	// own and so takes the whole server down. The Caddyfile refuses it;
	// a JSON config ("ping_interval": "-5s") only meets Validate.
	valid := func() handler.Handler {
		return handler.Handler{
			MaxBatch: handler.DefaultMaxBatch, MaxRequestSize: handler.DefaultMaxRequestSize,
			MaxSubscriptions: handler.DefaultMaxSubscriptions, SendQueue: handler.DefaultSendQueue, SendQueueBytes: handler.DefaultSendQueueBytes,
			PingInterval: caddy.Duration(handler.DefaultPingInterval), WriteTimeout: caddy.Duration(handler.DefaultWriteTimeout),
		}
	}
	h := valid()
	if err := h.Validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	var h2 handler.Handler
	if err := caddy.StrictUnmarshalJSON([]byte(`{"ping_interval":"-5s"}`), &h2); err != nil {
		t.Fatalf("decoding: %v", err)
	}
	h = valid()
	h.PingInterval = h2.PingInterval
	if h.Validate() == nil {
		t.Fatal("regression: handler/handler.go Validate does not check PingInterval, and Provision only replaces 0: a JSON " +
			`config with "ping_interval": "-5s" is accepted, and the WebSocket writeLoop (handler/websocket.go) ` +
			"then calls time.NewTicker(negative), which panics on its own goroutine and crashes the process on the " +
			"first WebSocket client. Reject PingInterval < 0 (and WriteTimeout < 0) in Validate.")
	}
}

// send_queue_bytes under 64 KiB, or negative in JSON, is refused: the
// queue must hold at least a few ordinary replies.
func TestHandlerValidateSendQueueBytes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bytes int64
		ok    bool
	}{
		{"default", handler.DefaultSendQueueBytes, true},
		{"64KiB", 64 << 10, true},
		{"under 64KiB", 64<<10 - 1, false},
		{"negative", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := handler.Handler{
				MaxBatch: handler.DefaultMaxBatch, MaxRequestSize: handler.DefaultMaxRequestSize,
				MaxSubscriptions: handler.DefaultMaxSubscriptions, SendQueue: handler.DefaultSendQueue, SendQueueBytes: tc.bytes,
				PingInterval: caddy.Duration(handler.DefaultPingInterval), WriteTimeout: caddy.Duration(handler.DefaultWriteTimeout),
			}
			if err := h.Validate(); (err == nil) != tc.ok || err != nil && !strings.Contains(err.Error(), "send_queue_bytes") {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestHandlerJSONIsStrict(t *testing.T) {
	cases := []struct {
		name  string
		json  string
		field string // "" = must decode
	}{
		{"valid", `{"chains":["dev"],"allow":["*"],"max_batch":5,"ping_interval":"10s","max_request_size":1048576}`, ""},
		{"unknown field", `{"max_batchh":5}`, "max_batchh"},
		{"misspelled allow", `{"allows":["*"]}`, "allows"},
		{"wrong type", `{"max_batch":"5"}`, "max_batch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h handler.Handler
			err := caddy.StrictUnmarshalJSON([]byte(tc.json), &h)
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

// Mistakes that only provisioning used to find are reported by the
// Caddyfile adapter, with the line they are on.
func TestCaddyfileMistakesNameTheirLine(t *testing.T) {
	cases := []struct {
		name     string
		global   string // the elara option's body
		site     string
		bad      string // text on the offending line
		mentions string
	}{
		{"allow pattern with two stars", "", "elara_rpc {\n\t\tallow system_* a*b*\n\t}", "a*b*", "at most one '*'"},
		{"deny pattern with two stars", "", "elara_rpc {\n\t\tdeny **\n\t}", "**", "at most one '*'"},
		{"empty allow pattern", "", "elara_rpc {\n\t\tallow system_chain \"\"\n\t}", `allow system_chain ""`, "empty"},
		{"handler chain name with a slash", "", "elara_rpc {\n\t\tchains dev a/b\n\t}", "a/b", "a/b"},
		{"inline handler chain name with a dot", "", "elara_rpc dev a.b", "a.b", "a.b"},
		{"node url with ftp scheme", "chain dev {\n\t\t\tnode ftp://127.0.0.1:9944\n\t\t}", "elara_rpc", "ftp://", "ftp"},
		{"node url without scheme", "chain dev {\n\t\t\tnode 127.0.0.1:9944\n\t\t}", "elara_rpc", "node 127.0.0.1:9944", "ws://"},
		{"chain name with a slash", "chain dev/main {\n\t\t\tnode ws://127.0.0.1:9944\n\t\t}", "elara_rpc", "dev/main", "dev/main"},
		{"chain name too long", "chain " + strings.Repeat("x", 65) + " {\n\t\t\tnode ws://127.0.0.1:9944\n\t\t}", "elara_rpc", strings.Repeat("x", 65), "at most 64"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			global := tc.global
			if global == "" {
				global = "chain dev {\n\t\t\tnode ws://127.0.0.1:9944\n\t\t}"
			}
			src := (&testgw.Gateway{Port: 8080}).Caddyfile("\t\t"+global, "\t"+tc.site)
			line := 0
			for i, l := range strings.Split(src, "\n") {
				if strings.Contains(l, tc.bad) {
					line = i + 1
					break
				}
			}
			if line == 0 {
				t.Fatalf("%q not in\n%s", tc.bad, src)
			}
			_, err := testgw.Adapt(src)
			if err == nil {
				t.Fatalf("adapted:\n%s", src)
			}
			if want := "Caddyfile:" + strconv.Itoa(line); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not give the line (%s)", err, want)
			}
			if !strings.Contains(err.Error(), tc.mentions) {
				t.Errorf("error %q does not mention %q", err, tc.mentions)
			}
		})
	}
}
