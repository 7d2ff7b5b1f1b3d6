package handler_test

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// Calls on a shared follow are client calls like any other: a follower
// flooding chainHead_v1_header on the one upstream follow has at most
// its bound at the node, the rest wait their turn in the gateway (and do
// not fail), so another follower's header call is served after a few of
// the flood's calls, not after the whole flood queued at the node.
func TestSharedFollowCallsAreScheduledFairly(t *testing.T) {
	cases := []struct {
		name  string
		chain string // chain options
		site  string
		bound int64 // the flood's header calls at the node at once, at most
	}{
		{"max_calls_in_flight", "max_upstream_calls 100000", "\telara_rpc {\n\t\tmax_calls_in_flight 4\n\t}", 4},
		{"max_upstream_calls", "max_upstream_calls 4", "\telara_rpc", 4},
	}
	const floodCalls = 48
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chain := fakenode.NewChain()
			f0 := chain.NewBlockFinalized()
			b1 := chain.NewBlock() // the victim asks for this one
			node := fakenode.Start(t, fakenode.WithChain(chain))
			// Like a real node, it runs 2 calls at once and queues the
			// rest in arrival order.
			// Of the flood's calls: at the node, most at once, done, done
			// when the victim's call ended, at the node when it arrived.
			var held, peak, floodDone, floodDoneAtVictim, aheadOfVictim atomic.Int64
			sem := make(chan struct{}, 2)
			node.Handle("chainHead_v1_header", func(p json.RawMessage) (any, *fakenode.Error) {
				var params []string
				_ = json.Unmarshal(p, &params)
				victim := len(params) > 1 && params[1] == b1.Hash
				if victim {
					aheadOfVictim.Store(held.Load())
				} else {
					h := held.Add(1)
					defer held.Add(-1)
					for old := peak.Load(); h > old && !peak.CompareAndSwap(old, h); old = peak.Load() {
					}
				}
				sem <- struct{}{}
				time.Sleep(60 * time.Millisecond)
				<-sem
				if victim {
					floodDoneAtVictim.Store(floodDone.Load())
				} else {
					floodDone.Add(1)
				}
				return "0x00", nil
			})
			gw := testgw.Start(t, chainBlock("dev", "request_timeout 30s\nhealth_interval 200ms\n"+tc.chain, node.URL()), tc.site)
			waitReady(t, gw, 1)

			flooder, victim := testgw.Dial(t, gw.WS("/dev")), testgw.Dial(t, gw.WS("/dev"))
			subF := flooder.Subscribe("chainHead_v1_follow", []bool{false})
			subV := victim.Subscribe("chainHead_v1_follow", []bool{false})
			for _, c := range []struct {
				c   *testgw.WSClient
				sub json.RawMessage
			}{{flooder, subF}, {victim, subV}} {
				if ev, raw := nextFollowEvent(t, c.c, c.sub); ev.Event != "initialized" || ev.FinalizedBlockHashes[0] != f0.Hash {
					t.Fatalf("first event %s", raw)
				}
				if ev, raw := nextFollowEvent(t, c.c, c.sub); ev.Event != "newBlock" || ev.BlockHash != b1.Hash {
					t.Fatalf("second event %s", raw)
				}
			}

			for i := range floodCalls {
				flooder.SendRaw(fmt.Appendf(nil, `{"jsonrpc":"2.0","id":"f%d","method":"chainHead_v1_header","params":[%s,%q]}`, i, subF, f0.Hash))
			}
			waitFor(t, "the flood at the node", func() bool { return held.Load() >= tc.bound })
			time.Sleep(100 * time.Millisecond) // unbounded, the whole flood would be there by now

			before := floodDone.Load()
			if r := victim.Call("chainHead_v1_header", []any{subV, b1.Hash}); r.Error != nil || string(r.Result) != `"0x00"` {
				t.Fatalf("victim's header: %s", r.Raw)
			}
			if n := aheadOfVictim.Load(); n > tc.bound {
				t.Errorf("the victim's header call found %d of the flood's %d calls ahead of it at the node, want at most %d", n, floodCalls, tc.bound)
			}
			// Some slack for the victim's way through the gateway, far
			// below the flood.
			if n := floodDoneAtVictim.Load() - before; n > 4*tc.bound {
				t.Errorf("the victim's header call waited for %d of the flood's %d calls, want at most %d", n, floodCalls, 4*tc.bound)
			}
			for i := range floodCalls {
				if r := flooder.Wait(fmt.Sprintf(`"f%d"`, i), 30*time.Second); r.Error != nil {
					t.Fatalf("a flood call over the bound failed instead of waiting: %s", r.Raw)
				}
			}
			if p := peak.Load(); p > tc.bound {
				t.Errorf("the node held %d of the flood's header calls at once, want at most %d", p, tc.bound)
			}
		})
	}
}

// max_pending_calls bounds calls on a shared follow too: a flood of them
// over the bound is refused with -32029 before reaching the node.
func TestSharedFollowCallsCountAgainstMaxPendingCalls(t *testing.T) {
	chain := fakenode.NewChain()
	f0 := chain.NewBlockFinalized()
	node := fakenode.Start(t, fakenode.WithChain(chain))
	node.SetDelay("chainHead_v1_header", 200*time.Millisecond)
	gw := testgw.Start(t, chainBlock("dev", "request_timeout 30s\nhealth_interval 200ms\nmax_pending_calls 4", node.URL()), "\telara_rpc")
	waitReady(t, gw, 1)
	c := testgw.Dial(t, gw.WS("/dev"))
	sub := c.Subscribe("chainHead_v1_follow", []bool{false})
	if ev, raw := nextFollowEvent(t, c, sub); ev.Event != "initialized" {
		t.Fatalf("first event %s", raw)
	}
	before := node.Calls("chainHead_v1_header")
	const calls = 16
	for i := range calls {
		c.SendRaw(fmt.Appendf(nil, `{"jsonrpc":"2.0","id":"f%d","method":"chainHead_v1_header","params":[%s,%q]}`, i, sub, f0.Hash))
	}
	refused := 0
	for i := range calls {
		r := c.Wait(fmt.Sprintf(`"f%d"`, i), 10*time.Second)
		switch {
		case r.Error == nil:
		case r.ErrCode() == -32029:
			refused++
		default:
			t.Fatalf("header: %s", r.Raw)
		}
	}
	if refused == 0 {
		t.Fatalf("none of %d calls at once was refused with max_pending_calls 4", calls)
	}
	if reached := node.Calls("chainHead_v1_header") - before; reached != calls-refused {
		t.Fatalf("%d calls reached the node, want the %d not refused", reached, calls-refused)
	}
}
