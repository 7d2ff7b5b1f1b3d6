package handler_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
	if got := sharedCount(t); got != 1 {
		t.Fatalf("the gateway reports %d shared subscriptions, want 1", got)
	}
}

// sharedCount is the gateway's own count of the chain's shared upstream
// subscriptions (the figure the admin API reports).
func sharedCount(t *testing.T) int {
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
	node := fakenode.Start(t)
	gw := &testgw.Gateway{Port: testgw.FreePort(t)}
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	cf := gw.Caddyfile(chainBlock("dev", testChainOpts, node.URL()), `
	elara_rpc {
		send_queue 32
		write_timeout 2m
	}`)
	cf = strings.Replace(cf, "level {$ELARA_TEST_LOG:ERROR}", "output file "+logFile+"\n\t\tlevel WARN", 1)
	testgw.Load(t, cf)
	t.Cleanup(func() { stopCaddy(t) })
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
	// The operator is told too.
	waitFor(t, "the slow-consumer log line", func() bool {
		logged, _ := os.ReadFile(logFile)
		return bytes.Contains(logged, []byte(`"msg":"disconnecting slow websocket client"`))
	})
}

// Legacy aliases are the same subscription as the names they stand for:
// clients using either share one upstream subscription, and each gets
// notifications and can unsubscribe with the names it used.
func TestAliasesShareOneUpstreamSubscription(t *testing.T) {
	for _, tc := range []struct {
		name      string
		methods   []string // subscribe methods clients use
		unsubs    []string // matching unsubscribe methods
		canonical string   // what the gateway subscribes upstream
		monitor   int      // subscriptions the health monitor holds itself
		// trigger makes the node notify; it returns what the resulting
		// notification's result contains.
		trigger func(*fakenode.Node) string
	}{
		{"new heads", []string{"chain_subscribeNewHeads", "chain_subscribeNewHead", "subscribe_newHead"},
			[]string{"chain_unsubscribeNewHeads", "chain_unsubscribeNewHead", "unsubscribe_newHead"},
			"chain_subscribeNewHeads", 1, newBlock},
		{"finalized heads", []string{"chain_subscribeFinalizedHeads", "chain_subscribeFinalisedHeads"},
			[]string{"chain_unsubscribeFinalizedHeads", "chain_unsubscribeFinalisedHeads"},
			"chain_subscribeFinalizedHeads", 1, newFinalized},
		{"runtime version", []string{"state_subscribeRuntimeVersion", "chain_subscribeRuntimeVersion"},
			[]string{"state_unsubscribeRuntimeVersion", "chain_unsubscribeRuntimeVersion"},
			"state_subscribeRuntimeVersion", 0, func(n *fakenode.Node) string {
				n.Chain().SetRuntimeVersion(n.Chain().SpecVersion() + 1)
				return fmt.Sprintf(`"specVersion":%d`, n.Chain().SpecVersion())
			}},
		{"all heads", []string{"chain_subscribeAllHeads", "chain_subscribeAllHeads"},
			[]string{"chain_unsubscribeAllHeads", "chain_unsubscribeAllHeads"},
			"chain_subscribeAllHeads", 0, newBlock},
		{"justifications", []string{"grandpa_subscribeJustifications", "grandpa_subscribeJustifications"},
			[]string{"grandpa_unsubscribeJustifications", "grandpa_unsubscribeJustifications"},
			"grandpa_subscribeJustifications", 0, func(n *fakenode.Node) string {
				n.Chain().NewBlockFinalized()
				return `"0x`
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw, node := start(t, "")
			baseline(t, node, tc.canonical)
			clients := make([]*testgw.WSClient, len(tc.methods))
			subs := make([]json.RawMessage, len(tc.methods))
			for i, m := range tc.methods {
				clients[i] = testgw.Dial(t, gw.WS("/dev"))
				subs[i] = clients[i].Subscribe(m, nil)
			}
			waitFor(t, "the upstream subscription", func() bool { return node.ActiveSubscriptions(tc.canonical) == tc.monitor+1 })
			for _, m := range tc.methods {
				if m != tc.canonical && node.ActiveSubscriptions(m) != 0 {
					t.Fatalf("the gateway subscribed upstream with the alias %s", m)
				}
			}
			if got := sharedCount(t); got != 1 {
				t.Fatalf("%d shared subscriptions for %v, want 1", got, tc.methods)
			}
			// Every client hears of the next change, on its own id (what
			// it got on joining is skipped).
			want := tc.trigger(node)
			for i, c := range clients {
				for {
					r := c.Next(5 * time.Second)
					if !bytes.Equal(r.Params.Subscription, subs[i]) {
						t.Fatalf("%s client got %s", tc.methods[i], r.Raw)
					}
					if bytes.Contains(r.Params.Result, []byte(want)) {
						break
					}
				}
			}
			for i, c := range clients {
				if r := c.Call(tc.unsubs[i], []json.RawMessage{subs[i]}); string(r.Result) != "true" {
					t.Fatalf("%s: %s", tc.unsubs[i], r.Raw)
				}
			}
			waitFor(t, "the upstream subscription's release", func() bool { return node.ActiveSubscriptions(tc.canonical) == tc.monitor })
		})
	}
}

func newBlock(n *fakenode.Node) string {
	return fmt.Sprintf(`"number":"0x%x"`, n.Chain().NewBlock().Number)
}

func newFinalized(n *fakenode.Node) string {
	return fmt.Sprintf(`"number":"0x%x"`, n.Chain().NewBlockFinalized().Number)
}
