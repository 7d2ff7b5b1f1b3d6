package handler_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/gorilla/websocket"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

func TestReloadKeepsConnectionsOfKeptNodesAndClosesRemovedOnes(t *testing.T) {
	a, b := fakenode.Start(t), fakenode.Start(t)
	gw := testgw.Start(t, chainBlock("dev", testChainOpts, a.URL()), "\telara_rpc")
	baseline(t, a, "chain_subscribeNewHeads")
	// The pool's connections are dialled in the background.
	waitFor(t, "the pool of 2 connections", func() bool { return a.Connections() == 2 })
	subscribes := a.Calls("chain_subscribeNewHeads")
	// Same nodes, another handler setting: connections are kept.
	testgw.Load(t, gw.Caddyfile(chainBlock("dev", testChainOpts, a.URL()), "\telara_rpc {\n\t\tmax_batch 10\n\t}"))
	awaitServing(t, gw)
	if r := testgw.PostCall(t, gw.HTTP("/dev"), "system_chain", nil); r.Error != nil {
		t.Fatalf("after reload: %s", r.Raw)
	}
	if a.Connections() != 2 || a.Calls("chain_subscribeNewHeads") != subscribes {
		t.Fatalf("reload reconnected a kept node: %d connections, %d subscribes (was %d)", a.Connections(), a.Calls("chain_subscribeNewHeads"), subscribes)
	}
	// Node a replaced by b: a's connections close, b serves.
	testgw.Load(t, gw.Caddyfile(chainBlock("dev", testChainOpts, b.URL()), "\telara_rpc"))
	waitFor(t, "removed node's connections to close", func() bool { return a.Connections() == 0 })
	awaitServing(t, gw)
	before := b.Calls("system_chain")
	if r := testgw.PostCall(t, gw.HTTP("/dev"), "system_chain", nil); r.Error != nil || b.Calls("system_chain") != before+1 {
		t.Fatalf("new node not serving: %s", r.Raw)
	}
}

// A client WebSocket stays open across a reload that keeps its chain: its
// subscription goes on with every head once, in order, from the same
// upstream subscription, and its calls after the reload follow the new
// config (here a method the reload denies).
func TestReloadKeepsClientWebSockets(t *testing.T) {
	gw, node := start(t, "")
	c := testgw.Dial(t, gw.WS("/dev"))
	c.Subscribe("chain_subscribeNewHeads", nil)
	if r := c.Call("system_chain", nil); r.Error != nil {
		t.Fatalf("before the reload: %s", r.Raw)
	}
	subscribes := node.Calls("chain_subscribeNewHeads")

	// Heads keep coming while the config is reloaded.
	stop := make(chan struct{})
	produced := make(chan uint64, 1)
	go func() {
		var last uint64
		defer func() { produced <- last }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			last = node.Chain().NewBlock().Number
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(50 * time.Millisecond)
	testgw.Load(t, gw.Caddyfile(chainBlock("dev", testChainOpts, node.URL()), "\telara_rpc {\n\t\tdeny system_chain\n\t}"))
	time.Sleep(50 * time.Millisecond)
	close(stop)
	last := <-produced

	var seen []uint64
	for len(seen) == 0 || seen[len(seen)-1] < last {
		seen = append(seen, headNumber(t, c.Next(5*time.Second)))
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] != seen[i-1]+1 {
			t.Fatalf("heads not gapless across the reload: %d then %d (all: %v)", seen[i-1], seen[i], seen)
		}
	}
	if r := c.Call("system_chain", nil); r.ErrCode() != -32601 {
		t.Fatalf("the method denied by the reload: %s, want -32601", r.Raw)
	}
	if r := c.Call("system_name", nil); r.Error != nil {
		t.Fatalf("an allowed method after the reload: %s", r.Raw)
	}
	select {
	case err := <-c.Closed:
		t.Fatalf("the client was closed: %v", err)
	default:
	}
	if n := node.Calls("chain_subscribeNewHeads"); n != subscribes {
		t.Fatalf("the reload reopened the upstream subscription: %d subscribes, was %d", n, subscribes)
	}
}

// A reload that removes a client's chain closes the client with 1012 and
// says why; so does one after which no single elara_rpc serves the same
// chains, as there is no telling which one the client belongs to. (A
// reload that changes the chain keeps it: reload_keepchain_test.go.)
func TestReloadClosesClientsItCannotKeep(t *testing.T) {
	same := func(url string) string { return chainBlock("dev", testChainOpts, url) }
	cases := []struct {
		name   string
		chains func(url string) string
		site   string
		reason string
	}{
		{"chain removed", func(url string) string { return chainBlock("other", testChainOpts, url) }, "\telara_rpc",
			"chain dev is no longer served"},
		{"two handlers serve the same chains", same, "\t@other path /other/*\n\telara_rpc @other\n\telara_rpc",
			"gateway configuration reloaded"},
		{"the handler's chains changed", same, "\telara_rpc dev", "gateway configuration reloaded"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gw, node := start(t, "")
			c := testgw.Dial(t, gw.WS("/dev"))
			c.Subscribe("chain_subscribeNewHeads", nil)
			testgw.Load(t, gw.Caddyfile(tc.chains(node.URL()), tc.site))
			select {
			case err := <-c.Closed:
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != websocket.CloseServiceRestart || ce.Text != tc.reason {
					t.Fatalf("closed with %v, want 1012 %q", err, tc.reason)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the client was not closed")
			}
		})
	}
}

