package handler_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

const failoverOpts = `request_timeout 2s
health_interval 100ms
max_lag 2
subscription_grace 0s`

// startPair runs a gateway over two nodes of one chain.
func startPair(t *testing.T) (*testgw.Gateway, *fakenode.Node, *fakenode.Node) {
	t.Helper()
	return startPairWith(t, failoverOpts)
}

// startPairWith is startPair with other chain options; it returns once
// both nodes are ready.
func startPairWith(t *testing.T, opts string) (*testgw.Gateway, *fakenode.Node, *fakenode.Node) {
	t.Helper()
	chain := fakenode.NewChain()
	a := fakenode.Start(t, fakenode.WithChain(chain))
	b := fakenode.Start(t, fakenode.WithChain(chain))
	gw := testgw.Start(t, chainBlock("dev", opts, a.URL(), b.URL()), "\telara_rpc")
	waitReady(t, gw, 2)
	return gw, a, b
}

// laggingOpts let a node fall behind and stay ready.
const laggingOpts = "request_timeout 2s\nhealth_interval 100ms\nmax_lag 100\nhead_timeout 0s\nsubscription_grace 0s"

type healthBody struct {
	Ready int          `json:"ready"`
	Nodes []healthNode `json:"nodes"`
}

type healthNode struct {
	URL             string `json:"url"`
	Ready           bool   `json:"ready"`
	NotReadyBecause string `json:"not_ready_because"`
	Best            uint64 `json:"best"`
	Finalized       uint64 `json:"finalized"`
}

func health(t *testing.T, gw *testgw.Gateway) (int, healthBody) {
	t.Helper()
	resp, err := http.Get(gw.HTTP("/dev/health"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var hb healthBody
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &hb); err != nil {
		t.Fatalf("health body %s: %v", body, err)
	}
	return resp.StatusCode, hb
}

func waitReady(t *testing.T, gw *testgw.Gateway, ready int) healthBody {
	t.Helper()
	var hb healthBody
	waitFor(t, fmt.Sprintf("%d ready nodes", ready), func() bool {
		_, hb = health(t, gw)
		return hb.Ready == ready
	})
	return hb
}

// holder returns which of the nodes holds the gateway's shared
// subscription for method: the one with want subscriptions of it (the
// health monitor holds head subscriptions of its own on each node).
func holder(t *testing.T, method string, want int, nodes ...*fakenode.Node) *fakenode.Node {
	t.Helper()
	var found *fakenode.Node
	waitFor(t, "the shared subscription's node", func() bool {
		for _, n := range nodes {
			if n.ActiveSubscriptions(method) == want {
				found = n
				return true
			}
		}
		return false
	})
	return found
}

func other(n, a, b *fakenode.Node) *fakenode.Node {
	if n == a {
		return b
	}
	return a
}

func TestSyncingOrPeerlessNodeNeverServes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		break_, fix func(*fakenode.Node)
		why         string
	}{
		{"syncing", func(n *fakenode.Node) { n.SetSyncing(true) }, func(n *fakenode.Node) { n.SetSyncing(false) }, "syncing"},
		{"no peers", func(n *fakenode.Node) { n.SetPeers(0) }, func(n *fakenode.Node) { n.SetPeers(3) }, "no peers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := fakenode.Start(t)
			gw := testgw.Start(t, chainBlock("dev", failoverOpts, node.URL()), "\telara_rpc")
			waitReady(t, gw, 1)
			tc.break_(node)
			hb := waitReady(t, gw, 0)
			if !strings.Contains(hb.Nodes[0].NotReadyBecause, tc.why) {
				t.Fatalf("reason %q", hb.Nodes[0].NotReadyBecause)
			}
			if status, _ := health(t, gw); status != http.StatusServiceUnavailable {
				t.Fatalf("health status %d with no ready node, want 503", status)
			}
			before := node.Calls("system_name")
			r := testgw.PostCall(t, gw.HTTP("/dev"), "system_name", nil)
			if r.ErrCode() != -32000 || !strings.Contains(r.Error.Message, "no ready upstream") {
				t.Fatalf("call with the only node %s: %s", tc.name, r.Raw)
			}
			if node.Calls("system_name") != before {
				t.Fatalf("a %s node was routed to", tc.name)
			}
			tc.fix(node)
			waitReady(t, gw, 1)
			if r := testgw.PostCall(t, gw.HTTP("/dev"), "system_name", nil); r.Error != nil {
				t.Fatalf("after recovery: %s", r.Raw)
			}
		})
	}
}

