package handler_test

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// keepEnv is a gateway on chain dev, whose nodes a and b share one
// chain, with one client subscribed to new heads.
type keepEnv struct {
	gw    *testgw.Gateway
	chain *fakenode.Chain
	a, b  *fakenode.Node
	c     *testgw.WSClient
}

// devBlock is the elara block for chain dev on urls with the chain
// options opts and the cache block cache ("" is the default cache: on).
func devBlock(opts, cache string, urls ...string) string {
	return strings.Replace(chainBlock("dev", opts, urls...), "\t\tcache off\n", cache, 1)
}

const (
	cacheOff     = "\t\tcache off\n"
	cacheDefault = ""
	// cacheNoStorage caches everything but state_getStorage.
	cacheNoStorage = "\t\tcache {\n\t\t\tnocache state_getStorage\n\t\t}\n"
	// shortTimeout is testChainOpts with a request timeout shorter than
	// the delay slowCall meets.
	shortTimeout = "request_timeout 1s\nhealth_interval 200ms\nsubscription_grace 0s"
	// longOptions change every chain option but the health interval
	// (which is the nodes'): request timeout, readiness rules, grace.
	longOptions = "request_timeout 5s\nhealth_interval 200ms\nmax_lag 3\nhead_timeout 30s\nsubscription_grace 1s"
)

// storageCalls makes two identical calls of state_getStorage at a block
// hash, cacheable for as long as the cache keeps entries, and returns how
// many of them reached node n.
func (e *keepEnv) storageCalls(t *testing.T, n *fakenode.Node) int {
	t.Helper()
	before := n.Calls("state_getStorage")
	hash := e.chain.Best().Hash
	for range 2 {
		if r := e.c.Call("state_getStorage", []any{"0x0102", hash}); r.Error != nil || string(r.Result) != `"0xaa"` {
			t.Fatalf("state_getStorage: %s", r.Raw)
		}
	}
	return n.Calls("state_getStorage") - before
}

// slowCall calls system_name, which node a answers after 2.5s, and
// returns the error code (0: answered).
func (e *keepEnv) slowCall(t *testing.T) int {
	t.Helper()
	e.a.SetDelay("system_name", 2500*time.Millisecond)
	defer e.a.SetDelay("system_name", 0)
	return e.c.Call("system_name", nil).ErrCode()
}

// served reports which node answers a client call.
func (e *keepEnv) served(t *testing.T) *fakenode.Node {
	t.Helper()
	a, b := e.a.Calls("system_chain"), e.b.Calls("system_chain")
	if r := e.c.Call("system_chain", nil); r.Error != nil {
		t.Fatalf("system_chain: %s", r.Raw)
	}
	switch {
	case e.a.Calls("system_chain") > a:
		return e.a
	case e.b.Calls("system_chain") > b:
		return e.b
	}
	t.Fatal("no node answered system_chain")
	return nil
}

