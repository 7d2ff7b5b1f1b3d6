// Package examples loads every Caddyfile in this folder, so an example can
// never drift from the syntax the modules accept, and exercises the
// quickstart and operator examples against a fake node.
package examples

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/gorilla/websocket"
	"golang.org/x/crypto/bcrypt"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

func TestEveryExampleAdaptsAndProvisions(t *testing.T) {
	files, err := filepath.Glob("*.Caddyfile")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := testgw.Adapt(string(src))
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			if !strings.Contains(string(cfg), `"elara_rpc"`) {
				t.Fatalf("example has no elara_rpc handler")
			}
			// Validate provisions every module without starting servers.
			if err := caddy.Validate(mustConfig(t, cfg)); err != nil {
				t.Fatalf("validate: %v", err)
			}
		})
	}
}

func mustConfig(t *testing.T, raw []byte) *caddy.Config {
	t.Helper()
	var cfg caddy.Config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// runExample loads an example with its environment pointed at a fake node.
func runExample(t *testing.T, file string, env map[string]string) *testgw.Gateway {
	t.Helper()
	port := testgw.FreePort(t)
	env["ELARA_PORT"] = itoa(port)
	env["ELARA_ADMIN"] = "127.0.0.1:" + itoa(testgw.FreePort(t))
	for k, v := range env {
		t.Setenv(k, v)
	}
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	testgw.Load(t, string(src))
	t.Cleanup(func() { _ = caddy.Stop() })
	return &testgw.Gateway{Port: port}
}

func TestQuickstartExample(t *testing.T) {
	node := fakenode.Start(t)
	gw := runExample(t, "quickstart.Caddyfile", map[string]string{"ELARA_UPSTREAM": node.URL(), "ELARA_CHAIN": "devnet"})
	if r := testgw.PostCall(t, gw.HTTP("/devnet"), "system_chain", nil); string(r.Result) != `"Fake Dev"` {
		t.Fatalf("HTTP: %s", r.Raw)
	}
	c := testgw.Dial(t, gw.WS("/devnet"))
	if r := c.Call("author_rotateKeys", nil); r.ErrCode() != -32601 {
		t.Fatalf("quickstart must deny unsafe methods: %s", r.Raw)
	}
	if node.Calls("author_rotateKeys") != 0 {
		t.Fatal("author_rotateKeys reached the node")
	}
}

func TestOperatorExample(t *testing.T) {
	node := fakenode.Start(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	gw := runExample(t, "operator.Caddyfile", map[string]string{"ELARA_UPSTREAM": node.URL(), "ELARA_OPERATOR_HASH": string(hash)})
	call := func(path, user, pass, method string) (int, string) {
		return postAuth(t, gw.HTTP(path), user, pass, `{"jsonrpc":"2.0","id":1,"method":"`+method+`","params":`+paramsFor(method)+`}`)
	}
	cases := []struct {
		name, path, user, pass, method string
		status                         int
		forwarded                      bool
	}{
		{"public refuses rotateKeys", "/polkadot", "", "", "author_rotateKeys", 200, false},
		{"public refuses even with credentials", "/polkadot", "operator", "secret", "author_rotateKeys", 200, false},
		{"operator needs credentials", "/operator/polkadot", "", "", "author_rotateKeys", 401, false},
		{"operator wrong password", "/operator/polkadot", "operator", "nope", "author_rotateKeys", 401, false},
		{"operator rotates keys", "/operator/polkadot", "operator", "secret", "author_rotateKeys", 200, true},
		{"operator inserts keys", "/operator/polkadot", "operator", "secret", "author_insertKey", 200, true},
		{"operator still refuses other unsafe methods", "/operator/polkadot", "operator", "secret", "system_addReservedPeer", 200, false},
		// A safe method the cache (on by default) never answers, so that
		// "forwarded" is seen at the node.
		{"operator serves safe methods", "/operator/polkadot", "operator", "secret", "system_accountNextIndex", 200, true},
		{"public refuses hasSessionKeys", "/polkadot", "", "", "author_hasSessionKeys", 200, false},
		{"operator checks session keys", "/operator/polkadot", "operator", "secret", "author_hasSessionKeys", 200, true},
		{"operator hasSessionKeys needs credentials", "/operator/polkadot", "", "", "author_hasSessionKeys", 401, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := node.Calls(tc.method)
			status, body := call(tc.path, tc.user, tc.pass, tc.method)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if got := node.Calls(tc.method) > before; got != tc.forwarded {
				t.Fatalf("forwarded=%v, want %v: %s", got, tc.forwarded, body)
			}
			if status == 200 && !tc.forwarded && !strings.Contains(body, `"code":-32601`) {
				t.Fatalf("refusal is not -32601: %s", body)
			}
		})
	}
}

// paramsFor gives a method params the fake node accepts.
func paramsFor(method string) string {
	switch method {
	case "author_hasSessionKeys":
		return `["0x00"]`
	case "system_accountNextIndex":
		return `["5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"]`
	}
	return `[]`
}

// The operator route is refused to addresses outside ELARA_OPERATOR_NETWORK,
// with or without credentials, while the public route keeps serving them.
func TestOperatorExampleRefusesOutsideAddresses(t *testing.T) {
	node := fakenode.Start(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// The tests connect from 127.0.0.1, outside this network.
	gw := runExample(t, "operator.Caddyfile", map[string]string{"ELARA_UPSTREAM": node.URL(),
		"ELARA_OPERATOR_HASH": string(hash), "ELARA_OPERATOR_NETWORK": "10.0.0.0/8"})
	cases := []struct {
		name, path, user, pass, method string
		status                         int
		forwarded                      bool
	}{
		{"operator route with credentials", "/operator/polkadot", "operator", "secret", "author_rotateKeys", 403, false},
		{"operator route without credentials", "/operator/polkadot", "", "", "author_rotateKeys", 403, false},
		{"operator route with a wrong password", "/operator/polkadot", "operator", "nope", "author_hasSessionKeys", 403, false},
		{"operator route, safe method", "/operator/polkadot", "operator", "secret", "system_accountNextIndex", 403, false},
		{"public route still serves", "/polkadot", "", "", "system_accountNextIndex", 200, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := node.Calls(tc.method)
			status, body := postAuth(t, gw.HTTP(tc.path), tc.user, tc.pass,
				`{"jsonrpc":"2.0","id":1,"method":"`+tc.method+`","params":`+paramsFor(tc.method)+`}`)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if got := node.Calls(tc.method) > before; got != tc.forwarded {
				t.Fatalf("forwarded=%v, want %v: %s", got, tc.forwarded, body)
			}
		})
	}
}

// The quickstart answers every host name that reaches its address: a host
// in the site address would make Caddy answer other names (localhost) with
// an empty 200 and fail their WebSocket handshakes.
func TestQuickstartAnswersEveryHostName(t *testing.T) {
	node := fakenode.Start(t)
	gw := runExample(t, "quickstart.Caddyfile", map[string]string{"ELARA_UPSTREAM": node.URL(), "ELARA_CHAIN": "devnet"})
	for _, host := range []string{"localhost", "127.0.0.1", "rpc.example.com", "localhost:" + itoa(gw.Port)} {
		t.Run(host, func(t *testing.T) {
			resp, body := sendSystemChain(t, http.MethodPost, gw.HTTP("/devnet"), host)
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"Fake Dev"`) {
				t.Fatalf("HTTP with Host %q: %d %s", host, resp.StatusCode, body)
			}
			hdr := http.Header{"Host": {host}}
			conn, resp, err := websocket.DefaultDialer.Dial(gw.WS("/devnet"), hdr)
			if err != nil {
				status := 0
				if resp != nil {
					status = resp.StatusCode
				}
				t.Fatalf("WebSocket with Host %q: %v (HTTP %d)", host, err, status)
			}
			defer conn.Close()
			if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":7,"method":"system_chain","params":[]}`)); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, msg, err := conn.ReadMessage()
			if err != nil || !strings.Contains(string(msg), `"Fake Dev"`) {
				t.Fatalf("WebSocket call with Host %q: %v %s", host, err, msg)
			}
		})
	}
}

