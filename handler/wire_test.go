package handler_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/gorilla/websocket"

	"github.com/elara-gateway/elara/handler"
	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// A batch over max_batch is refused whole, and the error names the
// setting to raise, over both transports.
func TestBatchOverLimitNamesTheSetting(t *testing.T) {
	gw, _ := start(t, `
	elara_rpc {
		max_batch 3
	}`)
	var calls []string
	for i := range 4 {
		calls = append(calls, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"system_chain"}`, i))
	}
	batch := []byte("[" + strings.Join(calls, ",") + "]")
	check := func(t *testing.T, r *testgw.Response) {
		t.Helper()
		if r.ErrCode() != -32600 || string(r.ID) != "null" {
			t.Fatalf("reply %s, want one -32600 with id null", r.Raw)
		}
		if !strings.Contains(r.Error.Message, "max_batch") || !strings.Contains(r.Error.Message, "3") {
			t.Fatalf("message %q does not name max_batch and its value 3", r.Error.Message)
		}
	}
	t.Run("http", func(t *testing.T) {
		status, body := testgw.Post(t, gw.HTTP("/dev"), batch)
		if status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
		r := decodeReply(t, body)
		check(t, &r)
	})
	t.Run("websocket", func(t *testing.T) {
		c := testgw.Dial(t, gw.WS("/dev"))
		c.SendRaw(batch)
		check(t, c.Wait("null", 5*time.Second))
		// The connection stays usable.
		if r := c.Call("system_chain", nil); string(r.Result) != `"Fake Dev"` {
			t.Fatalf("after the refused batch: %s", r.Raw)
		}
	})
}

// A WebSocket message over max_request_size closes the connection with
// 1009 and a reason the client can read, even while the client is still
// sending the message (the gateway must not reset the connection under
// its close frame).
func TestWebSocketOversizedMessageClosesWith1009(t *testing.T) {
	gw, _ := start(t, `
	elara_rpc {
		max_request_size 64KiB
	}`)
	cases := []struct {
		name string
		size int
	}{
		{"just over", 64<<10 + 1},
		{"far over, still being sent", 8 << 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, _, err := websocket.DefaultDialer.Dial(gw.WS("/dev"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			closed := make(chan error, 1)
			go func() {
				for {
					if _, _, err := conn.ReadMessage(); err != nil {
						closed <- err
						return
					}
				}
			}()
			prefix := `{"jsonrpc":"2.0","id":1,"method":"system_chain","params":["`
			msg := prefix + strings.Repeat("a", tc.size-len(prefix)-3) + `"]}`
			// The write may fail once the gateway has closed.
			_ = conn.WriteMessage(websocket.TextMessage, []byte(msg))
			select {
			case err := <-closed:
				ce, ok := err.(*websocket.CloseError)
				if !ok || ce.Code != websocket.CloseMessageTooBig {
					t.Fatalf("closed with %v, want close code 1009", err)
				}
				if !strings.Contains(ce.Text, "65536") {
					t.Fatalf("close reason %q does not name the limit", ce.Text)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("oversized message did not close the connection")
			}
		})
	}
}

// The warnings about an upstream timeout and about a client dropped for
// its message size name the chain, the method and the client's IP as
// Caddy sees it: behind a trusted proxy, the forwarded one.
func TestWarningsNameTheForwardedClientIP(t *testing.T) {
	node := fakenode.Start(t)
	node.SetDrop("system_name", true)
	gw := &testgw.Gateway{Port: testgw.FreePort(t)}
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	cf := gw.Caddyfile(chainBlock("dev", "request_timeout 300ms\nhealth_interval 200ms", node.URL()), `
	elara_rpc {
		max_request_size 64KiB
		send_queue 16
		write_timeout 2m
	}`)
	cf = strings.Replace(cf, "level {$ELARA_TEST_LOG:ERROR}", "output file "+logFile+"\n\t\tlevel WARN", 1)
	cf = strings.Replace(cf, "\telara {", "\tservers {\n\t\ttrusted_proxies static 127.0.0.1/8\n\t}\n\telara {", 1)
	testgw.Load(t, cf)
	t.Cleanup(func() { stopCaddy(t) })

	cases := []struct {
		name, msg, ip, method string
		do                    func(t *testing.T, hdr http.Header)
	}{
		{"upstream timeout over HTTP", "upstream call timed out", "203.0.113.7", "system_name", func(t *testing.T, hdr http.Header) {
			req, _ := http.NewRequest(http.MethodPost, gw.HTTP("/dev"), strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"system_name"}`))
			req.Header = hdr
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if r := decodeReply(t, body); r.ErrCode() != -32001 {
				t.Fatalf("reply %s, want -32001", body)
			}
		}},
		{"message over max_request_size over WebSocket", "closing websocket client: message over max_request_size", "203.0.113.8", "author_submitExtrinsic", func(t *testing.T, hdr http.Header) {
			conn, _, err := websocket.DefaultDialer.Dial(gw.WS("/dev"), hdr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic","params":["0x`+strings.Repeat("00", 40<<10)+`"]}`))
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					break
				}
			}
		}},
		{"slow client over WebSocket", "disconnecting slow websocket client", "203.0.113.9", "state_storage", func(t *testing.T, hdr http.Header) {
			conn, _, err := websocket.DefaultDialer.Dial(gw.WS("/dev"), hdr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// A client that never reads, with a small receive buffer.
			_ = conn.UnderlyingConn().(interface{ SetReadBuffer(int) error }).SetReadBuffer(32 << 10)
			key := "0x" + strings.Repeat("dd", 32)
			_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"state_subscribeStorage","params":[["`+key+`"]]}`))
			big := strings.Repeat("ab", 32<<10)
			for i := 0; i < 2000 && findLogLine(t, logFile, "disconnecting slow websocket client") == nil; i++ {
				node.Chain().SetStorage(key, fmt.Sprintf("0x%04x%s", i, big))
				time.Sleep(time.Millisecond)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := http.Header{}
			hdr.Set("X-Forwarded-For", tc.ip)
			tc.do(t, hdr)
			var line map[string]any
			waitFor(t, "the warning", func() bool {
				line = findLogLine(t, logFile, tc.msg)
				return line != nil
			})
			if line["level"] != "warn" || line["chain"] != "dev" || line["method"] != tc.method || line["client_ip"] != tc.ip {
				t.Fatalf("log line %v, want warn naming chain dev, method %s and client_ip %s", line, tc.method, tc.ip)
			}
		})
	}
}

// findLogLine returns the first JSON log line with the message msg.
func findLogLine(t *testing.T, file, msg string) map[string]any {
	t.Helper()
	data, _ := os.ReadFile(file)
	for _, l := range bytes.Split(data, []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(l, &m) == nil && m["msg"] == msg {
			return m
		}
	}
	return nil
}

func TestWSCompressionCaddyfile(t *testing.T) {
	on, off := true, false
	cases := []struct {
		input   string
		want    *bool
		wantErr string
	}{
		{"elara_rpc", nil, ""},
		{"elara_rpc {\n ws_compression\n}", &on, ""},
		{"elara_rpc {\n ws_compression on\n}", &on, ""},
		{"elara_rpc {\n ws_compression off\n}", &off, ""},
		{"elara_rpc {\n ws_compression yes\n}", nil, "yes"},
		{"elara_rpc {\n ws_compression on off\n}", nil, "wrong argument count"},
	}
	for _, tc := range cases {
		t.Run(tc.input, func(t *testing.T) {
			var h handler.Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), ":2") {
					t.Fatalf("error %v, want one on line 2 mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || (h.WSCompression == nil) != (tc.want == nil) || h.WSCompression != nil && *h.WSCompression != *tc.want {
				t.Fatalf("ws_compression %v (err %v), want %v", h.WSCompression, err, tc.want)
			}
		})
	}
}

// permessage-deflate is negotiated iff the client offers it and the
// handler has not turned it off; either way the client gets its replies
// intact.
func TestWebSocketCompressionNegotiation(t *testing.T) {
	node := fakenode.Start(t)
	gw := testgw.Start(t, chainBlock("dev", testChainOpts, node.URL()), `
	@plain path /plain/*
	handle @plain {
		uri strip_prefix /plain
		elara_rpc {
			ws_compression off
		}
	}
	handle {
		elara_rpc
	}`)
	_, metadataReply := testgw.Post(t, gw.HTTP("/dev"), []byte(metadataCall))
	cases := []struct {
		name      string
		path      string
		offer     bool
		negotiate bool
	}{
		{"default, offered", "/dev", true, true},
		{"default, not offered", "/dev", false, false},
		{"off, offered", "/plain/dev", true, false},
		{"off, not offered", "/plain/dev", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dialer := websocket.Dialer{EnableCompression: tc.offer}
			conn, resp, err := dialer.Dial(gw.WS(tc.path), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			got := strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
			if got != tc.negotiate {
				t.Fatalf("permessage-deflate negotiated %v (%q), want %v", got, resp.Header.Get("Sec-WebSocket-Extensions"), tc.negotiate)
			}
			// A compressed request, a large compressed reply, a small one.
			conn.EnableWriteCompression(true)
			for _, call := range []struct{ method, want string }{
				{"state_getMetadata", string(metadataReply)},
				{"system_chain", `{"jsonrpc":"2.0","id":1,"result":"Fake Dev"}`},
			} {
				if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"`+call.method+`","params":[]}`)); err != nil {
					t.Fatal(err)
				}
				_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, msg, err := conn.ReadMessage()
				if err != nil || string(msg) != call.want {
					t.Fatalf("%s: reply of %d bytes (%.60s), err %v; want %d bytes", call.method, len(msg), msg, err, len(call.want))
				}
			}
		})
	}
}
