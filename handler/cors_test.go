package handler_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/gorilla/websocket"

	"github.com/elara-gateway/elara/handler"
	"github.com/elara-gateway/elara/internal/testgw"
)

const (
	listedOrigin  = "https://app.example.com"
	foreignOrigin = "https://evil.example.net"
)

// corsSite serves the default handler (every origin) on /{chain} and one
// with an origin list under /listed/{chain}, in one gateway.
const corsSite = `	@listed path /listed/*
	handle @listed {
		uri strip_prefix /listed
		elara_rpc {
			# scheme and host without case, default port written: as browsers send it
			origins HTTPS://App.Example.com:443 http://127.0.0.1:3000
		}
	}
	handle {
		elara_rpc
	}`

// corsReply sends one request and returns the response with its body read.
func corsReply(t *testing.T, method, url, origin string, hdr map[string]string, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}

func hasToken(values []string, token string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// A browser's preflight is answered 204 with what the browser needs to
// send the real request; a foreign origin, with a list, gets no allow
// header and a 403.
func TestCORSPreflight(t *testing.T) {
	gw, node := start(t, corsSite)
	cases := []struct {
		name, path, origin string
		requestHeaders     string
		status             int
		allowOrigin        string // "" means the header must be absent
		vary               bool
		allowHeaders       []string
	}{
		{"default, any origin", "/dev", foreignOrigin, "content-type", 204, "*", false, []string{"Content-Type"}},
		{"default, extra headers echoed", "/dev", foreignOrigin, "Content-Type, X-Api-Key,authorization", 204, "*", false, []string{"Content-Type", "X-Api-Key", "authorization"}},
		{"default, no headers asked", "/dev", foreignOrigin, "", 204, "*", false, []string{"Content-Type"}},
		{"default, malformed header names dropped", "/dev", foreignOrigin, "x-ok, bad header, x\u00e9", 204, "*", false, []string{"Content-Type", "x-ok"}},
		{"default, unknown chain", "/nochain", foreignOrigin, "content-type", 204, "*", false, []string{"Content-Type"}},
		{"default, project path", "/dev/0123456789abcdef0123456789abcdef", foreignOrigin, "content-type", 204, "*", false, []string{"Content-Type"}},
		{"default, health path", "/dev/health", foreignOrigin, "", 204, "*", false, []string{"Content-Type"}},
		{"list, listed origin", "/listed/dev", listedOrigin, "content-type", 204, listedOrigin, true, []string{"Content-Type"}},
		{"list, second listed origin", "/listed/dev", "http://127.0.0.1:3000", "content-type", 204, "http://127.0.0.1:3000", true, []string{"Content-Type"}},
		{"list, foreign origin", "/listed/dev", foreignOrigin, "content-type", 403, "", true, nil},
		{"list, same host other port", "/listed/dev", "http://127.0.0.1:3001", "content-type", 403, "", true, nil},
		{"list, other scheme", "/listed/dev", "http://app.example.com", "content-type", 403, "", true, nil},
		{"list, literal null origin", "/listed/dev", "null", "content-type", 403, "", true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Access-Control-Request-Method": "POST"}
			if tc.requestHeaders != "" {
				hdr["Access-Control-Request-Headers"] = tc.requestHeaders
			}
			resp, body := corsReply(t, http.MethodOptions, gw.HTTP(tc.path), tc.origin, hdr, "")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.allowOrigin {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tc.allowOrigin)
			}
			if got := hasToken(resp.Header.Values("Vary"), "Origin"); got != tc.vary {
				t.Errorf("Vary %q: Origin listed %v, want %v", resp.Header.Values("Vary"), got, tc.vary)
			}
			if tc.status == http.StatusForbidden {
				if r := decodeReply(t, body); r.ErrCode() != -32600 || string(r.ID) != "null" {
					t.Errorf("body %s, want a JSON-RPC error -32600 with id null", body)
				}
				if resp.Header.Get("Access-Control-Allow-Methods") != "" {
					t.Errorf("refused preflight allows methods %q", resp.Header.Get("Access-Control-Allow-Methods"))
				}
				return
			}
			if len(body) != 0 {
				t.Errorf("preflight answered with a body: %q", body)
			}
			for _, m := range []string{"POST", "GET", "OPTIONS"} {
				if !hasToken(resp.Header.Values("Access-Control-Allow-Methods"), m) {
					t.Errorf("Access-Control-Allow-Methods %q lacks %s", resp.Header.Get("Access-Control-Allow-Methods"), m)
				}
			}
			got := resp.Header.Values("Access-Control-Allow-Headers")
			for _, h := range tc.allowHeaders {
				if !hasToken(got, h) {
					t.Errorf("Access-Control-Allow-Headers %q lacks %s", got, h)
				}
			}
			if n := len(strings.Split(strings.Join(got, ","), ",")); n != len(tc.allowHeaders) {
				t.Errorf("Access-Control-Allow-Headers %q, want exactly %v", got, tc.allowHeaders)
			}
			if resp.Header.Get("Access-Control-Max-Age") == "" {
				t.Error("no Access-Control-Max-Age: browsers would preflight every call")
			}
		})
	}
	if n := node.Calls("system_name") + node.Calls("system_chain"); n != 0 {
		t.Errorf("preflights reached the node (%d calls)", n)
	}
}

