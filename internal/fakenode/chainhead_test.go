package fakenode

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// expectEvent reads the next message and checks it is the chainHead event
// want (exact bytes) of subscription id.
func expectEvent(t testing.TB, ws *wsClient, id, want string) {
	t.Helper()
	m := ws.mustNext()
	if m.Method != "chainHead_v1_followEvent" || m.Params.Subscription != id || string(m.Params.Result) != want {
		t.Fatalf("got  %s\nwant event %s on %s", m.raw, want, id)
	}
}

func follow(t testing.TB, ws *wsClient, withRuntime bool) string {
	t.Helper()
	r := ws.call("chainHead_v1_follow", withRuntime)
	var id string
	if r.Error != nil || json.Unmarshal(r.Result, &id) != nil || !subIDRE.MatchString(id) {
		t.Fatalf("chainHead_v1_follow: %s", r.raw)
	}
	return id
}

func wantError(t testing.TB, m rpcMsg, code int, message string) {
	t.Helper()
	if m.Error == nil || m.Error.Code != code || (message != "" && m.Error.Message != message) {
		t.Fatalf("want error %d %q, got %s", code, message, m.raw)
	}
}

func rt(spec int) string {
	return fmt.Sprintf(`{"type":"valid","spec":{"specName":"fake","implName":"fake","specVersion":%d,"implVersion":0,"transactionVersion":1,"apis":{}}}`, spec)
}

func TestChainHeadFollow(t *testing.T) {
	cases := []struct {
		withRuntime bool
		initRuntime string // ,"finalizedBlockRuntime":...
		sameRuntime string // ,"newRuntime":null
		newRuntime  string // ,"newRuntime":{...101...}
	}{
		{false, "", "", ""},
		{true, `,"finalizedBlockRuntime":` + rt(100), `,"newRuntime":null`, `,"newRuntime":` + rt(101)},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint("withRuntime=", tc.withRuntime), func(t *testing.T) {
			n := Start(t)
			c := n.Chain()
			ws := dial(t, n)
			id := follow(t, ws, tc.withRuntime)
			b1 := c.Best()
			expectEvent(t, ws, id, `{"event":"initialized","finalizedBlockHashes":["`+b1.Hash+`"]`+tc.initRuntime+`}`)
			ws.expectNothing(30 * time.Millisecond) // best == finalized: no bestBlockChanged
			if got := n.ActiveSubscriptions("chainHead_v1_follow"); got != 1 {
				t.Fatalf("ActiveSubscriptions = %d", got)
			}

			b2 := c.NewBlock()
			expectEvent(t, ws, id, `{"event":"newBlock","blockHash":"`+b2.Hash+`","parentBlockHash":"`+b1.Hash+`"`+tc.sameRuntime+`}`)
			expectEvent(t, ws, id, `{"event":"bestBlockChanged","bestBlockHash":"`+b2.Hash+`"}`)

			c.SetRuntimeVersion(101) // reported with the next block
			ws.expectNothing(30 * time.Millisecond)
			b3 := c.NewBlock()
			expectEvent(t, ws, id, `{"event":"newBlock","blockHash":"`+b3.Hash+`","parentBlockHash":"`+b2.Hash+`"`+tc.newRuntime+`}`)
			expectEvent(t, ws, id, `{"event":"bestBlockChanged","bestBlockHash":"`+b3.Hash+`"}`)
			b4 := c.NewBlock()
			expectEvent(t, ws, id, `{"event":"newBlock","blockHash":"`+b4.Hash+`","parentBlockHash":"`+b3.Hash+`"`+tc.sameRuntime+`}`)
			expectEvent(t, ws, id, `{"event":"bestBlockChanged","bestBlockHash":"`+b4.Hash+`"}`)

			c.Finalize(3) // two blocks at once: both listed, oldest first
			expectEvent(t, ws, id, `{"event":"finalized","finalizedBlockHashes":["`+b2.Hash+`","`+b3.Hash+`"],"prunedBlockHashes":[]}`)
			c.Finalize(4)
			expectEvent(t, ws, id, `{"event":"finalized","finalizedBlockHashes":["`+b4.Hash+`"],"prunedBlockHashes":[]}`)

			for range 2 { // unfollow answers null, known id or not
				if r := ws.call("chainHead_v1_unfollow", id); r.Error != nil || string(r.Result) != "null" {
					t.Fatalf("unfollow: %s", r.raw)
				}
			}
			c.NewBlockFinalized()
			ws.expectNothing(30 * time.Millisecond)
			if n.ActiveSubscriptions("chainHead_v1_follow") != 0 || n.TotalActiveSubscriptions() != 0 {
				t.Fatal("follow subscription still counted")
			}
		})
	}
}

