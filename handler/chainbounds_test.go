package handler_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// A chain's calls waiting for or at its nodes are bounded in total
// (max_pending_calls): a call over the bound is refused with -32029
// naming it, over HTTP and WebSocket, and never reaches a node; once the
// calls pending end, calls are served again.
func TestPendingCallsPerChain(t *testing.T) {
	node := startSlowNode(t, 100, 700*time.Millisecond)
	gw := startTrusting(t, testChainOpts+"\nrequest_timeout 10s\nmax_upstream_calls 2\nmax_pending_calls 4", "\telara_rpc", node.URL())
	var failed atomic.Int64
	stop := flood(t, gw.WS("/dev"), 4, "", &failed) // 2 at the node, 2 waiting
	waitFor(t, "the flood at the node", func() bool { return node.held.Load() == 2 })
	time.Sleep(50 * time.Millisecond) // the 2 others are queued
	sent := node.Calls(slowMethod)

	params := []any{"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"}
	t.Run("http", func(t *testing.T) {
		status, body := testgw.Post(t, gw.HTTP("/dev"), []byte(`{"jsonrpc":"2.0","id":7,"method":"`+slowMethod+`","params":["5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"]}`))
		r := decodeReply(t, body)
		if status != http.StatusTooManyRequests || string(r.ID) != "7" || r.ErrCode() != -32029 || !strings.Contains(r.Error.Message, "max_pending_calls") {
			t.Fatalf("got %d %s, want 429 and -32029 naming max_pending_calls", status, body)
		}
	})
	t.Run("ws", func(t *testing.T) {
		conn := dialFrom(t, gw.WS("/dev"), "198.51.100.9")
		r := rawCall(t, conn, 1, slowMethod, params)
		if r.ErrCode() != -32029 || !strings.Contains(r.Error.Message, "max_pending_calls") {
			t.Fatalf("got %s, want -32029 naming max_pending_calls", r.Raw)
		}
	})
	if n := node.Calls(slowMethod); n != sent {
		t.Fatalf("a refused call reached the node (%d calls, was %d)", n, sent)
	}
	stop()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d calls under the bound failed", n)
	}
	waitFor(t, "the pending calls to end", func() bool { return node.held.Load() == 0 })
	r := testgw.PostCall(t, gw.HTTP("/dev"), slowMethod, params)
	if r.Error != nil {
		t.Fatalf("after the flood: %s", r.Raw)
	}
}

// A chain's shared upstream subscriptions are bounded in total
// (max_shared_subscriptions): a subscribe while the bound is reached is
// refused with -32029 naming it and reaches no node; the connection stays
// open, and an ended subscription frees its place.
func TestSharedSubscriptionsPerChain(t *testing.T) {
	node := fakenode.Start(t)
	gw := startTrusting(t, testChainOpts+"\nmax_shared_subscriptions 2", "\telara_rpc", node.URL())
	a := dialFrom(t, gw.WS("/dev"), "198.51.100.10")
	b := dialFrom(t, gw.WS("/dev"), "198.51.100.11")
	key := func(i int) []any { return []any{[]string{fmt.Sprintf("0x%064x", i)}} }
	first := rawCall(t, a, 1, "state_subscribeStorage", key(1))
	if first.Error != nil {
		t.Fatalf("1st: %s", first.Raw)
	}
	if r := rawCall(t, b, 2, "state_subscribeStorage", key(2)); r.Error != nil {
		t.Fatalf("2nd: %s", r.Raw)
	}
	sent := node.Calls("state_subscribeStorage")
	r := rawCall(t, b, 3, "state_subscribeStorage", key(3))
	if r.ErrCode() != -32029 || !strings.Contains(r.Error.Message, "max_shared_subscriptions") {
		t.Fatalf("3rd: %s, want -32029 naming max_shared_subscriptions", r.Raw)
	}
	if n := node.Calls("state_subscribeStorage"); n != sent {
		t.Fatalf("the refused subscribe reached the node")
	}
	if r := rawCall(t, b, 4, "system_chain", []any{}); r.Error != nil {
		t.Fatalf("the connection should stay open: %s", r.Raw)
	}
	if r := rawCall(t, a, 5, "state_unsubscribeStorage", []any{first.Result}); r.Error != nil {
		t.Fatalf("unsubscribe: %s", r.Raw)
	}
	waitFor(t, "the freed place", func() bool {
		return rawCall(t, b, 6, "state_subscribeStorage", key(4)).Error == nil
	})
}

// The metrics show a chain's client calls at the nodes and waiting.
func TestClientCallsMetrics(t *testing.T) {
	node := startSlowNode(t, 100, 2*time.Second)
	gw := startTrusting(t, testChainOpts+"\nrequest_timeout 10s\nmax_upstream_calls 3", metricsSite, node.URL())
	var failed atomic.Int64
	stop := flood(t, gw.WS("/dev"), 5, "", &failed)
	defer stop()
	waitFor(t, "the flood at the node", func() bool { return node.held.Load() == 3 })
	waitFor(t, "the metrics", func() bool {
		m, _ := scrape(t, gw)
		return m[series("elara_upstream_client_calls", "chain", "dev", "state", "in_flight")] == 3 &&
			m[series("elara_upstream_client_calls", "chain", "dev", "state", "queued")] == 2
	})
}

// A reload that changes a chain's bounds applies them to the chain it
// keeps (its connections and shared subscriptions stay).
func TestChainBoundsFollowReload(t *testing.T) {
	node := fakenode.Start(t)
	gw := &testgw.Gateway{Port: testgw.FreePort(t)}
	load := func(bound int) {
		cf := gw.Caddyfile(chainBlock("dev", testChainOpts+fmt.Sprintf("\nmax_shared_subscriptions %d", bound), node.URL()), "\telara_rpc")
		testgw.Load(t, cf)
	}
	load(1)
	t.Cleanup(func() { stopCaddy(t) })
	key := func(i int) []any { return []any{[]string{fmt.Sprintf("0x%064x", i)}} }
	subscribe := func(ws *testgw.WSClient, i int) *testgw.Response {
		return ws.Call("state_subscribeStorage", key(i))
	}
	a := testgw.Dial(t, gw.WS("/dev"))
	if r := subscribe(a, 1); r.Error != nil {
		t.Fatalf("1st: %s", r.Raw)
	}
	if r := subscribe(a, 2); r.ErrCode() != -32029 {
		t.Fatalf("2nd with max_shared_subscriptions 1: %s", r.Raw)
	}
	load(3)
	b := testgw.Dial(t, gw.WS("/dev"))
	// a keeps its connection and its subscription across the reload, so
	// the chain holds 1 and b may add 2.
	for i := 3; i <= 4; i++ {
		if r := subscribe(b, i); r.Error != nil {
			t.Fatalf("after the reload to max_shared_subscriptions 3, subscription %d: %s", i-1, r.Raw)
		}
	}
	if r := subscribe(b, 5); r.ErrCode() != -32029 || !strings.Contains(r.Error.Message, "3") {
		t.Fatalf("4th after the reload: %s, want -32029 naming 3", r.Raw)
	}
	if r := a.Call("system_chain", []any{}); r.Error != nil {
		// A chain built anew would have closed it (1012).
		t.Fatalf("the client connected before the reload lost its connection: %s", r.Raw)
	}
}
