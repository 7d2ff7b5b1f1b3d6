package fakenode

import (
	"encoding/json"
	"fmt"
	"testing"
)

// nextEvent returns the next chainHead event of sub, skipping other messages.
func nextEvent(t testing.TB, ws *wsClient, sub string) (event string, raw json.RawMessage) {
	t.Helper()
	for {
		m := ws.mustNext()
		if m.Method != "chainHead_v1_followEvent" || m.Params.Subscription != sub {
			continue
		}
		var ev struct{ Event string }
		_ = json.Unmarshal(m.Params.Result, &ev)
		return ev.Event, m.Params.Result
	}
}

// A connection holds at most 4 follow subscriptions; the 5th is refused
// with polkadot-sdk's error, other connections and other kinds of
// subscription are not affected, and an unfollow frees a slot.
func TestChainHeadFollowLimitPerConnection(t *testing.T) {
	n := Start(t)
	ws, ws2 := dial(t, n), dial(t, n)
	var subs []string
	for range 4 {
		subs = append(subs, follow(t, ws, false))
	}
	wantError(t, ws.call("chainHead_v1_follow", false), CodeFollowLimit, "Maximum number of chainHead_follow has been reached")
	follow(t, ws2, false) // another connection has its own 4
	if r := ws.call("chain_subscribeNewHeads"); r.Error != nil {
		t.Fatalf("legacy subscription refused: %s", r.raw)
	}
	ws.call("chainHead_v1_unfollow", subs[0])
	follow(t, ws, false)
	if got := n.ActiveFollows(); got != 5 {
		t.Fatalf("ActiveFollows = %d, want 5", got)
	}
}

// Subscriptions of any kind are bounded per connection, as jsonrpsee does.
func TestSubscriptionLimitPerConnection(t *testing.T) {
	n := Start(t, WithChainHeadLimits(ChainHeadLimits{SubscriptionsPerConnection: 3}))
	ws := dial(t, n)
	for range 3 {
		if r := ws.call("chain_subscribeFinalizedHeads"); r.Error != nil {
			t.Fatalf("subscribe: %s", r.raw)
		}
	}
	wantError(t, ws.call("chain_subscribeNewHeads"), CodeTooManySubscriptions, "Too many subscriptions on the connection")
	wantError(t, ws.call("chainHead_v1_follow", false), CodeTooManySubscriptions, "")
	if r := dial(t, n).call("chain_subscribeNewHeads"); r.Error != nil {
		t.Fatalf("other connection refused: %s", r.raw)
	}
	if DefaultChainHeadLimits.SubscriptionsPerConnection != 1024 {
		t.Fatal("polkadot-sdk's default is 1024 subscriptions per connection")
	}
}

// Pins are counted per subscription and in total: a subscription that
// never unpins is stopped once the node holds too many, one that unpins
// goes on, and the stopped one's pins are freed.
func TestChainHeadPinLimit(t *testing.T) {
	n := Start(t, WithChainHeadLimits(ChainHeadLimits{PinnedBlocks: 10}))
	c := n.Chain()
	wsHog, wsGood := dial(t, n), dial(t, n)
	hog := follow(t, wsHog, false)
	good := follow(t, wsGood, false)
	nextEvent(t, wsHog, hog)
	_, initRaw := nextEvent(t, wsGood, good)
	var init struct{ FinalizedBlockHashes []string }
	_ = json.Unmarshal(initRaw, &init)
	held := init.FinalizedBlockHashes // what good holds pinned
	stopped := false
	for i := 0; i < 12 && !stopped; i++ {
		b := c.NewBlockFinalized()
		for {
			ev, _ := nextEvent(t, wsGood, good)
			if ev == "stop" {
				t.Fatalf("the subscription that unpins was stopped at block %d", i)
			}
			if ev == "finalized" {
				// Keep only the new finalized block pinned.
				if r := wsGood.call("chainHead_v1_unpin", good, held); r.Error != nil {
					t.Fatalf("unpin: %s", r.raw)
				}
				held = []string{b.Hash}
				break
			}
		}
		for {
			ev, _ := nextEvent(t, wsHog, hog)
			if ev == "stop" {
				stopped = true
			}
			if ev == "finalized" || ev == "stop" {
				break
			}
		}
	}
	if !stopped {
		t.Fatal("the subscription that never unpins was not stopped")
	}
	waitFor(t, "the stopped subscription's pins freed", func() bool { return n.PinnedBlocks() == 1 })
	if got := n.ActiveFollows(); got != 1 {
		t.Fatalf("ActiveFollows = %d, want 1", got)
	}
}

