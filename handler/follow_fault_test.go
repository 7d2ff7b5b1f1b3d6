package handler_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// A node that breaks the follow protocol with its finalized events must
// not take the gateway down: after a repeated finalized event the shared
// follow still holds its finalized block for the clients to come, and
// after one naming a block it never announced the shared follow ends
// (its clients get stop, as from a node) and the next follow starts on a
// new one. Either way a new follower with withRuntime gets initialized
// with the finalized block and its runtime.
func TestSharedFollowSurvivesBadFinalizedEvents(t *testing.T) {
	unknown := "0x" + fmt.Sprintf("%064x", 0xdead)
	cases := []struct {
		name      string
		finalized func(fin string) string // the event's finalizedBlockHashes
		stopped   bool                    // the first client gets stop
	}{
		{"repeated", func(fin string) string { return fmt.Sprintf("[%q]", fin) }, false},
		{"never announced", func(string) string { return fmt.Sprintf("[%q]", unknown) }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chain := fakenode.NewChain()
			f0 := chain.NewBlockFinalized()
			node := fakenode.Start(t, fakenode.WithChain(chain))
			gw := testgw.Start(t, chainBlock("dev", failoverOpts, node.URL()), "\telara_rpc")
			waitReady(t, gw, 1)

			first := testgw.Dial(t, gw.WS("/dev"))
			subA := first.Subscribe("chainHead_v1_follow", []bool{true})
			if ev, raw := nextFollowEvent(t, first, subA); ev.Event != "initialized" || ev.FinalizedBlockHashes[0] != f0.Hash {
				t.Fatalf("first event %s", raw)
			}
			// The node's id of the shared follow, from a call made on it.
			if r := first.Call("chainHead_v1_header", []any{subA, f0.Hash}); r.Error != nil {
				t.Fatalf("header: %s", r.Raw)
			}
			var upReq struct{ Params []json.RawMessage }
			if err := json.Unmarshal(node.LastRequest("chainHead_v1_header"), &upReq); err != nil || len(upReq.Params) == 0 {
				t.Fatalf("header request at the node: %s", node.LastRequest("chainHead_v1_header"))
			}
			node.SendRaw(fmt.Appendf(nil, `{"jsonrpc":"2.0","method":"chainHead_v1_followEvent","params":{"subscription":%s,"result":{"event":"finalized","finalizedBlockHashes":%s,"prunedBlockHashes":[]}}}`,
				upReq.Params[0], tc.finalized(f0.Hash)))
			ev, raw := nextFollowEvent(t, first, subA)
			if tc.stopped {
				if ev.Event != "stop" {
					t.Fatalf("after a finalized block never announced: %s, want stop", raw)
				}
			} else {
				if ev.Event != "finalized" {
					t.Fatalf("after a repeated finalized event: %s", raw)
				}
				// The client lets go of the block; the gateway must not.
				if r := first.Call("chainHead_v1_unpin", []any{subA, f0.Hash}); r.Error != nil {
					t.Fatalf("unpin: %s", r.Raw)
				}
			}

			second := testgw.Dial(t, gw.WS("/dev"))
			subB := second.Subscribe("chainHead_v1_follow", []bool{true})
			r := second.Next(5 * time.Second)
			var init struct {
				Event                 string          `json:"event"`
				FinalizedBlockHashes  []string        `json:"finalizedBlockHashes"`
				FinalizedBlockRuntime json.RawMessage `json:"finalizedBlockRuntime"`
			}
			_ = json.Unmarshal(r.Params.Result, &init)
			if string(r.Params.Subscription) != string(subB) || init.Event != "initialized" ||
				len(init.FinalizedBlockHashes) != 1 || init.FinalizedBlockHashes[0] != f0.Hash ||
				len(init.FinalizedBlockRuntime) == 0 || string(init.FinalizedBlockRuntime) == "null" {
				t.Fatalf("a new follower's first event: %s", r.Raw)
			}
			if r := second.Call("chainHead_v1_header", []any{subB, f0.Hash}); r.Error != nil {
				t.Fatalf("header of the finalized block for the new follower: %s", r.Raw)
			}
		})
	}
}