func TestNoGoroutineLeakAcrossReloads(t *testing.T) {
	a, b := fakenode.Start(t), fakenode.Start(t)
	settle := func() int {
		time.Sleep(50 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	before := settle()
	gw := &testgw.Gateway{Port: testgw.FreePort(t)}
	for i := range 6 {
		url := a.URL()
		if i%2 == 1 {
			url = b.URL()
		}
		testgw.Load(t, gw.Caddyfile(chainBlock("dev", testChainOpts, url), "\telara_rpc"))
		awaitServing(t, gw)
		c := testgw.Dial(t, gw.WS("/dev"))
		c.Subscribe("chain_subscribeNewHeads", nil)
		c.Subscribe("state_subscribeRuntimeVersion", nil)
		if r := c.Call("system_chain", nil); r.Error != nil {
			t.Fatal(string(r.Raw))
		}
		c.Conn.Close()
	}
	stopCaddy(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		now := settle()
		if now <= before {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines: %d before, %d after stop\n%s", before, now, buf[:n])
		}
	}
	if a.Connections()+b.Connections() != 0 {
		t.Fatalf("nodes still connected after stop: %d, %d", a.Connections(), b.Connections())
	}
}

// awaitServing waits out Caddy's listener hand-over after a reload: a
// connection accepted by the old server in that instant is closed.
func awaitServing(t *testing.T, gw *testgw.Gateway) {
	t.Helper()
	waitFor(t, "the reloaded server", func() bool {
		resp, err := http.Post(gw.HTTP("/dev"), "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"system_name"}`))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// Shared subscriptions outlive a config: clients that left before a
// reload and come back within the grace period find the same upstream
// subscription.
func TestReloadKeepsSharedSubscriptions(t *testing.T) {
	node := fakenode.Start(t)
	opts := strings.Replace(testChainOpts, "subscription_grace 0s", "subscription_grace 10s", 1)
	gw := testgw.Start(t, chainBlock("dev", opts, node.URL()), "\telara_rpc")
	c := testgw.Dial(t, gw.WS("/dev"))
	c.Subscribe("state_subscribeRuntimeVersion", nil)
	waitFor(t, "the upstream subscription", func() bool { return node.ActiveSubscriptions("state_subscribeRuntimeVersion") == 1 })
	subscribes := node.Calls("state_subscribeRuntimeVersion")
	c.Conn.Close()
	testgw.Load(t, gw.Caddyfile(chainBlock("dev", opts, node.URL()), "\telara_rpc {\n\t\tmax_batch 10\n\t}"))
	awaitServing(t, gw)
	again := testgw.Dial(t, gw.WS("/dev"))
	again.Subscribe("state_subscribeRuntimeVersion", nil)
	if r := again.Next(5 * time.Second); !bytes.Contains(r.Params.Result, []byte(`"specVersion"`)) {
		t.Fatalf("the returning client did not get the current version: %s", r.Raw)
	}
	if node.ActiveSubscriptions("state_subscribeRuntimeVersion") != 1 || node.Calls("state_subscribeRuntimeVersion") != subscribes {
		t.Fatalf("the reload reopened the shared subscription: %d active, %d subscribes (was %d)",
			node.ActiveSubscriptions("state_subscribeRuntimeVersion"), node.Calls("state_subscribeRuntimeVersion"), subscribes)
	}
}

// When Caddy stops for good, clients kept across reloads are closed with
// 1012 and nothing of theirs keeps running.
func TestStopClosesClientsKeptAcrossReloads(t *testing.T) {
	node := fakenode.Start(t)
	settle := func() int {
		time.Sleep(50 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	before := settle()
	gw := &testgw.Gateway{Port: testgw.FreePort(t)}
	testgw.Load(t, gw.Caddyfile(chainBlock("dev", testChainOpts, node.URL()), "\telara_rpc"))
	c := testgw.Dial(t, gw.WS("/dev"))
	c.Subscribe("chain_subscribeNewHeads", nil)
	for i := range 3 {
		testgw.Load(t, gw.Caddyfile(chainBlock("dev", testChainOpts, node.URL()), fmt.Sprintf("\telara_rpc {\n\t\tmax_batch %d\n\t}", 10+i)))
	}
	if r := c.Call("system_name", nil); r.Error != nil {
		t.Fatalf("after the reloads: %s", r.Raw)
	}
	stopCaddy(t)
	select {
	case err := <-c.Closed:
		if !websocket.IsCloseError(err, websocket.CloseServiceRestart) {
			t.Fatalf("closed with %v, want 1012", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client was not closed when Caddy stopped")
	}
	deadline := time.Now().Add(10 * time.Second)
	for now := settle(); now > before; now = settle() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines: %d before, %d after stop\n%s", before, now, buf[:n])
		}
	}
}

// A reload that fails leaves the running config, and its clients, as
// they were.
func TestFailedReloadKeepsClients(t *testing.T) {
	gw, node := start(t, "")
	c := testgw.Dial(t, gw.WS("/dev"))
	c.Subscribe("chain_subscribeNewHeads", nil)
	// The handler provisions, then the config fails validation.
	cfg, err := testgw.Adapt(gw.Caddyfile(chainBlock("dev", testChainOpts, node.URL()), "\telara_rpc {\n\t\tdeny system_chain\n\t}\n\telara_rpc nochain"))
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err == nil {
		t.Fatal("the broken config loaded")
	}
	h := node.Chain().NewBlock()
	for r := c.Next(5 * time.Second); headNumber(t, r) < h.Number; r = c.Next(5 * time.Second) {
	}
	if r := c.Call("system_chain", nil); r.Error != nil {
		t.Fatalf("the failed reload's policy applies: %s", r.Raw)
	}
}
