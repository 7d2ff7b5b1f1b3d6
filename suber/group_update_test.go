package suber_test

import (
	"strings"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/suber"
)

// A reload that keeps a chain changes its group's nodes and rules in
// place: a node that leaves stops serving at once (and its watchers hear
// of it), a read in flight on it when it closes is answered by a node
// that stayed, and new rules judge the nodes from the next look on.
func TestGroupUpdatedInPlace(t *testing.T) {
	chain := fakenode.NewChain()
	fakeA, fakeB := fakenode.Start(t, fakenode.WithChain(chain)), fakenode.Start(t, fakenode.WithChain(chain))
	a := startNode(t, fakeA.URL(), fastOptions(1))
	b := startNode(t, fakeB.URL(), fastOptions(1))
	g := suber.NewGroup([]*suber.Node{a}, suber.DefaultReadiness)
	t.Cleanup(g.Close)
	waitFor(t, 3*time.Second, "node a ready", func() bool { return g.ReadyCount() == 1 })

	// A read is in flight on a when a leaves and closes.
	fakeA.SetDelay("system_chain", 500*time.Millisecond)
	answered := make(chan error, 1)
	go func() {
		_, err := g.Call(ctxTimeout(t, 5*time.Second), "system_chain", nil)
		answered <- err
	}()
	waitFor(t, 3*time.Second, "the call at node a", func() bool { return fakeA.Calls("system_chain") == 1 })
	changed := g.Changes()
	g.SetNodes([]*suber.Node{b})
	select {
	case <-changed:
	default:
		t.Fatal("watchers were not told of the new node set")
	}
	if !g.Has(b) || g.Has(a) || g.Ready(a) {
		t.Fatalf("after SetNodes: has a %v, has b %v, a ready %v", g.Has(a), g.Has(b), g.Ready(a))
	}
	a.Close()
	if err := <-answered; err != nil {
		t.Fatalf("the read in flight on the removed node: %v", err)
	}
	if fakeB.Calls("system_chain") != 1 {
		t.Fatalf("node b saw %d calls, want the retried one", fakeB.Calls("system_chain"))
	}
	before := fakeA.Calls("system_chain")
	call(t, g, "system_chain", "")
	if fakeA.Calls("system_chain") != before {
		t.Fatal("a removed node was called")
	}

}

// New readiness rules judge the nodes from the next look on: a node
// lagging past the old max_lag serves under a larger one.
func TestGroupReadinessChangedInPlace(t *testing.T) {
	ahead := fakenode.NewChain()
	for range 10 {
		ahead.NewBlock()
	}
	fakeA, fakeB := fakenode.Start(t, fakenode.WithChain(ahead)), fakenode.Start(t)
	a := startNode(t, fakeA.URL(), fastOptions(1))
	b := startNode(t, fakeB.URL(), fastOptions(1))
	g := suber.NewGroup([]*suber.Node{a, b}, suber.Readiness{MaxLag: 2})
	t.Cleanup(g.Close)
	waitFor(t, 3*time.Second, "node a ready, node b checked", func() bool {
		return g.Ready(a) && a.Health().Best >= 10 && b.Health().Checked
	})
	if hs := g.Health(); hs[1].Ready || !strings.Contains(hs[1].NotReadyBecause, "behind") {
		t.Fatalf("node b, 10 blocks behind, with max_lag 2: %+v", hs[1])
	}
	changed := g.Changes()
	g.SetReadiness(suber.Readiness{MaxLag: 100})
	<-changed
	if !g.Ready(b) || g.Readiness().MaxLag != 100 {
		t.Fatalf("node b under max_lag 100: ready %v", g.Ready(b))
	}
}
