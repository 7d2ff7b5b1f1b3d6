package matcher

import (
	"context"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/suber"
)

// A node that leaves the group while it still works keeps its shared
// head subscriptions until another node is ready to take them (here one
// that only starts connecting later), and the move loses, repeats and
// reorders no head.
func TestHeadsMoveOffALeavingNodeWithoutGap(t *testing.T) {
	chain := fakenode.NewChain()
	fakeA, fakeB := fakenode.Start(t, fakenode.WithChain(chain)), fakenode.Start(t, fakenode.WithChain(chain))
	opts := suber.Options{PoolSize: 1, HealthInterval: 50 * time.Millisecond, BackoffMin: 20 * time.Millisecond}
	a, err := suber.NewNode(fakeA.URL(), opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := suber.NewNode(fakeB.URL(), opts)
	if err != nil {
		t.Fatal(err)
	}
	a.Start()
	g := suber.NewGroup([]*suber.Node{a}, suber.DefaultReadiness)
	m := New(g, Options{CallTimeout: 2 * time.Second})
	t.Cleanup(func() {
		m.Close()
		g.Close()
		a.Close()
		b.Close()
	})

	clients := map[string]*recorder{"chain_subscribeNewHeads": {}, "chain_subscribeFinalizedHeads": {}}
	for method, r := range clients {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cs, err := m.Subscribe(ctx, r, method, nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		cs.Activate()
	}
	stopBlocks := makeBlocks(chain.NewBlockFinalized, 2*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	g.SetNodes([]*suber.Node{b})
	time.Sleep(200 * time.Millisecond)
	if n := m.SharedOn(a); n != 2 {
		t.Fatalf("%d shared subscriptions on the leaving node while no other is ready, want 2", n)
	}
	b.Start()
	deadline := time.Now().Add(5 * time.Second)
	for m.SharedOn(a) != 0 || m.SharedOn(b) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("shared subscriptions: %d on a, %d on b; want all moved to b", m.SharedOn(a), m.SharedOn(b))
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	stopBlocks()
	final := chain.NewBlockFinalized().Number
	for method, r := range clients {
		deadline := time.Now().Add(5 * time.Second)
		for {
			nums := r.numbers(t)
			if len(nums) > 0 && nums[len(nums)-1] == final {
				for i := 1; i < len(nums); i++ {
					if nums[i] != nums[i-1]+1 {
						t.Fatalf("%s: %d then %d across the move (all: %v)", method, nums[i-1], nums[i], nums)
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s stopped at %v, want up to %d", method, nums, final)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
