package suber

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
)

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func subDone(s *Subscription) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// The health monitor's head subscription can die between Node.Subscribe
// returning it and headWatch.ensure storing it: headSink.Lost then runs
// before the store, and the dead subscription is kept. ensure must notice
// and subscribe again, or the node's best head freezes for good.
func TestHeadWatchReplacesSubscriptionLostBeforeStore(t *testing.T) {
	fake := fakenode.Start(t)
	n, err := NewNode(fake.URL(), Options{PoolSize: 1, DialTimeout: time.Second, PingInterval: time.Second,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, HealthInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	t.Cleanup(func() { _ = n.Close() })
	waitUntil(t, 3*time.Second, "a connection", n.Connected)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	w := &headWatch{node: n}
	// What ensure does, with the connection lost after Subscribe returned
	// and before the subscription was stored.
	dead, err := n.Subscribe(ctx, "chain_subscribeNewHeads", nil, "chain_unsubscribeNewHeads", headSink{node: n, w: w})
	if err != nil {
		t.Fatal(err)
	}
	fake.DisconnectAll()
	waitUntil(t, 3*time.Second, "the subscription to be lost", func() bool { return subDone(dead) })
	w.mu.Lock()
	w.best = dead
	w.mu.Unlock()
	waitUntil(t, 3*time.Second, "a new connection", n.Connected)

	w.ensure(ctx)
	w.mu.Lock()
	best := w.best
	w.mu.Unlock()
	if best == dead || best == nil || subDone(best) {
		t.Fatal("headWatch.ensure kept a head subscription whose connection is gone: the node's best head would never move again")
	}
	w.stop()
}

func TestJudgeAppliesHeadTimeoutBeforeLag(t *testing.T) {
	now := time.Now()
	g := NewGroup(nil, Readiness{MaxLag: 5, HeadTimeout: time.Minute})
	ok := Health{Connected: true, Checked: true, Peers: 3, ShouldHavePeers: true}
	stalledAhead := ok
	stalledAhead.Best, stalledAhead.LastHeadAt = 100, now.Add(-10*time.Minute)
	a, b := ok, ok
	a.Best, a.LastHeadAt = 90, now
	b.Best, b.LastHeadAt = 88, now.Add(-time.Second)
	behind := ok
	behind.Best, behind.LastHeadAt = 80, now
	hs := []Health{stalledAhead, a, b, behind}
	g.judge(hs)
	if hs[0].Ready || !strings.Contains(hs[0].NotReadyBecause, "no new head") {
		t.Errorf("stalled node: ready %v, %q", hs[0].Ready, hs[0].NotReadyBecause)
	}
	if !hs[1].Ready || !hs[2].Ready {
		t.Errorf("live nodes judged against a stalled one: %q, %q", hs[1].NotReadyBecause, hs[2].NotReadyBecause)
	}
	if hs[3].Ready || !strings.Contains(hs[3].NotReadyBecause, "behind 90") {
		t.Errorf("lagging node: ready %v, %q", hs[3].Ready, hs[3].NotReadyBecause)
	}
}