// A subscription runs at most 16 operations at once: storage queries
// paused for continue hold their slot; the 17th answers limitReached, and
// finishing one frees a slot.
func TestChainHeadOperationLimit(t *testing.T) {
	n := Start(t)
	c := n.Chain()
	for i := range 6 {
		c.SetStorage(fmt.Sprintf("0x0a%02x", i), "0x01")
	}
	b := c.NewBlockFinalized()
	ws := dial(t, n)
	sub := follow(t, ws, false)
	query := []map[string]string{{"key": "0x0a", "type": "descendantsValues"}}
	var ops []string
	for range 16 {
		r := ws.call("chainHead_v1_storage", sub, b.Hash, query, nil)
		var started struct{ Result, OperationID string }
		if json.Unmarshal(r.Result, &started) != nil || started.Result != "started" {
			t.Fatalf("storage: %s", r.raw)
		}
		ops = append(ops, started.OperationID)
	}
	// Each has sent 5 items and waits.
	waitFor(t, "16 operations waiting", func() bool { return n.opsRunning(firstConn(n), params{json.RawMessage(`"` + sub + `"`)}) == 16 })
	jsonEqual(t, ws.call("chainHead_v1_body", sub, b.Hash).Result, `{"result":"limitReached"}`)
	if r := ws.call("chainHead_v1_stopOperation", sub, ops[0]); r.Error != nil {
		t.Fatalf("stopOperation: %s", r.raw)
	}
	r := ws.call("chainHead_v1_body", sub, b.Hash)
	var started struct{ Result string }
	if json.Unmarshal(r.Result, &started); started.Result != "started" {
		t.Fatalf("after a slot was freed: %s", r.raw)
	}
}

func firstConn(n *Node) *wsConn {
	n.connMu.Lock()
	defer n.connMu.Unlock()
	for c := range n.conns {
		return c
	}
	return nil
}

// A storage query with more than 5 items reports 5, waits for continue,
// then reports the rest and finishes; continue without a wait fails.
func TestChainHeadStorageWaitsForContinue(t *testing.T) {
	n := Start(t)
	c := n.Chain()
	for i := range 7 {
		c.SetStorage(fmt.Sprintf("0x0b%02x", i), "0x02")
	}
	b := c.NewBlockFinalized()
	ws := dial(t, n)
	sub := follow(t, ws, false)
	r := ws.call("chainHead_v1_storage", sub, b.Hash, []map[string]string{{"key": "0x0b", "type": "descendantsHashes"}}, nil)
	var started struct{ OperationID string }
	_ = json.Unmarshal(r.Result, &started)
	op := started.OperationID
	items := func(raw json.RawMessage) int {
		var ev struct{ Items []json.RawMessage }
		_ = json.Unmarshal(raw, &ev)
		return len(ev.Items)
	}
	want := []struct {
		event string
		items int
	}{{"initialized", 0}, {"operationStorageItems", 5}, {"operationWaitingForContinue", 0}}
	for _, w := range want {
		if ev, raw := nextEvent(t, ws, sub); ev != w.event || items(raw) != w.items {
			t.Fatalf("got %s, want %s with %d items", raw, w.event, w.items)
		}
	}
	ws.expectNothingFor(t, sub)
	if r := ws.call("chainHead_v1_continue", sub, op); r.Error != nil {
		t.Fatalf("continue: %s", r.raw)
	}
	if ev, raw := nextEvent(t, ws, sub); ev != "operationStorageItems" || items(raw) != 2 {
		t.Fatalf("after continue: %s", raw)
	}
	if ev, raw := nextEvent(t, ws, sub); ev != "operationStorageDone" {
		t.Fatalf("after continue: %s", raw)
	}
	wantError(t, ws.call("chainHead_v1_continue", sub, op), CodeInvalidParams, "Invalid operation id")
}

// expectNothingFor checks no event of sub is waiting.
func (c *wsClient) expectNothingFor(t testing.TB, sub string) {
	t.Helper()
	c.expectNothing(50e6)
}

// A best block too far past the finalized one stops every follow
// subscription, as polkadot-sdk's max_lagging_distance does.
func TestChainHeadLaggingDistanceStops(t *testing.T) {
	n := Start(t, WithChainHeadLimits(ChainHeadLimits{LaggingDistance: 3}))
	c := n.Chain()
	ws := dial(t, n)
	sub := follow(t, ws, false)
	nextEvent(t, ws, sub)
	for range 4 {
		c.NewBlock()
	}
	for {
		ev, raw := nextEvent(t, ws, sub)
		if ev == "stop" {
			break
		}
		if ev != "newBlock" && ev != "bestBlockChanged" {
			t.Fatalf("unexpected %s", raw)
		}
	}
	if got := n.ActiveFollows(); got != 0 {
		t.Fatalf("ActiveFollows = %d, want 0", got)
	}
}