func TestLaggingNodeIsNotRoutedTo(t *testing.T) {
	gw, a, b := startPair(t)
	b.SetFollow(false)
	for range 4 {
		a.Chain().NewBlock()
	}
	hb := waitReady(t, gw, 1)
	lagging := ""
	for _, n := range hb.Nodes {
		if !n.Ready {
			lagging = n.NotReadyBecause
		}
	}
	if !strings.Contains(lagging, "behind") {
		t.Fatalf("lagging node's reason: %q", lagging)
	}
	before := b.Calls("system_name")
	for range 20 {
		if r := testgw.PostCall(t, gw.HTTP("/dev"), "system_name", nil); r.Error != nil {
			t.Fatal(string(r.Raw))
		}
	}
	if b.Calls("system_name") != before {
		t.Fatal("calls went to the lagging node")
	}
	b.SetFollow(true)
	waitReady(t, gw, 2)
}

// readHeads collects header notifications until one reaches want.
func readHeads(t *testing.T, c *testgw.WSClient, sub json.RawMessage, method string, want uint64) []uint64 {
	t.Helper()
	var got []uint64
	deadline := time.Now().Add(15 * time.Second)
	for len(got) == 0 || got[len(got)-1] < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %v, waiting for %d", method, got, want)
		}
		r := c.Next(15 * time.Second)
		if r.Method != method {
			continue
		}
		if !bytes.Equal(r.Params.Subscription, sub) {
			continue
		}
		got = append(got, headNumber(t, r))
	}
	return got
}