// TestChainHeadFollowStart: blocks above the finalized one are announced
// right after initialized.
func TestChainHeadFollowStart(t *testing.T) {
	n := Start(t)
	c := n.Chain()
	b1, b2, b3 := c.Best(), c.NewBlock(), c.NewBlock()
	ws := dial(t, n)
	id := follow(t, ws, false)
	for _, want := range []string{
		`{"event":"initialized","finalizedBlockHashes":["` + b1.Hash + `"]}`,
		`{"event":"newBlock","blockHash":"` + b2.Hash + `","parentBlockHash":"` + b1.Hash + `"}`,
		`{"event":"newBlock","blockHash":"` + b3.Hash + `","parentBlockHash":"` + b2.Hash + `"}`,
		`{"event":"bestBlockChanged","bestBlockHash":"` + b3.Hash + `"}`,
	} {
		expectEvent(t, ws, id, want)
	}
	c.Finalize(3)
	expectEvent(t, ws, id, `{"event":"finalized","finalizedBlockHashes":["`+b2.Hash+`","`+b3.Hash+`"],"prunedBlockHashes":[]}`)
}

func TestChainHeadFollowErrors(t *testing.T) {
	n := Start(t)
	ws := dial(t, n)
	cases := []struct {
		name   string
		params []any
		code   int
	}{
		{"no params", nil, CodeInvalidParams},
		{"null", []any{nil}, CodeInvalidParams},
		{"not a bool", []any{"yes"}, CodeInvalidParams},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, ws.call("chainHead_v1_follow", tc.params...), tc.code, "")
		})
	}
	t.Run("HTTP", func(t *testing.T) {
		wantError(t, httpCall(t, n, "chainHead_v1_follow", false), CodeInternalError, "Internal error")
		wantError(t, httpCall(t, n, "chainHead_v1_unfollow", "abcdefghijklmnop"), CodeInternalError, "Internal error")
	})
	t.Run("unfollow without id", func(t *testing.T) {
		wantError(t, ws.call("chainHead_v1_unfollow"), CodeInvalidParams, "")
	})
	if n.TotalActiveSubscriptions() != 0 {
		t.Fatal("a failed follow created a subscription")
	}
}

// TestChainHeadEarly: the follow reply precedes its events unless early
// notifications are on.
func TestChainHeadEarly(t *testing.T) {
	for _, early := range []bool{false, true} {
		t.Run(fmt.Sprint(early), func(t *testing.T) {
			n := Start(t)
			n.SetEarlyNotifications(early)
			ws := dial(t, n)
			ws.send("chainHead_v1_follow", false)
			a, b := ws.mustNext(), ws.mustNext()
			if a.isNotification() != early || b.isNotification() == early {
				t.Fatalf("order: %s then %s", a.raw, b.raw)
			}
		})
	}
}

