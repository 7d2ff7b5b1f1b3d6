package handler_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
	"github.com/elara-gateway/elara/suber"
)

// baseline waits until the gateway's health monitor holds its own head
// subscriptions on node, and returns the node's subscription count then.
func baseline(t *testing.T, node *fakenode.Node, method string) int {
	t.Helper()
	waitFor(t, "health monitor subscriptions", func() bool {
		return node.ActiveSubscriptions("chain_subscribeFinalizedHeads") >= 1 && node.ActiveSubscriptions("chain_subscribeNewHeads") >= 1
	})
	return node.ActiveSubscriptions(method)
}

func headNumber(t *testing.T, r *testgw.Response) uint64 {
	t.Helper()
	n, ok := suber.HeaderNumber(r.Params.Result)
	if !ok {
		t.Fatalf("not a header notification: %s", r.Raw)
	}
	return n
}

func TestSharedSubscriptionCreatedOnceUnderConcurrency(t *testing.T) {
	gw, node := start(t, "")
	base := baseline(t, node, "chain_subscribeNewHeads")
	calls := node.Calls("chain_subscribeNewHeads")
	const clients = 200
	conns := make([]*testgw.WSClient, clients)
	for i := range conns {
		conns[i] = testgw.Dial(t, gw.WS("/dev"))
	}
	var wg sync.WaitGroup
	ids := make([]string, clients)
	startLine := make(chan struct{})
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startLine
			c.SendRaw([]byte(`{"jsonrpc":"2.0","id":1,"method":"chain_subscribeNewHeads","params":[]}`))
			ids[i] = string(c.Wait("1", 10*time.Second).Result)
		}()
	}
	close(startLine)
	wg.Wait()
	if got := node.Calls("chain_subscribeNewHeads") - calls; got != 1 {
		t.Fatalf("%d clients subscribing at once made %d upstream subscriptions, want 1", clients, got)
	}
	if got := node.ActiveSubscriptions("chain_subscribeNewHeads"); got != base+1 {
		t.Fatalf("active upstream subscriptions %d, want %d", got, base+1)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" || seen[id] {
			t.Fatalf("subscription ids must be distinct per client: %q", id)
		}
		seen[id] = true
	}
	h := node.Chain().NewBlock()
	for i, c := range conns {
		var got *testgw.Response
		for got == nil || headNumber(t, got) < h.Number {
			got = c.Next(5 * time.Second)
		}
		if string(got.Params.Subscription) != ids[i] {
			t.Fatalf("client %d got notification for %s, its id is %s", i, got.Params.Subscription, ids[i])
		}
	}
}

func TestLateJoinerGetsCurrentValueOnceAndEveryLaterOne(t *testing.T) {
	gw, node := start(t, "")
	chain := node.Chain()
	for _, tc := range []struct {
		method  string
		advance func()
	}{
		{"chain_subscribeNewHeads", func() { chain.NewBlock() }},
		{"chain_subscribeFinalizedHeads", func() { chain.NewBlockFinalized() }},
		{"state_subscribeRuntimeVersion", func() { chain.SetRuntimeVersion(chain.SpecVersion() + 1) }},
	} {
		t.Run(tc.method, func(t *testing.T) {
			// Finalize what earlier cases built, so each advance moves the
			// finalized head by exactly one.
			chain.Finalize(chain.Best().Number)
			a := testgw.Dial(t, gw.WS("/dev"))
			a.Subscribe(tc.method, nil)
			a.Next(5 * time.Second) // the current value
			tc.advance()
			latest := a.Next(5 * time.Second)

			b := testgw.Dial(t, gw.WS("/dev"))
			b.Subscribe(tc.method, nil)
			replay := b.Next(5 * time.Second)
			if !bytes.Equal(replay.Params.Result, latest.Params.Result) {
				t.Fatalf("late joiner got %s, current is %s", replay.Params.Result, latest.Params.Result)
			}
			b.NoNotification(100 * time.Millisecond)
			tc.advance()
			na, nb := a.Next(5*time.Second), b.Next(5*time.Second)
			if !bytes.Equal(na.Params.Result, nb.Params.Result) {
				t.Fatalf("clients disagree: %s vs %s", na.Params.Result, nb.Params.Result)
			}
			a.NoNotification(100 * time.Millisecond)
			b.NoNotification(100 * time.Millisecond)
		})
	}
}

func TestStorageSubscriptionsShareByKeySetAndReplayTheirKeys(t *testing.T) {
	gw, node := start(t, "")
	chain := node.Chain()
	k1, k2 := "0x"+strings.Repeat("aa", 32), "0x"+strings.Repeat("bb", 32)
	chain.SetStorage(k1, "0x01")
	chain.SetStorage(k2, "0x02")
	base := node.ActiveSubscriptions("state_subscribeStorage")

	a := testgw.Dial(t, gw.WS("/dev"))
	a.Subscribe("state_subscribeStorage", []any{[]string{k1, k2}})
	a.Next(5 * time.Second)
	chain.SetStorage(k2, "0x22")
	a.Next(5 * time.Second)

	b := testgw.Dial(t, gw.WS("/dev"))
	b.Subscribe("state_subscribeStorage", []any{[]string{"0x" + strings.ToUpper(k2[2:]), k1}}) // same set, other order and case
	c := testgw.Dial(t, gw.WS("/dev"))
	c.Subscribe("state_subscribeStorage", []any{[]string{k1}})
	if got := node.ActiveSubscriptions("state_subscribeStorage") - base; got != 2 {
		t.Fatalf("upstream storage subscriptions %d, want 2 (one per key set)", got)
	}
	changes := func(r *testgw.Response) map[string]string {
		var sc struct{ Changes [][]*string }
		if err := json.Unmarshal(r.Params.Result, &sc); err != nil {
			t.Fatalf("%s: %v", r.Raw, err)
		}
		out := map[string]string{}
		for _, ch := range sc.Changes {
			v := "null"
			if ch[1] != nil {
				v = *ch[1]
			}
			out[*ch[0]] = v
		}
		return out
	}
	if got := changes(b.Next(5 * time.Second)); len(got) != 2 || got[k1] != "0x01" || got[k2] != "0x22" {
		t.Fatalf("late joiner replay %v, want both keys' current values", got)
	}
	if got := changes(c.Next(5 * time.Second)); len(got) != 1 || got[k1] != "0x01" {
		t.Fatalf("single-key subscriber got %v", got)
	}
}