// Every reply, errors included, carries the allow header for an allowed
// origin, so a dApp reads the JSON-RPC error instead of a CORS failure.
func TestCORSHeadersOnReplies(t *testing.T) {
	gw, _ := start(t, corsSite)
	call := `{"jsonrpc":"2.0","id":1,"method":"system_chain","params":[]}`
	huge := `{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic","params":["0x` + strings.Repeat("00", 5<<20) + `"]}`
	replies := []struct {
		name, method, path, body string
		status                   int
	}{
		{"success", http.MethodPost, "/dev", call, 200},
		{"batch", http.MethodPost, "/dev", "[" + call + "," + call + "]", 200},
		{"notification only", http.MethodPost, "/dev", `{"jsonrpc":"2.0","method":"system_chain"}`, 204},
		{"parse error", http.MethodPost, "/dev", `{"jsonrpc":`, 200},
		{"denied method", http.MethodPost, "/dev", `{"jsonrpc":"2.0","id":1,"method":"author_rotateKeys"}`, 200},
		{"unknown chain", http.MethodPost, "/nochain", call, 404},
		{"bad project", http.MethodPost, "/dev/xyz", call, 404},
		{"body over the limit", http.MethodPost, "/dev", huge, 413},
		{"GET without upgrade", http.MethodGet, "/dev", "", 405},
		{"PUT", http.MethodPut, "/dev", call, 405},
		{"health", http.MethodGet, "/dev/health", "", 200},
	}
	modes := []struct {
		name, prefix, origin string
		allowOrigin          string
		vary                 bool
	}{
		{"default, browser", "", foreignOrigin, "*", false},
		{"default, no origin", "", "", "*", false},
		{"list, listed origin", "/listed", listedOrigin, listedOrigin, true},
		{"list, second listed origin", "/listed", "http://127.0.0.1:3000", "http://127.0.0.1:3000", true},
		{"list, no origin", "/listed", "", "", true},
	}
	for _, m := range modes {
		for _, rc := range replies {
			t.Run(m.name+"/"+rc.name, func(t *testing.T) {
				resp, body := corsReply(t, rc.method, gw.HTTP(m.prefix+rc.path), m.origin, nil, rc.body)
				if resp.StatusCode != rc.status {
					t.Fatalf("status %d, want %d: %.200s", resp.StatusCode, rc.status, body)
				}
				if got := resp.Header.Get("Access-Control-Allow-Origin"); got != m.allowOrigin {
					t.Errorf("Access-Control-Allow-Origin %q, want %q", got, m.allowOrigin)
				}
				if got := len(resp.Header.Values("Access-Control-Allow-Origin")); got > 1 {
					t.Errorf("%d Access-Control-Allow-Origin headers: browsers reject that", got)
				}
				if got := hasToken(resp.Header.Values("Vary"), "Origin"); got != m.vary {
					t.Errorf("Vary %q: Origin listed %v, want %v", resp.Header.Values("Vary"), got, m.vary)
				}
			})
		}
	}
}