func TestFailoverKeepsHeadsMonotonicAndFillsFinalizedGaps(t *testing.T) {
	for _, tc := range []struct {
		name string
		kill func(n *fakenode.Node)
	}{
		{"node dies", func(n *fakenode.Node) { n.Stop() }},
		{"node starts syncing", func(n *fakenode.Node) { n.SetSyncing(true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw, a, b := startPair(t)
			chain := a.Chain()
			c := testgw.Dial(t, gw.WS("/dev"))
			heads := c.Subscribe("chain_subscribeNewHeads", nil)
			fin := c.Subscribe("chain_subscribeFinalizedHeads", nil)
			h := holder(t, "chain_subscribeFinalizedHeads", 2, a, b)
			for range 3 {
				chain.NewBlockFinalized()
			}
			tc.kill(h)
			// Blocks made and finalized while the gateway switches nodes.
			chain.NewBlock()
			chain.NewBlock()
			chain.Finalize(chain.Best().Number)
			last := chain.NewBlockFinalized()

			newHeads := readHeadsBoth(t, c, heads, fin, last.Number)
			for name, nums := range newHeads {
				for i := 1; i < len(nums); i++ {
					if nums[i] <= nums[i-1] {
						t.Fatalf("%s not strictly increasing: %v", name, nums)
					}
				}
			}
			f := newHeads["finalized"]
			for i := 1; i < len(f); i++ {
				if f[i] != f[i-1]+1 {
					t.Fatalf("finalized numbers skipped: %v", f)
				}
			}
			if f[len(f)-1] != last.Number {
				t.Fatalf("finalized ends at %d, want %d", f[len(f)-1], last.Number)
			}
			select {
			case err := <-c.Closed:
				t.Fatalf("client was disconnected: %v", err)
			default:
			}
			o := other(h, a, b)
			waitFor(t, "the shared subscription to move", func() bool { return o.ActiveSubscriptions("chain_subscribeFinalizedHeads") == 2 })
		})
	}
}

// readHeadsBoth reads new and finalized heads until both reach want.
func readHeadsBoth(t *testing.T, c *testgw.WSClient, heads, fin json.RawMessage, want uint64) map[string][]uint64 {
	t.Helper()
	got := map[string][]uint64{}
	done := func() bool {
		h, f := got["new"], got["finalized"]
		return len(h) > 0 && len(f) > 0 && h[len(h)-1] >= want && f[len(f)-1] >= want
	}
	for !done() {
		r := c.Next(15 * time.Second)
		switch {
		case bytes.Equal(r.Params.Subscription, heads):
			got["new"] = append(got["new"], headNumber(t, r))
		case bytes.Equal(r.Params.Subscription, fin):
			got["finalized"] = append(got["finalized"], headNumber(t, r))
		default:
			t.Fatalf("notification for an unknown subscription: %s", r.Raw)
		}
	}
	return got
}

func TestFailoverDoesNotResendUnchangedValues(t *testing.T) {
	gw, a, b := startPair(t)
	key := "0x" + strings.Repeat("dd", 32)
	a.Chain().SetStorage(key, "0x01")
	// Both subscriptions open on a, so both move when it dies.
	b.SetSyncing(true)
	waitReady(t, gw, 1)
	c := testgw.Dial(t, gw.WS("/dev"))
	rv := c.Subscribe("state_subscribeRuntimeVersion", nil)
	st := c.Subscribe("state_subscribeStorage", []any{[]string{key}})
	c.Next(5 * time.Second)
	c.Next(5 * time.Second)
	if a.ActiveSubscriptions("state_subscribeRuntimeVersion") != 1 || a.ActiveSubscriptions("state_subscribeStorage") != 1 {
		t.Fatal("subscriptions not on the ready node")
	}
	b.SetSyncing(false)
	waitReady(t, gw, 2)
	a.Stop()
	waitFor(t, "subscriptions moved", func() bool {
		return b.ActiveSubscriptions("state_subscribeRuntimeVersion") >= 1 && b.ActiveSubscriptions("state_subscribeStorage") >= 1
	})
	c.NoNotification(300 * time.Millisecond)
	a.Chain().SetRuntimeVersion(a.Chain().SpecVersion() + 1)
	if r := c.Next(5 * time.Second); !bytes.Equal(r.Params.Subscription, rv) {
		t.Fatalf("want runtime version change, got %s", r.Raw)
	}
	a.Chain().SetStorage(key, "0x02")
	if r := c.Next(5 * time.Second); !bytes.Equal(r.Params.Subscription, st) || !bytes.Contains(r.Params.Result, []byte(`"0x02"`)) {
		t.Fatalf("want storage change, got %s", r.Raw)
	}
}

func TestUnresumableSubscriptionEndsWithDropped(t *testing.T) {
	gw, a, b := startPair(t)
	c := testgw.Dial(t, gw.WS("/dev"))
	sub := c.Subscribe("author_submitAndWatchExtrinsic", []string{"0x0badc0de"})
	if r := c.Next(5 * time.Second); !bytes.Contains(r.Params.Result, []byte(`ready`)) {
		t.Fatalf("first status %s", r.Raw)
	}
	var h *fakenode.Node
	for _, n := range []*fakenode.Node{a, b} {
		if n.ActiveSubscriptions("author_submitAndWatchExtrinsic") == 1 {
			h = n
		}
	}
	if h == nil {
		t.Fatal("no node holds the watch")
	}
	h.Stop()
	r := c.Next(5 * time.Second)
	if !bytes.Equal(r.Params.Subscription, sub) || string(r.Params.Result) != `"dropped"` || r.Method != "author_extrinsicUpdate" {
		t.Fatalf("want dropped, got %s", r.Raw)
	}
	c.NoNotification(200 * time.Millisecond)
}

func TestReadsRetriedOnceWritesNever(t *testing.T) {
	gw, a, b := startPair(t)
	a.SetDisconnectOn("chain_getBlockHash", true)
	for i := range 6 {
		if r := testgw.PostCall(t, gw.HTTP("/dev"), "chain_getBlockHash", []int{0}); r.Error != nil {
			t.Fatalf("read %d not retried: %s", i, r.Raw)
		}
		waitReady(t, gw, 2)
	}
	if a.Calls("chain_getBlockHash") == 0 {
		t.Fatal("test did not exercise the dying node")
	}
	// A read that fails on both nodes is tried twice, never more.
	waitReady(t, gw, 2)
	b.SetDisconnectOn("chain_getBlockHash", true)
	before := a.Calls("chain_getBlockHash") + b.Calls("chain_getBlockHash")
	if r := testgw.PostCall(t, gw.HTTP("/dev"), "chain_getBlockHash", []int{0}); r.Error == nil {
		t.Fatalf("read with both nodes dying: %s", r.Raw)
	}
	if got := a.Calls("chain_getBlockHash") + b.Calls("chain_getBlockHash") - before; got != 2 {
		t.Fatalf("read sent %d times, want 2 (one retry)", got)
	}
	waitReady(t, gw, 2)
	a.SetDisconnectOn("author_submitExtrinsic", true)
	b.SetDisconnectOn("author_submitExtrinsic", true)
	r := testgw.PostCall(t, gw.HTTP("/dev"), "author_submitExtrinsic", []string{"0x01"})
	if r.Error == nil {
		t.Fatalf("write on a dying node: %s", r.Raw)
	}
	if got := a.Calls("author_submitExtrinsic") + b.Calls("author_submitExtrinsic"); got != 1 {
		t.Fatalf("write sent %d times, want once", got)
	}
}

func TestNoReadyNodeFailsFastAndSubscriptionsResume(t *testing.T) {
	node := fakenode.Start(t)
	// A long deadline: failing fast means not waiting for it.
	const deadline = 60 * time.Second
	opts := strings.Replace(failoverOpts, "request_timeout 2s", "request_timeout 60s", 1)
	gw := testgw.Start(t, chainBlock("dev", opts, node.URL()), "\telara_rpc")
	waitReady(t, gw, 1)
	c := testgw.Dial(t, gw.WS("/dev"))
	sub := c.Subscribe("chain_subscribeNewHeads", nil)
	c.Next(5 * time.Second)
	node.Stop()
	waitReady(t, gw, 0)
	began := time.Now()
	if r := c.Call("system_name", nil); r.ErrCode() != -32000 {
		t.Fatalf("call with no node: %s", r.Raw)
	}
	if r := c.Call("state_subscribeStorage", []any{[]string{"0x" + strings.Repeat("ab", 32)}}); r.ErrCode() != -32000 {
		t.Fatalf("new subscription with no node: %s", r.Raw)
	}
	if r := testgw.PostCall(t, gw.HTTP("/dev"), "system_name", nil); r.ErrCode() != -32000 {
		t.Fatalf("HTTP call with no node: %s", r.Raw)
	}
	if waited := time.Since(began); waited > deadline/2 {
		t.Fatalf("calls with no ready node waited %s for the request deadline", waited)
	}
	if err := node.Restart(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, gw, 1)
	h := node.Chain().NewBlock()
	for {
		r := c.Next(10 * time.Second)
		if !bytes.Equal(r.Params.Subscription, sub) {
			t.Fatalf("notification for %s, subscription is %s", r.Params.Subscription, sub)
		}
		if headNumber(t, r) == h.Number {
			break
		}
	}
}

func TestAdminUpstreamsEndpoint(t *testing.T) {
	node := fakenode.Start(t)
	port, admin := testgw.FreePort(t), testgw.FreePort(t)
	g := &testgw.Gateway{Port: port}
	cf := strings.Replace(g.Caddyfile(chainBlock("dev", failoverOpts, node.URL()), "\telara_rpc"), "admin off", fmt.Sprintf("admin 127.0.0.1:%d", admin), 1)
	testgw.Load(t, cf)
	t.Cleanup(func() { stopCaddy(t) })
	waitReady(t, g, 1)
	type report struct {
		Chain string `json:"chain"`
		Ready int    `json:"ready"`
		Nodes []struct {
			URL       string `json:"url"`
			Ready     bool   `json:"ready"`
			Connected bool   `json:"connected"`
			Best      uint64 `json:"best"`
		} `json:"nodes"`
	}
	var (
		reports []report
		last    string
	)
	// The admin server comes up with the config; ask until it answers
	// with the report.
	fetch := func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/elara/upstreams", admin))
		if err != nil {
			last = err.Error()
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		last = fmt.Sprintf("HTTP %d: %.300s", resp.StatusCode, body)
		return resp.StatusCode == http.StatusOK && json.Unmarshal(body, &reports) == nil
	}
	for deadline := time.Now().Add(10 * time.Second); !fetch(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no upstreams report: %s", last)
		}
	}
	for _, r := range reports {
		if r.Chain == "dev" && r.Ready == 1 && len(r.Nodes) == 1 && r.Nodes[0].Connected && r.Nodes[0].Best >= 1 {
			return
		}
	}
	t.Fatalf("admin report: %+v (%s)", reports, last)
}