func TestChainHeadHeader(t *testing.T) {
	chain := NewChain()
	n, other := Start(t, WithChain(chain)), Start(t, WithChain(chain))
	ws, ws2, wsOther := dial(t, n), dial(t, n), dial(t, other)
	sub := follow(t, ws, false)
	sub2 := follow(t, ws2, false)                        // same node, another connection
	subOther := follow(t, wsOther, false)                // another node
	legacy, _ := ws.subscribe("chain_subscribeNewHeads") // right connection, wrong kind
	gone := follow(t, ws, false)
	ws.call("chainHead_v1_unfollow", gone)

	g, b1 := mustHeader(t, chain, 0), mustHeader(t, chain, 1)
	hexOf := func(h Header) string {
		js, _ := json.Marshal(h)
		return `"0x` + hex.EncodeToString(js) + `"`
	}
	unknown := "0x" + strings.Repeat("ab", 32)
	const badSub = "Invalid followSubscription"

	cases := []struct {
		name    string
		params  []any
		want    string // JSON result, if no error
		wantErr int
		wantMsg string
	}{
		{name: "best", params: []any{sub, b1.Hash}, want: hexOf(b1)},
		// Only blocks the subscription reported and holds pinned, as in polkadot-sdk.
		{name: "genesis, not pinned", params: []any{sub, g.Hash}, wantErr: -32801, wantMsg: "Invalid block hash"},
		{name: "upper-case hash", params: []any{sub, "0x" + strings.ToUpper(b1.Hash[2:])}, want: hexOf(b1)},
		{name: "unknown hash", params: []any{sub, unknown}, wantErr: -32801, wantMsg: "Invalid block hash"},
		{name: "malformed hash", params: []any{sub, "0x12"}, wantErr: CodeInvalidParams, wantMsg: "Invalid params"},
		{name: "unknown subscription", params: []any{"abcdefghijklmnop", b1.Hash}, wantErr: CodeInvalidParams, wantMsg: badSub},
		{name: "other connection's subscription", params: []any{sub2, b1.Hash}, wantErr: CodeInvalidParams, wantMsg: badSub},
		{name: "other node's subscription", params: []any{subOther, b1.Hash}, wantErr: CodeInvalidParams, wantMsg: badSub},
		{name: "legacy subscription", params: []any{legacy, b1.Hash}, wantErr: CodeInvalidParams, wantMsg: badSub},
		{name: "unfollowed subscription", params: []any{gone, b1.Hash}, wantErr: CodeInvalidParams, wantMsg: badSub},
		{name: "missing hash", params: []any{sub}, wantErr: CodeInvalidParams, wantMsg: "Invalid params"},
		{name: "no params", wantErr: CodeInvalidParams, wantMsg: "Invalid params"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := ws.call("chainHead_v1_header", tc.params...)
			if tc.wantErr != 0 {
				wantError(t, m, tc.wantErr, tc.wantMsg)
				return
			}
			if m.Error != nil || string(m.Result) != tc.want {
				t.Fatalf("got %s\nwant %s", m.raw, tc.want)
			}
		})
	}
	t.Run("decodes", func(t *testing.T) {
		var s string
		_ = json.Unmarshal(ws.call("chainHead_v1_header", sub, b1.Hash).Result, &s)
		raw, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
		if err != nil {
			t.Fatal(err)
		}
		if h := headerOf(t, raw); h.Number != 1 || h.ParentHash != g.Hash {
			t.Fatalf("header %s", raw)
		}
	})
	t.Run("HTTP", func(t *testing.T) {
		wantError(t, httpCall(t, n, "chainHead_v1_header", sub, b1.Hash), CodeInvalidParams, badSub)
	})
	t.Run("LastRequest", func(t *testing.T) {
		ws2.call("chainHead_v1_header", sub2, b1.Hash)
		if !strings.Contains(string(n.LastRequest("chainHead_v1_header")), `"`+sub2+`"`) {
			t.Fatalf("LastRequest = %s", n.LastRequest("chainHead_v1_header"))
		}
	})
	t.Run("lagging node", func(t *testing.T) {
		other.SetFollow(false)
		defer other.SetFollow(true)
		b := chain.NewBlock()
		wantError(t, wsOther.call("chainHead_v1_header", subOther, b.Hash), -32801, "Invalid block hash")
		if m := ws.call("chainHead_v1_header", sub, b.Hash); string(m.Result) != hexOf(b) {
			t.Fatalf("following node: %s", m.raw)
		}
	})
	if got := n.ActiveSubscriptions("chainHead_v1_follow"); got != 2 {
		t.Fatalf("ActiveSubscriptions = %d, want 2", got)
	}
}

func TestChainHeadUnpin(t *testing.T) {
	n := Start(t)
	ws, ws2 := dial(t, n), dial(t, n)
	sub := follow(t, ws, false)
	sub2 := follow(t, ws2, false)
	h := n.Chain().Best().Hash
	cases := []struct {
		name    string
		params  []any
		wantErr int
		wantMsg string
	}{
		{name: "repeated hash", params: []any{sub, []string{h, h}}, wantErr: -32801, wantMsg: "Invalid block hash"},
		{name: "one hash", params: []any{sub, h}},
		{name: "no longer pinned", params: []any{sub, []string{h}}, wantErr: -32801, wantMsg: "Invalid block hash"},
		{name: "empty list", params: []any{sub, []string{}}},
		{name: "other connection's subscription", params: []any{sub2, h}, wantErr: CodeInvalidParams, wantMsg: "Invalid followSubscription"},
		{name: "unknown subscription", params: []any{"nope", h}, wantErr: CodeInvalidParams, wantMsg: "Invalid followSubscription"},
		{name: "number instead of hash", params: []any{sub, 7}, wantErr: CodeInvalidParams, wantMsg: "Invalid params"},
		{name: "missing hash", params: []any{sub}, wantErr: CodeInvalidParams, wantMsg: "Invalid params"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := ws.call("chainHead_v1_unpin", tc.params...)
			if tc.wantErr != 0 {
				wantError(t, m, tc.wantErr, tc.wantMsg)
				return
			}
			if m.Error != nil || string(m.Result) != "null" {
				t.Fatalf("got %s", m.raw)
			}
		})
	}
}