// With an origin list, a browser on another origin is refused before
// anything reaches a node: POSTs and WebSocket upgrades get 403 with a
// JSON-RPC error body. Listed origins and clients sending no Origin are
// served; without a list every origin is.
func TestCORSOriginList(t *testing.T) {
	gw, node := start(t, corsSite)
	call := `{"jsonrpc":"2.0","id":7,"method":"system_name","params":[]}`
	cases := []struct {
		name, path, origin string
		served             bool
	}{
		{"list, foreign origin", "/listed/dev", foreignOrigin, false},
		{"list, foreign origin, project path", "/listed/dev/0123456789abcdef0123456789abcdef", foreignOrigin, false},
		{"list, origin with a path is not an origin", "/listed/dev", listedOrigin + "/", false},
		{"list, prefix of a listed origin", "/listed/dev", "https://app.example.co", false},
		{"list, listed origin", "/listed/dev", listedOrigin, true},
		{"list, listed origin in upper case", "/listed/dev", "HTTPS://APP.EXAMPLE.COM", true},
		{"list, no origin", "/listed/dev", "", true},
		{"default, foreign origin", "/dev", foreignOrigin, true},
		{"default, no origin", "/dev", "", true},
	}
	for _, tc := range cases {
		t.Run("POST/"+tc.name, func(t *testing.T) {
			node.ResetCounters()
			resp, body := corsReply(t, http.MethodPost, gw.HTTP(tc.path), tc.origin, nil, call)
			r := decodeReply(t, body)
			if tc.served {
				if resp.StatusCode != 200 || r.Error != nil || string(r.ID) != "7" || node.Calls("system_name") != 1 {
					t.Fatalf("not served: status %d, body %s, node calls %d", resp.StatusCode, body, node.Calls("system_name"))
				}
				return
			}
			if resp.StatusCode != http.StatusForbidden || r.ErrCode() != -32600 || r.Error.Message == "" {
				t.Fatalf("status %d, body %s; want 403 with a JSON-RPC error", resp.StatusCode, body)
			}
			if resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("refused reply allows origin %q", resp.Header.Get("Access-Control-Allow-Origin"))
			}
			if n := node.Calls("system_name"); n != 0 {
				t.Errorf("refused call reached the node %d times", n)
			}
		})
		t.Run("WebSocket/"+tc.name, func(t *testing.T) {
			hdr := http.Header{}
			if tc.origin != "" {
				hdr.Set("Origin", tc.origin)
			}
			conn, resp, err := websocket.DefaultDialer.Dial(gw.WS(tc.path), hdr)
			if tc.served {
				if err != nil {
					t.Fatalf("upgrade refused: %v", err)
				}
				defer conn.Close()
				if err := conn.WriteMessage(websocket.TextMessage, []byte(call)); err != nil {
					t.Fatal(err)
				}
				_, msg, err := conn.ReadMessage()
				if err != nil {
					t.Fatal(err)
				}
				if r := decodeReply(t, msg); r.Error != nil || string(r.ID) != "7" {
					t.Fatalf("reply %s", msg)
				}
				return
			}
			if err == nil {
				conn.Close()
				t.Fatal("upgrade from a foreign origin accepted")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("dial error %v, response %+v; want HTTP 403", err, resp)
			}
			body, _ := io.ReadAll(resp.Body)
			if r := decodeReply(t, body); r.ErrCode() != -32600 || string(r.ID) != "null" {
				t.Errorf("body %s, want a JSON-RPC error -32600 with id null", body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestOriginsCaddyfile(t *testing.T) {
	cases := []struct {
		name  string
		input string
		want  []string
	}{
		{"one", "elara_rpc {\n origins https://app.example.com\n}", []string{"https://app.example.com"}},
		{"several, repeated lines add up", "elara_rpc {\n origins https://a.example http://localhost:3000\n origins chrome-extension://abcdef\n}",
			[]string{"https://a.example", "http://localhost:3000", "chrome-extension://abcdef"}},
		{"every origin", "elara_rpc {\n origins *\n}", []string{"*"}},
		{"IPv6 and port", "elara_rpc {\n origins http://[::1]:8000\n}", []string{"http://[::1]:8000"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h handler.Handler
			if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input)); err != nil {
				t.Fatalf("UnmarshalCaddyfile: %v", err)
			}
			if got, want := configOf(t, &h), configOf(t, &handler.Handler{Origins: tc.want}); got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

// A JSON config is checked when it is loaded: a bad origin list fails the
// load and the error names the field.
func TestOriginsJSONConfigChecked(t *testing.T) {
	testgw.Isolate()
	port := testgw.FreePort(t)
	cases := []struct {
		origins string
		ok      bool
	}{
		{`["https://a.example", "HTTP://LOCALHOST:3000"]`, true},
		{`["*"]`, true},
		{`["https://a.example/path"]`, false},
		{`["*","https://a.example"]`, false},
		{`["a.example"]`, false},
	}
	for _, tc := range cases {
		t.Run(tc.origins, func(t *testing.T) {
			cfg := fmt.Sprintf(`{"admin":{"disabled":true},"apps":{"elara":{},"http":{"servers":{"s":{"listen":["127.0.0.1:%d"],
				"routes":[{"handle":[{"handler":"elara_rpc","origins":%s}]}]}}}}}`, port, tc.origins)
			err := caddy.Load([]byte(cfg), true)
			if err == nil {
				stopCaddy(t)
			}
			if tc.ok {
				if err != nil {
					t.Fatalf("valid origins refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("origins %s accepted", tc.origins)
			}
			if !strings.Contains(err.Error(), "origins:") {
				t.Errorf("error %q does not name the field", err)
			}
		})
	}
}