// A reload that changes a kept chain's cache block, options or nodes
// keeps its clients: a subscribed WebSocket stays open, gets every head
// once and in order across the reload, and its calls after the reload
// follow the new config (the new cache behaviour, the new request
// timeout, the new node).
func TestReloadKeepsChainWhoseConfigChanged(t *testing.T) {
	cases := []struct {
		name          string
		before, after func(a, b string) string
		// check runs before (after=false) and after the reload.
		check func(t *testing.T, e *keepEnv, after bool)
	}{
		{"cache turned on",
			func(a, _ string) string { return devBlock(testChainOpts, cacheOff, a) },
			func(a, _ string) string { return devBlock(testChainOpts, cacheDefault, a) },
			storageCallsReaching(2, 1)},
		{"cache turned off",
			func(a, _ string) string { return devBlock(testChainOpts, cacheDefault, a) },
			func(a, _ string) string { return devBlock(testChainOpts, cacheOff, a) },
			storageCallsReaching(1, 2)},
		{"method no longer cached",
			func(a, _ string) string { return devBlock(testChainOpts, cacheDefault, a) },
			func(a, _ string) string { return devBlock(testChainOpts, cacheNoStorage, a) },
			storageCallsReaching(1, 2)},
		{"chain options changed",
			func(a, _ string) string { return devBlock(shortTimeout, cacheOff, a) },
			func(a, _ string) string { return devBlock(longOptions, cacheOff, a) },
			func(t *testing.T, e *keepEnv, after bool) {
				// Answered only under the new, longer request timeout.
				if got := e.slowCall(t); (got == 0) != after {
					t.Fatalf("after the reload %v: a call the node answers in 2.5s got code %d", after, got)
				}
			}},
		{"node replaced",
			func(a, _ string) string { return devBlock(testChainOpts, cacheOff, a) },
			func(_, b string) string { return devBlock(testChainOpts, cacheOff, b) },
			func(t *testing.T, e *keepEnv, after bool) {
				if want := map[bool]*fakenode.Node{false: e.a, true: e.b}[after]; e.served(t) != want {
					t.Fatalf("after the reload %v: the other node answered", after)
				}
				if after {
					waitFor(t, "the removed node's connections to close", func() bool { return e.a.Connections() == 0 })
				}
			}},
		{"node added",
			func(a, _ string) string { return devBlock(testChainOpts, cacheOff, a) },
			func(a, b string) string { return devBlock(testChainOpts, cacheOff, a, b) },
			func(t *testing.T, e *keepEnv, after bool) {
				if !after {
					return
				}
				waitFor(t, "the new node to serve", func() bool { return e.served(t) == e.b })
			}},
		{"node options changed",
			func(a, _ string) string { return devBlock(testChainOpts, cacheOff, a) },
			func(a, _ string) string {
				return strings.Replace(devBlock(testChainOpts, cacheOff, a), "pool 2", "pool 3", 1)
			},
			func(t *testing.T, e *keepEnv, after bool) {
				if after {
					// The old node's 2 connections close, the new one's 3 stay.
					waitFor(t, "the new node's connections alone", func() bool { return e.a.Connections() == 3 })
				}
				if e.served(t) != e.a {
					t.Fatal("node a does not answer")
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chain := fakenode.NewChain()
			e := &keepEnv{chain: chain, a: fakenode.Start(t, fakenode.WithChain(chain)), b: fakenode.Start(t, fakenode.WithChain(chain))}
			chain.SetStorage("0x0102", "0xaa")
			chain.NewBlock()
			e.gw = testgw.Start(t, tc.before(e.a.URL(), e.b.URL()), "\telara_rpc")
			e.c = testgw.Dial(t, e.gw.WS("/dev"))
			e.c.Subscribe("chain_subscribeNewHeads", nil)
			tc.check(t, e, false)
			headsAcrossReload(t, e.c, chain, func() {
				testgw.Load(t, e.gw.Caddyfile(tc.after(e.a.URL(), e.b.URL()), "\telara_rpc"))
			})
			tc.check(t, e, true)
			// Heads still come, once each.
			h := chain.NewBlock()
			for r := e.c.Next(5 * time.Second); headNumber(t, r) < h.Number; r = e.c.Next(5 * time.Second) {
			}
			select {
			case err := <-e.c.Closed:
				t.Fatalf("the client was closed: %v", err)
			default:
			}
		})
	}
}

// headsAcrossReload makes heads while reload runs and checks the client
// gets every one once and in order, from its first notification on.
func headsAcrossReload(t *testing.T, c *testgw.WSClient, chain *fakenode.Chain, reload func()) {
	t.Helper()
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
			last = chain.NewBlock().Number
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(50 * time.Millisecond)
	reload()
	time.Sleep(50 * time.Millisecond)
	close(stop)
	last := <-produced
	var seen []uint64
	for len(seen) == 0 || seen[len(seen)-1] < last {
		seen = append(seen, headNumber(t, c.Next(5*time.Second)))
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] != seen[i-1]+1 {
			t.Fatalf("heads across the reload: %d then %d (all: %v)", seen[i-1], seen[i], seen)
		}
	}
}

// goroutinesIn counts the goroutines running fn (a function name as
// stack traces print it).
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn+"(") {
			n++
		}
	}
	return n
}

// The state a reload replaces in a kept chain is released: the old
// cache's loops and the removed nodes' goroutines stop once the old
// config is cleaned up, while the chain and its client carry on; after
// Caddy stops, nothing is left.
func TestReloadReleasesReplacedChainState(t *testing.T) {
	chain := fakenode.NewChain()
	a, b := fakenode.Start(t, fakenode.WithChain(chain)), fakenode.Start(t, fakenode.WithChain(chain))
	settle := func() int {
		time.Sleep(50 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	before := settle()
	gw := &testgw.Gateway{Port: testgw.FreePort(t)}
	steps := []struct {
		name   string
		global string
		caches int // suducer loops running
		nodes  int // node monitors running
	}{
		{"cache on", devBlock(testChainOpts, cacheDefault, a.URL()), 1, 1},
		{"cache changed", devBlock(testChainOpts, cacheNoStorage, a.URL()), 1, 1},
		{"options changed (the cache is rebuilt for the new timeout)", devBlock(longOptions, cacheNoStorage, a.URL()), 1, 1},
		{"node added", devBlock(longOptions, cacheNoStorage, a.URL(), b.URL()), 1, 2},
		{"node removed", devBlock(longOptions, cacheNoStorage, b.URL()), 1, 1},
		{"cache off", devBlock(longOptions, cacheOff, b.URL()), 0, 1},
	}
	var c *testgw.WSClient
	for _, st := range steps {
		testgw.Load(t, gw.Caddyfile(st.global, "\telara_rpc"))
		if c == nil {
			c = testgw.Dial(t, gw.WS("/dev"))
			c.Subscribe("chain_subscribeNewHeads", nil)
		}
		waitFor(t, st.name+": the replaced state's goroutines to stop", func() bool {
			return goroutinesIn("cacher.(*Cache).run") == st.caches && goroutinesIn("suber.(*Node).monitor") == st.nodes
		})
		if r := c.Call("system_chain", nil); r.Error != nil {
			t.Fatalf("%s: %s", st.name, r.Raw)
		}
	}
	stopCaddy(t)
	deadline := time.Now().Add(10 * time.Second)
	for now := settle(); now > before; now = settle() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines: %d before, %d after stop\n%s", before, now, buf[:n])
		}
	}
}