// TestChainHeadCatchUp: a lagging node's followers hear of every block it
// missed once it catches up.
func TestChainHeadCatchUp(t *testing.T) {
	n := Start(t)
	c := n.Chain()
	ws := dial(t, n)
	id := follow(t, ws, true)
	b1 := c.Best()
	expectEvent(t, ws, id, `{"event":"initialized","finalizedBlockHashes":["`+b1.Hash+`"],"finalizedBlockRuntime":`+rt(100)+`}`)
	n.SetFollow(false)
	b2, b3 := c.NewBlock(), c.NewBlock()
	c.Finalize(3)
	ws.expectNothing(30 * time.Millisecond)
	n.SetFollow(true)
	for _, want := range []string{
		`{"event":"newBlock","blockHash":"` + b2.Hash + `","parentBlockHash":"` + b1.Hash + `","newRuntime":null}`,
		`{"event":"newBlock","blockHash":"` + b3.Hash + `","parentBlockHash":"` + b2.Hash + `","newRuntime":null}`,
		`{"event":"bestBlockChanged","bestBlockHash":"` + b3.Hash + `"}`,
		`{"event":"finalized","finalizedBlockHashes":["` + b2.Hash + `","` + b3.Hash + `"],"prunedBlockHashes":[]}`,
	} {
		expectEvent(t, ws, id, want)
	}
	ws.expectNothing(30 * time.Millisecond)
}

func TestChainHeadEndings(t *testing.T) {
	cases := []struct {
		name string
		end  func(t *testing.T, n *Node, ws *wsClient, id string)
		stop bool // the client gets {"event":"stop"}
	}{
		{"unfollow", func(_ *testing.T, _ *Node, ws *wsClient, id string) { ws.call("chainHead_v1_unfollow", id) }, false},
		{"StopChainHeadFollows", func(t *testing.T, n *Node, _ *wsClient, _ string) {
			if got := n.StopChainHeadFollows(); got != 1 {
				t.Fatalf("StopChainHeadFollows = %d", got)
			}
		}, true},
		{"DisconnectAll", func(_ *testing.T, n *Node, _ *wsClient, _ string) { n.DisconnectAll() }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := Start(t)
			ws := dial(t, n)
			id := follow(t, ws, false)
			ws.mustNext() // initialized
			tc.end(t, n, ws, id)
			if tc.stop {
				expectEvent(t, ws, id, `{"event":"stop"}`)
				wantError(t, ws.call("chainHead_v1_header", id, n.Chain().Best().Hash), CodeInvalidParams, "Invalid followSubscription")
			}
			n.Chain().NewBlockFinalized()
			ws.expectNothing(30 * time.Millisecond)
			waitFor(t, "no follow subscriptions", func() bool {
				return n.ActiveSubscriptions("chainHead_v1_follow") == 0 && n.TotalActiveSubscriptions() == 0
			})
		})
	}
}

