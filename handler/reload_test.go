package handler_test

import (
	"bytes"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

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

func TestReloadClosesClientWebSocketsWithServiceRestart(t *testing.T) {
	gw, node := start(t, "")
	c := testgw.Dial(t, gw.WS("/dev"))
	c.Subscribe("chain_subscribeNewHeads", nil)
	testgw.Load(t, gw.Caddyfile(chainBlock("dev", testChainOpts, node.URL()), "\telara_rpc {\n\t\tmax_batch 10\n\t}"))
	select {
	case err := <-c.Closed:
		if !strings.Contains(err.Error(), "1012") {
			t.Fatalf("closed with %v, want 1012 (service restart)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("old config's client was not closed")
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

// Shared subscriptions outlive a config: clients of the old config are
// told to reconnect, and those that come back within the grace period
// find the same upstream subscription.
func TestReloadKeepsSharedSubscriptions(t *testing.T) {
	node := fakenode.Start(t)
	opts := strings.Replace(testChainOpts, "subscription_grace 0s", "subscription_grace 10s", 1)
	gw := testgw.Start(t, chainBlock("dev", opts, node.URL()), "\telara_rpc")
	c := testgw.Dial(t, gw.WS("/dev"))
	c.Subscribe("state_subscribeRuntimeVersion", nil)
	waitFor(t, "the upstream subscription", func() bool { return node.ActiveSubscriptions("state_subscribeRuntimeVersion") == 1 })
	subscribes := node.Calls("state_subscribeRuntimeVersion")
	testgw.Load(t, gw.Caddyfile(chainBlock("dev", opts, node.URL()), "\telara_rpc {\n\t\tmax_batch 10\n\t}"))
	select {
	case <-c.Closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the old config's client was not closed")
	}
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
