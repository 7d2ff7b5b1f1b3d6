package handler_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

func TestChainHeadFollowIsStickyAndStopsWhenItsNodeDies(t *testing.T) {
	gw, a, b := startPair(t)
	c := testgw.Dial(t, gw.WS("/dev"))
	follow := c.Subscribe("chainHead_v1_follow", []bool{false})
	init := c.Next(5 * time.Second)
	if !bytes.Contains(init.Params.Result, []byte(`"initialized"`)) || !bytes.Equal(init.Params.Subscription, follow) {
		t.Fatalf("first event %s", init.Raw)
	}
	var owner *fakenode.Node
	for _, n := range []*fakenode.Node{a, b} {
		if n.ActiveSubscriptions("chainHead_v1_follow") == 1 {
			owner = n
		}
	}
	if owner == nil {
		t.Fatal("no node holds the follow subscription")
	}
	best := a.Chain().Best()
	// Every call naming the follow subscription goes to its node, with
	// the node's own subscription id.
	for range 6 {
		r := c.Call("chainHead_v1_header", []any{json.RawMessage(follow), best.Hash})
		if r.Error != nil || len(r.Result) < 10 {
			t.Fatalf("chainHead_v1_header: %s", r.Raw)
		}
	}
	if other(owner, a, b).Calls("chainHead_v1_header") != 0 || owner.Calls("chainHead_v1_header") != 6 {
		t.Fatalf("header calls: owner %d, other %d", owner.Calls("chainHead_v1_header"), other(owner, a, b).Calls("chainHead_v1_header"))
	}
	if bytes.Contains(owner.LastRequest("chainHead_v1_header"), follow) {
		t.Fatal("the client's subscription id reached the node instead of the node's own")
	}
	if r := c.Call("chainHead_v1_header", []any{"unknownSub", best.Hash}); r.ErrCode() != -32602 {
		t.Fatalf("unknown follow subscription: %s", r.Raw)
	}
	owner.Stop()
	for {
		r := c.Next(5 * time.Second)
		if !bytes.Equal(r.Params.Subscription, follow) {
			continue
		}
		if bytes.Contains(r.Params.Result, []byte(`"stop"`)) {
			break
		}
	}
}

func TestTransactionBroadcastStopReachesTheSameNode(t *testing.T) {
	gw, a, b := startPair(t)
	c := testgw.Dial(t, gw.WS("/dev"))
	for i := range 4 {
		r := c.Call("transaction_v1_broadcast", []string{"0x0" + string(rune('1'+i))})
		if r.Error != nil {
			t.Fatalf("broadcast: %s", r.Raw)
		}
		if r := c.Call("transaction_v1_stop", []json.RawMessage{r.Result}); r.Error != nil {
			t.Fatalf("stop went to another node: %s", r.Raw)
		}
	}
	if a.ActiveBroadcasts()+b.ActiveBroadcasts() != 0 {
		t.Fatal("broadcasts left running")
	}
	if a.Calls("transaction_v1_broadcast") == 0 || b.Calls("transaction_v1_broadcast") == 0 {
		t.Fatal("broadcasts did not spread over both nodes, so stickiness was not exercised")
	}
}

// Subscriptions the node ends itself free their place on the connection.
func TestEndedSubscriptionsFreeTheirPlace(t *testing.T) {
	node := fakenode.Start(t)
	gw := testgw.Start(t, chainBlock("dev", failoverOpts, node.URL()), "\telara_rpc {\n\t\tmax_subscriptions 2\n\t}")
	waitReady(t, gw, 1)
	c := testgw.Dial(t, gw.WS("/dev"))
	for i := range 4 {
		sub := c.Subscribe("chainHead_v1_follow", []bool{false})
		c.Next(5 * time.Second) // initialized
		if node.StopChainHeadFollows() != 1 {
			t.Fatalf("round %d: node had no follow subscription to stop", i)
		}
		for {
			r := c.Next(5 * time.Second)
			if bytes.Equal(r.Params.Subscription, sub) && bytes.Contains(r.Params.Result, []byte(`"stop"`)) {
				break
			}
		}
	}
	// The extrinsic watch ends after its final status too.
	for i := range 3 {
		c.Subscribe("author_submitAndWatchExtrinsic", []string{fmt.Sprintf("0x0%d", i+1)})
		node.Chain().NewBlockFinalized()
		for {
			r := c.Next(5 * time.Second)
			if bytes.Contains(r.Params.Result, []byte(`"finalized"`)) {
				break
			}
		}
	}
	if r := c.Call("chain_subscribeNewHeads", nil); r.Error != nil {
		t.Fatalf("limit still counts ended subscriptions: %s", r.Raw)
	}
}