// sendSystemChain sends a system_chain call with the given HTTP method
// (and Host header, when not empty) and returns the reply and its body.
func sendSystemChain(t *testing.T, method, url, host string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"system_chain","params":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

// Every path the quickstart serves answers JSON: no empty 200 anywhere.
func TestQuickstartUnmatchedPathsAnswerJSON(t *testing.T) {
	node := fakenode.Start(t)
	gw := runExample(t, "quickstart.Caddyfile", map[string]string{"ELARA_UPSTREAM": node.URL(), "ELARA_CHAIN": "devnet"})
	cases := []struct {
		name, method, path, want string
	}{
		{"root GET", http.MethodGet, "/", "this gateway serves /devnet"},
		{"root POST", http.MethodPost, "/", "this gateway serves /devnet"},
		{"favicon", http.MethodGet, "/favicon.ico", `Unknown chain \"favicon.ico\"`},
		{"unknown chain", http.MethodPost, "/kusama", `Unknown chain \"kusama\"; this gateway serves /devnet`},
		{"too deep", http.MethodPost, "/devnet/a/b", "Unknown path"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := sendSystemChain(t, tc.method, gw.HTTP(tc.path), "")
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("status %d, want 404: %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			var reply struct {
				Error struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(body, &reply); err != nil || reply.Error.Code != -32600 {
				t.Fatalf("not a JSON-RPC error: %v %s", err, body)
			}
			if !strings.Contains(string(body), tc.want) {
				t.Fatalf("body %s does not say %q", body, tc.want)
			}
		})
	}
}

// The examples meant for one machine listen on loopback only unless
// ELARA_BIND says otherwise: Caddy binds every interface by default.
func TestExamplesBindLoopbackUnlessTold(t *testing.T) {
	files, err := filepath.Glob("*.Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f == "production.Caddyfile" {
			continue // a public site on its domain: every interface
		}
		for _, tc := range []struct {
			name, bind, want string
		}{
			{"default", "", "127.0.0.1:"},
			{"ELARA_BIND", "0.0.0.0", "0.0.0.0:"},
		} {
			t.Run(f+"/"+tc.name, func(t *testing.T) {
				t.Setenv("ELARA_BIND", tc.bind)
				if tc.bind == "" {
					os.Unsetenv("ELARA_BIND")
				}
				for name, srv := range adaptServers(t, f) {
					if len(srv.Listen) == 0 {
						t.Fatalf("%s: no listen address", name)
					}
					for _, l := range srv.Listen {
						if !strings.HasPrefix(l, tc.want) {
							t.Fatalf("%s listens on %q, want %s*", name, l, tc.want)
						}
					}
					for _, r := range srv.Routes {
						for _, m := range r.Match {
							if _, ok := m["host"]; ok {
								t.Fatalf("%s matches on host %v: other host names would get an empty reply", name, string(m["host"]))
							}
						}
					}
				}
			})
		}
	}
}
