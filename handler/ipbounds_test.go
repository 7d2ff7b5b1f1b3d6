package handler_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// rawCall sends one call on conn and returns its reply, skipping
// notifications.
func rawCall(t *testing.T, conn *websocket.Conn, id int, method string, params any) testgw.Response {
	t.Helper()
	p, _ := json.Marshal(params)
	msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, id, method, p)
	if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	for {
		r := decodeReply(t, readFrame(t, conn, 10*time.Second))
		if r.Method == "" && string(r.ID) == fmt.Sprint(id) {
			return r
		}
	}
}

// WebSocket connections are bounded per client IP (IPv6 by /64): one over
// the bound is refused with 429, Retry-After and a -32029 body naming the
// bound, other IPs are served, and a closed connection frees its place.
func TestConnectionsPerIP(t *testing.T) {
	node := fakenode.Start(t)
	gw := startTrusting(t, testChainOpts, "\telara_rpc {\n\t\tmax_connections_per_ip 3\n\t}", node.URL())
	dial := func(ip string) (*websocket.Conn, *http.Response, error) {
		hdr := http.Header{}
		hdr.Set("X-Forwarded-For", ip)
		conn, resp, err := websocket.DefaultDialer.Dial(gw.WS("/dev"), hdr)
		if conn != nil {
			t.Cleanup(func() { _ = conn.Close() })
		}
		return conn, resp, err
	}
	cases := []struct {
		name      string
		full      []string // addresses that fill the bound
		refused   string   // counted with them
		elsewhere string   // another client
	}{
		{"IPv4", []string{"198.51.100.1", "198.51.100.1", "198.51.100.1"}, "198.51.100.1", "198.51.100.2"},
		{"IPv6 by /64", []string{"2001:db8:0:1::1", "2001:db8:0:1::2", "2001:db8:0:1:ffff::3"}, "2001:db8:0:1::4", "2001:db8:0:2::1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var first *websocket.Conn
			for _, ip := range tc.full {
				conn, _, err := dial(ip)
				if err != nil {
					t.Fatalf("connection from %s under the bound: %v", ip, err)
				}
				if first == nil {
					first = conn
				}
			}
			_, resp, err := dial(tc.refused)
			if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("connection over the bound: err %v, resp %v; want 429", err, resp)
			}
			body, _ := io.ReadAll(resp.Body)
			r := decodeReply(t, body)
			if resp.Header.Get("Retry-After") == "" || r.ErrCode() != -32029 ||
				!strings.Contains(r.Error.Message, "max_connections_per_ip") || !strings.Contains(string(r.Error.Data), `"limit":"max_connections_per_ip"`) {
				t.Fatalf("refusal: Retry-After %q, body %s", resp.Header.Get("Retry-After"), body)
			}
			if _, _, err := dial(tc.elsewhere); err != nil {
				t.Fatalf("another client IP: %v", err)
			}
			_ = first.Close()
			waitFor(t, "a place freed by a closed connection", func() bool {
				conn, _, err := dial(tc.refused)
				if err == nil {
					_ = conn.Close()
				}
				return err == nil
			})
		})
	}
}

// Subscriptions are bounded per client IP over all its connections, each
// distinct storage-key subscription counted: a subscribe over the bound
// gets -32029 naming it, reaches no node, and the connection stays open.
func TestSubscriptionsPerIP(t *testing.T) {
	node := fakenode.Start(t)
	gw := startTrusting(t, testChainOpts, "\telara_rpc {\n\t\tmax_subscriptions_per_ip 3\n\t}", node.URL())
	a1 := dialFrom(t, gw.WS("/dev"), "198.51.100.7")
	a2 := dialFrom(t, gw.WS("/dev"), "198.51.100.7")
	b := dialFrom(t, gw.WS("/dev"), "198.51.100.8")
	key := func(i int) []any { return []any{[]string{fmt.Sprintf("0x%064x", i)}} }

	if r := rawCall(t, a1, 1, "chain_subscribeNewHeads", []any{}); r.Error != nil {
		t.Fatalf("1st: %s", r.Raw)
	}
	if r := rawCall(t, a1, 2, "state_subscribeStorage", key(1)); r.Error != nil {
		t.Fatalf("2nd: %s", r.Raw)
	}
	third := rawCall(t, a2, 3, "state_subscribeStorage", key(2))
	if third.Error != nil {
		t.Fatalf("3rd, on another connection: %s", third.Raw)
	}
	sent := node.Calls("state_subscribeStorage")
	r := rawCall(t, a2, 4, "state_subscribeStorage", key(3))
	if r.ErrCode() != -32029 || !strings.Contains(r.Error.Message, "max_subscriptions_per_ip") {
		t.Fatalf("4th: %s, want -32029 naming max_subscriptions_per_ip", r.Raw)
	}
	if n := node.Calls("state_subscribeStorage"); n != sent {
		t.Fatalf("the refused subscribe reached the node (%d calls, was %d)", n, sent)
	}
	if r := rawCall(t, a2, 5, "system_chain", []any{}); r.Error != nil {
		t.Fatalf("the connection should stay open and served: %s", r.Raw)
	}
	if r := rawCall(t, b, 6, "state_subscribeStorage", key(4)); r.Error != nil {
		t.Fatalf("another IP: %s", r.Raw)
	}
	// Ending one gives its place back.
	if r := rawCall(t, a2, 7, "state_unsubscribeStorage", []any{third.Result}); r.Error != nil {
		t.Fatalf("unsubscribe: %s", r.Raw)
	}
	if r := rawCall(t, a2, 8, "state_subscribeStorage", key(5)); r.Error != nil {
		t.Fatalf("after an unsubscribe: %s", r.Raw)
	}
	// A closed connection's subscriptions stop counting.
	_ = a1.Close()
	a3 := dialFrom(t, gw.WS("/dev"), "198.51.100.7")
	waitFor(t, "the closed connection's places", func() bool {
		return rawCall(t, a3, 9, "state_subscribeStorage", key(6)).Error == nil
	})
}