// A runtime-version subscription moved to a node still on the previous
// runtime must not announce that runtime again.
func TestFailoverToLaggingNodeDoesNotRollBackRuntimeVersion(t *testing.T) {
	gw, a, b := startPairWith(t, laggingOpts)
	chain := a.Chain()
	c := testgw.Dial(t, gw.WS("/dev"))
	c.Subscribe("state_subscribeRuntimeVersion", nil)
	c.Next(5 * time.Second)
	h := holder(t, "state_subscribeRuntimeVersion", 1, a, b)
	behind := other(h, a, b)
	behind.SetFollow(false)
	chain.NewBlock()
	chain.SetRuntimeVersion(chain.SpecVersion() + 1)
	chain.NewBlock()
	upgraded := c.Next(5 * time.Second)
	if !bytes.Contains(upgraded.Params.Result, []byte(fmt.Sprintf(`"specVersion":%d`, chain.SpecVersion()))) {
		t.Fatalf("upgrade notification %s", upgraded.Raw)
	}
	h.Stop()
	waitFor(t, "the subscription to move", func() bool { return behind.ActiveSubscriptions("state_subscribeRuntimeVersion") == 1 })
	c.NoNotification(300 * time.Millisecond)
}

// Storage values and all-heads headers moved to a node behind the one
// left are never rolled back: what that node sends about blocks clients
// are past is dropped, later changes come through.
func TestFailoverToLaggingNodeDoesNotRollBackStorageOrAllHeads(t *testing.T) {
	gw, a, b := startPairWith(t, laggingOpts)
	chain := a.Chain()
	// Both subscriptions open on a: b is unready meanwhile.
	b.SetSyncing(true)
	waitReady(t, gw, 1)
	key := "0x" + strings.Repeat("ee", 32)
	chain.SetStorage(key, "0x01")
	c := testgw.Dial(t, gw.WS("/dev"))
	st := c.Subscribe("state_subscribeStorage", []any{[]string{key}})
	all := c.Subscribe("chain_subscribeAllHeads", nil)
	if a.ActiveSubscriptions("state_subscribeStorage") != 1 || a.ActiveSubscriptions("chain_subscribeAllHeads") != 1 {
		t.Fatal("subscriptions not on the ready node")
	}
	// b comes back but stops following: it stays ready (max_lag 100) with
	// an older view of the chain.
	b.SetFollow(false)
	b.SetSyncing(false)
	waitReady(t, gw, 2)
	var storage []string
	var heads []uint64
	record := func(r *testgw.Response) {
		switch {
		case bytes.Equal(r.Params.Subscription, st):
			var sc struct{ Changes [][]*string }
			if err := json.Unmarshal(r.Params.Result, &sc); err != nil || len(sc.Changes) != 1 || sc.Changes[0][1] == nil {
				t.Fatalf("storage notification %s", r.Raw)
			}
			storage = append(storage, *sc.Changes[0][1])
		case bytes.Equal(r.Params.Subscription, all):
			heads = append(heads, headNumber(t, r))
		default:
			t.Fatalf("unexpected %s", r.Raw)
		}
	}
	until := func(what string, done func() bool) {
		t.Helper()
		for !done() {
			record(c.Next(5 * time.Second))
		}
	}
	chain.NewBlock()
	chain.SetStorage(key, "0x02")
	top := chain.Best().Number
	until("the change on a", func() bool {
		return len(storage) > 0 && storage[len(storage)-1] == "0x02" && len(heads) > 0 && heads[len(heads)-1] == top
	})

	a.Stop()
	waitFor(t, "the subscriptions to move to b", func() bool {
		return b.ActiveSubscriptions("state_subscribeStorage") == 1 && b.ActiveSubscriptions("chain_subscribeAllHeads") == 1
	})
	// b's first values are about its older best block.
	c.NoNotification(300 * time.Millisecond)
	// b catches up: it announces a head clients already have.
	b.SetFollow(true)
	c.NoNotification(300 * time.Millisecond)
	chain.NewBlock()
	chain.SetStorage(key, "0x03")
	top = chain.Best().Number
	until("the change on b", func() bool {
		return len(storage) > 0 && storage[len(storage)-1] == "0x03" && len(heads) > 0 && heads[len(heads)-1] == top
	})
	if got := strings.Join(storage, " "); got != "0x01 0x02 0x03" {
		t.Fatalf("storage values seen: %s, want 0x01 0x02 0x03", got)
	}
	for i := 1; i < len(heads); i++ {
		if heads[i] <= heads[i-1] {
			t.Fatalf("all-heads numbers went back or repeated: %v", heads)
		}
	}
}

