package handler_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/handler"
	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
	"github.com/elara-gateway/elara/projects"
)

// callLog collects the CallInfo of every call the per-call hook sees.
type callLog struct {
	mu    sync.Mutex
	calls []handler.CallInfo
}

func observeCalls(t *testing.T) *callLog {
	l := &callLog{}
	handler.ObserveCalls(t, func(c handler.CallInfo) {
		l.mu.Lock()
		l.calls = append(l.calls, c)
		l.mu.Unlock()
	})
	return l
}

// last is the latest call of method.
func (l *callLog) last(t *testing.T, method string) handler.CallInfo {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.calls) - 1; i >= 0; i-- {
		if l.calls[i].Method == method {
			return l.calls[i]
		}
	}
	t.Fatalf("no call of %s seen", method)
	return handler.CallInfo{}
}

// startCallInfo runs a gateway with projects on nodes of one chain, with
// the response cache on or off, and returns a project's HTTP and WS URLs.
func startCallInfo(t *testing.T, cache bool, nodes ...*fakenode.Node) (httpURL, wsURL string) {
	t.Helper()
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.URL()
	}
	chain := chainBlock("dev", testChainOpts, urls...)
	if cache {
		chain = strings.Replace(chain, "\t\tcache off\n", "", 1)
	}
	global := chain + accessPlans + fmt.Sprintf("\t\tprojects {\n\t\t\tdir %s\n\t\t}\n", t.TempDir())
	gw := testgw.Start(t, global, "\telara_rpc")
	p := createProject(t, app.CurrentAccess(), projects.CreateRequest{Plan: "free"})
	return gw.HTTP("/dev/" + p.ID), gw.WS("/dev/" + p.ID)
}

// The per-call hook learns whether the cache answered and which node did.
func TestCallInfoCacheAndNode(t *testing.T) {
	node := fakenode.Start(t, fakenode.WithName("alpha"))
	httpURL, wsURL := startCallInfo(t, true, node)
	calls := observeCalls(t)
	genesis := node.Chain().GenesisHash()
	ws := testgw.Dial(t, wsURL)

	// Until the cache knows the chain, a call it could keep reaches the
	// node; every miss names the node, and the first hit names none.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r := testgw.PostCall(t, httpURL, "chain_getBlock", []any{genesis}); r.Error != nil {
			t.Fatalf("call failed: %s", r.Error.Message)
		}
		got := calls.last(t, "chain_getBlock")
		if got.CacheHit {
			if got.Node != "" {
				t.Fatalf("cache hit names node %q", got.Node)
			}
			break
		}
		if got.Node != node.URL() {
			t.Fatalf("miss names node %q, want %q", got.Node, node.URL())
		}
		if time.Now().After(deadline) {
			t.Fatal("chain_getBlock of the genesis never came from the cache")
		}
		time.Sleep(20 * time.Millisecond)
	}

	tests := []struct {
		name      string
		call      func() *testgw.Response
		method    string
		wantHit   bool
		wantNode  string
		transport string
	}{
		{"uncached call over HTTP reports the node", func() *testgw.Response {
			return testgw.PostCall(t, httpURL, "system_accountNextIndex", []any{"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"})
		}, "system_accountNextIndex", false, node.URL(), handler.TransportHTTP},
		{"cached call over HTTP is a hit with no node", func() *testgw.Response {
			return testgw.PostCall(t, httpURL, "chain_getBlock", []any{genesis})
		}, "chain_getBlock", true, "", handler.TransportHTTP},
		{"cache hit over WebSocket", func() *testgw.Response {
			return ws.Call("chain_getBlock", []any{genesis})
		}, "chain_getBlock", true, "", handler.TransportWS},
		{"uncached call over WebSocket reports the node", func() *testgw.Response {
			return ws.Call("system_accountNextIndex", []any{"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"})
		}, "system_accountNextIndex", false, node.URL(), handler.TransportWS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r := tc.call(); r.Error != nil {
				t.Fatalf("call failed: %s", r.Error.Message)
			}
			got := calls.last(t, tc.method)
			if got.CacheHit != tc.wantHit || got.Node != tc.wantNode || got.Transport != tc.transport || got.Outcome != "ok" {
				t.Fatalf("CallInfo %+v; want hit %v node %q transport %s outcome ok", got, tc.wantHit, tc.wantNode, tc.transport)
			}
		})
	}
}

// With two nodes, the hook names the one that answered: system_name
// answers each node's own name.
func TestCallInfoNodeThatAnswered(t *testing.T) {
	chain := fakenode.NewChain()
	a := fakenode.Start(t, fakenode.WithChain(chain), fakenode.WithName("alpha"))
	b := fakenode.Start(t, fakenode.WithChain(chain), fakenode.WithName("beta"))
	byName := map[string]string{`"alpha"`: a.URL(), `"beta"`: b.URL()}
	httpURL, wsURL := startCallInfo(t, false, a, b)
	calls := observeCalls(t)
	seen := map[string]int{}
	for i := 0; i < 8; i++ {
		r := testgw.PostCall(t, httpURL, "system_name", []any{})
		if r.Error != nil {
			t.Fatalf("call failed: %s", r.Error.Message)
		}
		got := calls.last(t, "system_name")
		if want := byName[string(r.Result)]; got.Node != want || got.CacheHit {
			t.Fatalf("answered by %s (%s) but CallInfo says node %q, hit %v", r.Result, want, got.Node, got.CacheHit)
		}
		seen[got.Node]++
	}
	if len(seen) != 2 {
		t.Fatalf("calls went to %v; want both nodes", seen)
	}

	// A broadcast's stop is sticky: it reaches, and names, the node that
	// runs the broadcast.
	ws := testgw.Dial(t, wsURL)
	for i := 0; i < 4; i++ {
		r := ws.Call("transaction_v1_broadcast", []any{fmt.Sprintf("0x%04x", i)})
		if r.Error != nil {
			t.Fatalf("broadcast: %s", r.Error.Message)
		}
		started := calls.last(t, "transaction_v1_broadcast").Node
		if started != a.URL() && started != b.URL() {
			t.Fatalf("broadcast reported node %q", started)
		}
		var id string
		if err := json.Unmarshal(r.Result, &id); err != nil {
			t.Fatal(err)
		}
		if r := ws.Call("transaction_v1_stop", []any{id}); r.Error != nil {
			t.Fatalf("stop: %s", r.Error.Message)
		}
		if stopped := calls.last(t, "transaction_v1_stop").Node; stopped != started {
			t.Fatalf("broadcast on %s, stop reported on %q", started, stopped)
		}
	}
}