// A reload that fails leaves a kept chain as it was: nodes, options and
// cache, whether it failed before the new config started (a handler that
// cannot provision) or while starting it (a port already taken), after
// the elara app applied the new config to the chain or before.
func TestFailedReloadKeepsChainConfig(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cases := []struct {
		name string
		// config renders the failing config for gw.
		config func(gw *testgw.Gateway, global string) string
	}{
		{"provision fails", func(gw *testgw.Gateway, global string) string {
			return gw.Caddyfile(global, "\telara_rpc\n\telara_rpc nochain")
		}},
		{"start fails", func(gw *testgw.Gateway, global string) string {
			return gw.Caddyfile(global, "\telara_rpc") + fmt.Sprintf("http://%s {\n\trespond ok\n}\n", taken.Addr())
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chain := fakenode.NewChain()
			e := &keepEnv{chain: chain, a: fakenode.Start(t, fakenode.WithChain(chain)), b: fakenode.Start(t, fakenode.WithChain(chain))}
			chain.SetStorage("0x0102", "0xaa")
			chain.NewBlock()
			e.gw = testgw.Start(t, devBlock(shortTimeout, cacheOff, e.a.URL()), "\telara_rpc")
			e.c = testgw.Dial(t, e.gw.WS("/dev"))
			e.c.Subscribe("chain_subscribeNewHeads", nil)
			for range 3 {
				cfg, err := testgw.Adapt(tc.config(e.gw, devBlock(longOptions, cacheDefault, e.b.URL())))
				if err != nil {
					t.Fatal(err)
				}
				if err := caddy.Load(cfg, true); err == nil {
					t.Fatal("the broken config loaded")
				}
			}
			h := chain.NewBlock()
			for r := e.c.Next(5 * time.Second); headNumber(t, r) < h.Number; r = e.c.Next(5 * time.Second) {
			}
			if e.served(t) != e.a {
				t.Fatal("node b, of the failed config, answered")
			}
			if got := e.storageCalls(t, e.a); got != 2 {
				t.Fatalf("%d of 2 calls reached the node: the failed config's cache answers", got)
			}
			if code := e.slowCall(t); code == 0 {
				t.Fatal("the failed config's request timeout applies")
			}
			waitFor(t, "node b, of the failed config, closed", func() bool { return e.b.Connections() == 0 })
		})
	}
}

// A call at a node when a reload removes it is answered by that node: the
// node is closed only once its calls are answered (bounded by the request
// timeout). A write is never sent to another node.
func TestReloadLetsCallsOnARemovedNodeFinish(t *testing.T) {
	chain := fakenode.NewChain()
	a, b := fakenode.Start(t, fakenode.WithChain(chain)), fakenode.Start(t, fakenode.WithChain(chain))
	gw := testgw.Start(t, devBlock(testChainOpts, cacheOff, a.URL()), "\telara_rpc")
	c := testgw.Dial(t, gw.WS("/dev"))
	a.SetDelay("author_submitExtrinsic", time.Second)
	c.SendRaw([]byte(`{"jsonrpc":"2.0","id":"w","method":"author_submitExtrinsic","params":["0x0102"]}`))
	waitFor(t, "the write at node a", func() bool { return a.Calls("author_submitExtrinsic") == 1 })
	testgw.Load(t, gw.Caddyfile(devBlock(testChainOpts, cacheOff, b.URL()), "\telara_rpc"))
	if r := c.Wait(`"w"`, 5*time.Second); r.Error != nil || len(r.Result) == 0 {
		t.Fatalf("the write in flight on the removed node: %s", r.Raw)
	}
	if n := b.Calls("author_submitExtrinsic"); n != 0 {
		t.Fatalf("the write was sent to node b too (%d)", n)
	}
	waitFor(t, "the removed node closed", func() bool { return a.Connections() == 0 })
}

// storageCallsReaching checks how many of 2 storage calls reach node a
// before and after the reload.
func storageCallsReaching(before, after int) func(t *testing.T, e *keepEnv, reloaded bool) {
	return func(t *testing.T, e *keepEnv, reloaded bool) {
		want := before
		if reloaded {
			want = after
		}
		// The cache stores an answer at a block once its suducer knows
		// the chain (at start-up, under load, that may take a moment):
		// until then each try is at a new block. Uncached calls are
		// checked once.
		deadline := time.Now().Add(5 * time.Second)
		for got := e.storageCalls(t, e.a); got != want; got = e.storageCalls(t, e.a) {
			if want == 2 || time.Now().After(deadline) {
				t.Fatalf("after the reload %v: %d of 2 calls reached the node, want %d", reloaded, got, want)
			}
			e.chain.NewBlock()
			time.Sleep(50 * time.Millisecond)
		}
	}
}
