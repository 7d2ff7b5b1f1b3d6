package cacher

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/suber"
)

// noSubsNodes refuses subscriptions but still addresses its nodes.
type noSubsNodes struct{ NodeUpstream }

func (noSubsNodes) Subscribe(context.Context, string, json.RawMessage, string, suber.Sink) (Subscription, error) {
	return nil, suber.ErrNoSubscriptions
}

// forget removes an entry from the memory store.
func (e *testEnv) forget(key string) {
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	if it := e.store.items[key]; it != nil {
		e.store.removeLocked(it)
	}
}

// settle lets the suducer finish what it was kicked into.
func (e *testEnv) settle(t *testing.T) {
	t.Helper()
	e.waitFor(t, "suducer idle", func(Head) bool { return true })
}

// Two nodes of one chain, one of them blocks behind but still ready
// (max_lag is large): after a runtime upgrade the cache must never go
// back to the old spec version, nor store or answer the old runtime's
// version or metadata under the new one, whichever node the group picks.
func TestRuntimeUpgradeWithLaggingNode(t *testing.T) {
	for _, subs := range []bool{true, false} {
		name := "subscriptions"
		if !subs {
			name = "polling"
		}
		t.Run(name, func(t *testing.T) {
			current := fakenode.Start(t)
			ch := current.Chain()
			lagging := fakenode.Start(t, fakenode.WithChain(ch))
			// The lagging node first: whatever takes the first ready node
			// meets it.
			up := upstreamGroup(t, suber.Readiness{MaxLag: 1000}, lagging, current).(NodeUpstream)
			if !subs {
				up = noSubsNodes{up}
			}
			env := startCacheOn(t, current, up, nil)
			base := fakenode.DefaultSpecVersion
			for round := uint32(1); round <= 3; round++ {
				lagging.SetFollow(false)
				ch.NewBlock() // the lagging node does not know it
				spec := base + round
				want := fmt.Sprint(spec)
				ch.SetRuntimeVersion(spec)
				if subs {
					env.waitFor(t, "runtime notification", func(h Head) bool { return h.SpecVersion == want })
				} else {
					deadline := time.Now().Add(20 * time.Second)
					for env.cache.Head().SpecVersion != want {
						if time.Now().After(deadline) {
							t.Fatalf("round %d: polls never found spec %s (have %s)", round, want, env.cache.Head().SpecVersion)
						}
						env.clock.Advance(time.Second)
						env.settle(t)
					}
				}
				meta := `"` + fakenode.Metadata(spec) + `"`
				for i := range 8 {
					if i%2 == 1 {
						// A client miss with nothing known: the entries and
						// the block the runtime was checked at are gone.
						for _, m := range []string{"state_getMetadata", "state_getRuntimeVersion", "chain_getRuntimeVersion"} {
							env.forget(buildKey(env.cache.Head().Genesis, scopeRuntime+want, m, emptyArray))
						}
						env.cache.mu.Lock()
						env.cache.anchor = runtimeAnchor{}
						env.cache.mu.Unlock()
					}
					for _, m := range []string{"state_getRuntimeVersion", "chain_getRuntimeVersion"} {
						if got, _ := specVersion(env.call(t, m, "")); got != want {
							t.Fatalf("round %d call %d: %s() answered spec %s after the upgrade to %s", round, i, m, got, want)
						}
					}
					if got := env.call(t, "state_getMetadata", ""); string(got) != meta {
						t.Fatalf("round %d call %d: state_getMetadata() answered another runtime's metadata (%.40s...)", round, i, got)
					}
					// The suducer reads the version again (a repeated
					// notification, a reconnect, a poll): any node may answer.
					env.clock.Advance(time.Second)
					env.cache.signal(evRuntime)
					env.settle(t)
					if got := env.cache.Head().SpecVersion; got != want {
						t.Fatalf("round %d: spec version went back to %s after the upgrade to %s", round, got, want)
					}
					// Whatever is stored under the new spec is the new runtime's.
					id := env.cache.Head().Genesis
					if v, err := env.store.Get(context.Background(), buildKey(id, scopeRuntime+want, "state_getMetadata", emptyArray)); err == nil && string(v) != meta {
						t.Fatalf("round %d: old metadata stored under spec %s", round, want)
					}
					if v, err := env.store.Get(context.Background(), buildKey(id, scopeRuntime+want, "state_getRuntimeVersion", emptyArray)); err == nil {
						if got, _ := specVersion(v); got != want {
							t.Fatalf("round %d: runtime version %s stored under spec %s", round, got, want)
						}
					}
				}
			}
		})
	}
}

// switchUp sends every call to the upstream in cur.
type switchUp struct{ cur func() Upstream }

func (s switchUp) Call(ctx context.Context, m string, p json.RawMessage) (json.RawMessage, error) {
	return s.cur().Call(ctx, m, p)
}

func (switchUp) Subscribe(context.Context, string, json.RawMessage, string, suber.Sink) (Subscription, error) {
	return nil, suber.ErrNoSubscriptions
}

// The spec version goes down only with the chain: a node that now serves
// another genesis (a development chain started afresh) with an older
// runtime.
func TestSpecVersionGoesDownOnlyWithANewGenesis(t *testing.T) {
	oldNode := fakenode.Start(t)
	oldNode.Chain().SetRuntimeVersion(fakenode.DefaultSpecVersion + 7)
	newNode := fakenode.Start(t) // another chain, at the default version
	oldUp, newUp := upstream(t, oldNode), upstream(t, newNode)
	var useNew atomic.Bool
	cur := func() Upstream {
		if useNew.Load() {
			return newUp
		}
		return oldUp
	}
	env := startCacheOn(t, oldNode, switchUp{cur}, nil)
	oldGenesis := env.cache.Head().Genesis
	if got := env.cache.Head().SpecVersion; got != fmt.Sprint(fakenode.DefaultSpecVersion+7) {
		t.Fatalf("spec %s", got)
	}
	useNew.Store(true)
	want := fmt.Sprint(fakenode.DefaultSpecVersion)
	deadline := time.Now().Add(20 * time.Second)
	for env.cache.Head().SpecVersion != want {
		if time.Now().After(deadline) {
			t.Fatalf("spec version %s kept after the chain changed", env.cache.Head().SpecVersion)
		}
		env.clock.Advance(time.Second)
		env.settle(t)
	}
	if env.cache.Head().Genesis == oldGenesis {
		t.Fatal("genesis not updated")
	}
	if got := env.call(t, "state_getMetadata", ""); string(got) != `"`+fakenode.Metadata(fakenode.DefaultSpecVersion)+`"` {
		t.Fatal("metadata of the old chain's runtime")
	}
}