func TestDefaultMaxLagIsFiveBlocks(t *testing.T) {
	gw, a, b := startPairWith(t, "request_timeout 2s\nhealth_interval 100ms")
	chain := a.Chain()
	b.SetFollow(false)
	for range 5 {
		chain.NewBlock()
	}
	top := chain.Best().Number
	hb := waitHealth(t, "the gateway to see the new head", func(hb healthBody) bool {
		return slices.ContainsFunc(hb.Nodes, func(n healthNode) bool { return n.Best == top })
	}, gw)
	if hb.Ready != 2 {
		t.Fatalf("a node 5 blocks behind is not ready: %+v", hb)
	}
	chain.NewBlock()
	hb = waitReady(t, gw, 1)
	for _, n := range hb.Nodes {
		if !n.Ready && !strings.Contains(n.NotReadyBecause, "more than 5 blocks behind") {
			t.Fatalf("reason %q", n.NotReadyBecause)
		}
	}
}

// waitFor2 polls the health endpoint until cond holds.
func waitHealth(t *testing.T, what string, cond func(healthBody) bool, gw *testgw.Gateway) healthBody {
	t.Helper()
	var hb healthBody
	waitFor(t, what, func() bool {
		_, hb = health(t, gw)
		return cond(hb)
	})
	return hb
}