func TestSharedSubscriptionGracePeriod(t *testing.T) {
	node := fakenode.Start(t)
	gw := testgw.Start(t, chainBlock("dev", "request_timeout 2s\nhealth_interval 200ms\nsubscription_grace 400ms", node.URL()), "\telara_rpc")
	base := baseline(t, node, "chain_subscribeRuntimeVersion")
	base = node.ActiveSubscriptions("state_subscribeRuntimeVersion")
	calls := node.Calls("state_subscribeRuntimeVersion")

	a := testgw.Dial(t, gw.WS("/dev"))
	sub := a.Subscribe("state_subscribeRuntimeVersion", nil)
	a.Call("state_unsubscribeRuntimeVersion", []json.RawMessage{sub})
	// Within the grace period a new client reuses the upstream subscription.
	b := testgw.Dial(t, gw.WS("/dev"))
	b.Subscribe("state_subscribeRuntimeVersion", nil)
	if r := b.Next(5 * time.Second); r.Method != "state_runtimeVersion" {
		t.Fatalf("replay %s", r.Raw)
	}
	if got := node.Calls("state_subscribeRuntimeVersion") - calls; got != 1 {
		t.Fatalf("client within the grace period caused %d upstream subscribes, want 1 in all", got)
	}
	b.Conn.Close()
	time.Sleep(100 * time.Millisecond)
	if node.ActiveSubscriptions("state_subscribeRuntimeVersion") != base+1 {
		t.Fatal("upstream subscription released before the grace period ended")
	}
	waitFor(t, "release after grace", func() bool { return node.ActiveSubscriptions("state_subscribeRuntimeVersion") == base })
}

func TestThousandClientsOneUpstreamSubscription(t *testing.T) {
	if testing.Short() {
		t.Skip("1000 connections")
	}
	gw, node := start(t, "")
	base := baseline(t, node, "chain_subscribeNewHeads")
	const n = 1000
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		c, _, err := websocket.DefaultDialer.Dial(gw.WS("/dev"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
		c.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"chain_subscribeNewHeads","params":[]}`))
	}
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, msg, err := c.ReadMessage(); err != nil || !bytes.Contains(msg, []byte(`"result"`)) {
			t.Fatalf("subscribe reply %s %v", msg, err)
		}
	}
	if got := node.ActiveSubscriptions("chain_subscribeNewHeads") - base; got != 1 {
		t.Fatalf("1000 clients made %d upstream subscriptions, want 1", got)
	}
	if got := sharedCount(t, gw); got < 1 {
		t.Fatalf("admin report shows %d shared subscriptions", got)
	}
}

// sharedCount reads the chain's shared subscription count from the
// gateway's health endpoint neighbour, the admin report.
func sharedCount(t *testing.T, _ *testgw.Gateway) int {
	t.Helper()
	total := 0
	for _, r := range appReports() {
		if r.Chain == "dev" {
			total += r.SharedSubscriptions
		}
	}
	return total
}

func TestSlowConsumerIsDisconnectedOthersKeepUp(t *testing.T) {
	gw, node := start(t, `
	elara_rpc {
		send_queue 32
		write_timeout 2m
	}`)
	key := "0x" + strings.Repeat("cc", 32)
	slow, _, err := websocket.DefaultDialer.Dial(gw.WS("/dev"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	// A small receive buffer so the slow client's socket fills quickly.
	slow.UnderlyingConn().(interface{ SetReadBuffer(int) error }).SetReadBuffer(64 << 10)
	slow.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"state_subscribeStorage","params":[["`+key+`"]]}`))
	fast := testgw.Dial(t, gw.WS("/dev"))
	fast.Subscribe("state_subscribeStorage", []any{[]string{key}})
	fast.Next(5 * time.Second)
	big := strings.Repeat("ab", 32<<10) // 64 KiB values
	const changes = 300
	for i := range changes {
		node.Chain().SetStorage(key, fmt.Sprintf("0x%04x%s", i, big))
		r := fast.Next(10 * time.Second)
		if !bytes.Contains(r.Params.Result, []byte(fmt.Sprintf(`"0x%04x`, i))) {
			t.Fatalf("fast client missed change %d", i)
		}
	}
	// The slow client is told why it was dropped.
	_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := slow.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errorAs(err, &ce) || ce.Code != websocket.ClosePolicyViolation || !strings.Contains(ce.Text, "slow") {
			t.Fatalf("slow client ended with %v, want close 1008 with a reason", err)
		}
		break
	}
}