func TestTransactionBroadcast(t *testing.T) {
	chain := NewChain()
	n, other := Start(t, WithChain(chain)), Start(t, WithChain(chain))
	ws, ws2 := dial(t, n), dial(t, n)

	broadcast := func(tx string) string {
		t.Helper()
		var id string
		if m := ws.call("transaction_v1_broadcast", tx); m.Error != nil || json.Unmarshal(m.Result, &id) != nil || !subIDRE.MatchString(id) {
			t.Fatalf("broadcast: %s", m.raw)
		}
		return id
	}
	opWS, opDup, opHTTP := broadcast("0x0102"), broadcast("0x0102"), ""
	if opWS == opDup {
		t.Fatal("two broadcasts share an operation id")
	}
	if m := httpCall(t, n, "transaction_v1_broadcast", "0x0304"); m.Error != nil || json.Unmarshal(m.Result, &opHTTP) != nil {
		t.Fatalf("HTTP broadcast: %s", m.raw)
	}
	if got := n.ActiveBroadcasts(); got != 3 {
		t.Fatalf("ActiveBroadcasts = %d", got)
	}
	// The transactions make it into the next block (the duplicate once).
	if b := chain.NewBlock(); b.Number != 2 {
		t.Fatal(b)
	}
	if m := ws.call("chain_getBlock"); !strings.Contains(string(m.Result), `"extrinsics":["0x0102","0x0304"]`) {
		t.Fatalf("block: %s", m.raw)
	}

	const badOp = "Invalid operation id"
	cases := []struct {
		name    string
		call    func(method string, params ...any) rpcMsg
		method  string
		params  []any
		wantErr int
		wantMsg string
	}{
		{name: "stop on another node", call: wsCaller(dial(t, other)), method: "transaction_v1_stop", params: []any{opWS}, wantErr: CodeInvalidParams, wantMsg: badOp},
		{name: "stop", call: ws.call, method: "transaction_v1_stop", params: []any{opWS}},
		{name: "stop again", call: ws.call, method: "transaction_v1_stop", params: []any{opWS}, wantErr: CodeInvalidParams, wantMsg: badOp},
		{name: "stop from another connection", call: ws2.call, method: "transaction_v1_stop", params: []any{opDup}},
		{name: "stop over HTTP", call: httpCaller(t, n), method: "transaction_v1_stop", params: []any{opHTTP}},
		{name: "stop unknown", call: ws.call, method: "transaction_v1_stop", params: []any{"abcdefghijklmnop"}, wantErr: CodeInvalidParams, wantMsg: badOp},
		{name: "stop without id", call: ws.call, method: "transaction_v1_stop", wantErr: CodeInvalidParams, wantMsg: "Invalid params"},
		{name: "broadcast without 0x", call: ws.call, method: "transaction_v1_broadcast", params: []any{"0102"}, wantErr: CodeInvalidParams, wantMsg: "Invalid params"},
		{name: "broadcast bad hex", call: ws.call, method: "transaction_v1_broadcast", params: []any{"0xzz"}, wantErr: CodeInvalidParams, wantMsg: "Invalid params"},
		{name: "broadcast nothing", call: ws.call, method: "transaction_v1_broadcast", wantErr: CodeInvalidParams, wantMsg: "Invalid params"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.call(tc.method, tc.params...)
			if tc.wantErr != 0 {
				wantError(t, m, tc.wantErr, tc.wantMsg)
				return
			}
			if m.Error != nil || string(m.Result) != "null" {
				t.Fatalf("got %s", m.raw)
			}
		})
	}
	if n.ActiveBroadcasts() != 0 || other.ActiveBroadcasts() != 0 {
		t.Fatalf("ActiveBroadcasts = %d, %d after stopping all", n.ActiveBroadcasts(), other.ActiveBroadcasts())
	}
}

func wsCaller(ws *wsClient) func(string, ...any) rpcMsg { return ws.call }

func httpCaller(t *testing.T, n *Node) func(string, ...any) rpcMsg {
	return func(method string, params ...any) rpcMsg { return httpCall(t, n, method, params...) }
}

// TestWatchSharedChain: an extrinsic already pooled through another node of
// the chain is refused with 1013, and the first watch is unaffected.
func TestWatchSharedChain(t *testing.T) {
	chain := NewChain()
	a, b := Start(t, WithChain(chain)), Start(t, WithChain(chain))
	wa, wb := dial(t, a), dial(t, b)
	id, _ := wa.subscribe("author_submitAndWatchExtrinsic", "0x0a0b")
	for _, tc := range []struct {
		m    rpcMsg
		code int
	}{
		{wb.call("author_submitAndWatchExtrinsic", "0x0a0b"), 1013},
		{wb.call("author_submitExtrinsic", "0x0A0B"), 1013},
		{httpCall(t, b, "author_submitExtrinsic", "0x0a0b"), 1013},
		{wa.call("author_submitAndWatchExtrinsic", "0x0a0b"), 1013}, // same node too
	} {
		wantError(t, tc.m, tc.code, "Transaction Already Imported")
	}
	if b.TotalActiveSubscriptions() != 0 {
		t.Fatal("refused watch left a subscription")
	}
	blk := chain.NewBlockFinalized()
	for _, want := range []string{`{"inBlock":"` + blk.Hash + `"}`, `{"finalized":"` + blk.Hash + `"}`} {
		if m := wa.mustNext(); m.Params.Subscription != id || string(m.Params.Result) != want {
			t.Fatalf("got %s, want %s", m.raw, want)
		}
	}
	wb.expectNothing(30 * time.Millisecond)
}

func TestNewSpecMethodsListed(t *testing.T) {
	n := Start(t)
	var res struct{ Methods []string }
	if err := json.Unmarshal(httpCall(t, n, "rpc_methods").Result, &res); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"chainHead_v1_follow", "chainHead_v1_unfollow", "chainHead_v1_header",
		"chainHead_v1_unpin", "transaction_v1_broadcast", "transaction_v1_stop"} {
		if !slices.Contains(res.Methods, m) {
			t.Errorf("rpc_methods lacks %s", m)
		}
	}
}