func TestHealthEndpointReportsHeads(t *testing.T) {
	node := fakenode.Start(t)
	gw := testgw.Start(t, chainBlock("dev", failoverOpts, node.URL()), "\telara_rpc")
	chain := node.Chain()
	chain.NewBlockFinalized()
	chain.NewBlock()
	best, fin := chain.Best().Number, chain.Finalized().Number
	var top struct {
		Best      uint64 `json:"best"`
		Finalized uint64 `json:"finalized"`
	}
	// Heads and readiness come from different probes: wait for both.
	hb := waitHealth(t, "the heads on the health endpoint", func(hb healthBody) bool {
		return hb.Ready == 1 && len(hb.Nodes) == 1 && hb.Nodes[0].Best == best && hb.Nodes[0].Finalized == fin
	}, gw)
	resp, err := http.Get(gw.HTTP("/dev/health"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(body, &top); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("health: %d %s", resp.StatusCode, body)
	}
	if hb.Ready != 1 || top.Best != best || top.Finalized != fin {
		t.Fatalf("health reports best %d finalized %d ready %d, the chain is at %d/%d", top.Best, top.Finalized, hb.Ready, best, fin)
	}
	if strings.Contains(string(body), node.URL()) {
		t.Fatalf("the public health endpoint shows the node's address: %s", body)
	}
}

// A node that stops seeing new heads while another keeps seeing them stops
// serving after head_timeout, even within max_lag.
func TestNodeWithoutNewHeadsStopsServing(t *testing.T) {
	gw, a, b := startPairWith(t, "request_timeout 2s\nhealth_interval 100ms\nmax_lag 1000\nhead_timeout 1s\nsubscription_grace 0s")
	chain := a.Chain()
	b.SetFollow(false)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				chain.NewBlock()
			}
		}
	}()
	defer func() { close(stop); <-done }()
	hb := waitReady(t, gw, 1)
	for _, n := range hb.Nodes {
		if !n.Ready && !strings.Contains(n.NotReadyBecause, "no new head") {
			t.Fatalf("reason %q", n.NotReadyBecause)
		}
	}
	before := b.Calls("system_name")
	for range 10 {
		if r := testgw.PostCall(t, gw.HTTP("/dev"), "system_name", nil); r.Error != nil {
			t.Fatal(string(r.Raw))
		}
	}
	if b.Calls("system_name") != before {
		t.Fatal("calls went to the node without new heads")
	}
	b.SetFollow(true)
	waitReady(t, gw, 2)
}
