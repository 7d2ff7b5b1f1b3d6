package suber_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/suber"
)

// A head subscription that stays open but stops delivering (here: the node
// answers the subscribe with an id and never notifies) must not freeze the
// node's best head: the health check polls chain_getHeader once the
// subscription has been silent for a health interval, and the silent
// subscription is replaced once a poll shows heads it missed.
func TestHealthPollsHeadsWhenSubscriptionIsSilent(t *testing.T) {
	fake := fakenode.Start(t)
	fake.Handle("chain_subscribeNewHeads", func(json.RawMessage) (any, *fakenode.Error) { return "silentHeads01234", nil })
	chain := fake.Chain()
	n := startNode(t, fake.URL(), fastOptions(1))
	g := suber.NewGroup([]*suber.Node{n}, suber.DefaultReadiness)
	t.Cleanup(g.Close)
	for range 3 {
		chain.NewBlock()
	}
	waitFor(t, 3*time.Second, "the best head from chain_getHeader", func() bool { return n.Health().Best == chain.Best().Number })
	before := n.Health().LastHeadAt
	chain.NewBlock()
	waitFor(t, 3*time.Second, "the next best head", func() bool {
		h := n.Health()
		return h.Best == chain.Best().Number && h.LastHeadAt.After(before)
	})
	if !g.Ready(n) {
		t.Errorf("node not ready: %+v", g.Health()[0])
	}
	waitFor(t, 3*time.Second, "the silent subscription to be replaced", func() bool {
		return fake.Calls("chain_subscribeNewHeads") >= 2 && fake.Calls("chain_unsubscribeNewHeads") >= 1
	})
}

// On a chain that makes no blocks (a dev chain) the silent subscription is
// no fault: the node stays ready and keeps its subscription.
func TestHealthSilentChainKeepsSubscription(t *testing.T) {
	fake := fakenode.Start(t)
	n := startNode(t, fake.URL(), fastOptions(1))
	g := suber.NewGroup([]*suber.Node{n}, suber.DefaultReadiness)
	t.Cleanup(g.Close)
	waitFor(t, 3*time.Second, "the node ready", func() bool { return g.Ready(n) })
	waitFor(t, 3*time.Second, "a few polls", func() bool { return fake.Calls("chain_getHeader") >= 3 })
	if got := fake.Calls("chain_subscribeNewHeads"); got != 1 {
		t.Errorf("%d head subscriptions on a quiet chain, want 1", got)
	}
	if !g.Ready(n) {
		t.Errorf("node not ready: %+v", g.Health()[0])
	}
}

// A node whose head subscriptions cannot be opened at all still has its
// best head followed, by polling.
func TestHealthPollsHeadsWhenSubscribeFails(t *testing.T) {
	fake := fakenode.Start(t)
	fake.Handle("chain_subscribeNewHeads", func(json.RawMessage) (any, *fakenode.Error) {
		return nil, &fakenode.Error{Code: -32601, Message: "Method not found"}
	})
	chain := fake.Chain()
	n := startNode(t, fake.URL(), fastOptions(1))
	for range 3 {
		chain.NewBlock()
	}
	waitFor(t, 3*time.Second, "the best head from chain_getHeader", func() bool { return n.Health().Best == chain.Best().Number })
}
