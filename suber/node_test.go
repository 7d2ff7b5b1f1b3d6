package suber_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/suber"
)

func TestNewNodeURLs(t *testing.T) {
	cases := []struct {
		name          string
		url           string
		ok            bool
		subscriptions bool
	}{
		{"ws", "ws://127.0.0.1:9944", true, true},
		{"wss with path and query", "wss://rpc.example.com/polkadot?key=abc", true, true},
		{"upper-case scheme", "WS://127.0.0.1:9944", true, true},
		{"http", "http://127.0.0.1:9933", true, false},
		{"https", "https://rpc.example.com/", true, false},
		{"ftp", "ftp://127.0.0.1:21", false, false},
		{"unix", "unix:///run/node.sock", false, false},
		{"no scheme", "127.0.0.1:9944", false, false},
		{"host and port only", "localhost:9944", false, false},
		{"empty", "", false, false},
		{"missing colon", "ws//127.0.0.1:9944", false, false},
		{"bad escape", "ws://127.0.0.1:9944/%zz", false, false},
		{"space in host", "ws://bad host:1", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := suber.NewNode(tc.url, fastOptions(1))
			if !tc.ok {
				if err == nil {
					_ = n.Close()
					t.Fatalf("NewNode(%q) accepted", tc.url)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewNode(%q): %v", tc.url, err)
			}
			defer n.Close()
			if n.URL() != tc.url {
				t.Errorf("URL() = %q, want %q", n.URL(), tc.url)
			}
			if n.SupportsSubscriptions() != tc.subscriptions {
				t.Errorf("SupportsSubscriptions() = %v, want %v", n.SupportsSubscriptions(), tc.subscriptions)
			}
		})
	}
}

// transports runs f against a WebSocket and an HTTP node on one fake node.
func transports(t *testing.T, f func(t *testing.T, fake *fakenode.Node, n *suber.Node)) {
	for _, tr := range []string{"ws", "http"} {
		t.Run(tr, func(t *testing.T) {
			fake := fakenode.Start(t)
			url := fake.URL()
			if tr == "http" {
				url = fake.HTTPURL()
			}
			f(t, fake, startNode(t, url, fastOptions(2)))
		})
	}
}

func TestNodeCall(t *testing.T) {
	transports(t, func(t *testing.T, fake *fakenode.Node, n *suber.Node) {
		fake.Handle("test_fail", func(json.RawMessage) (any, *fakenode.Error) {
			return nil, &fakenode.Error{Code: 1010, Message: "Invalid Transaction", Data: "Inability to pay some fees"}
		})
		fake.Handle("test_echo", func(p json.RawMessage) (any, *fakenode.Error) { return p, nil })
		genesis := fake.Chain().GenesisHash()
		cases := []struct {
			name    string
			method  string
			params  string
			want    string
			errCode int
			errData string
		}{
			{"no params", "system_chain", "", `"Fake Dev"`, 0, ""},
			{"empty params", "system_name", "[]", `"fake-substrate"`, 0, ""},
			{"with params", "chain_getBlockHash", "[0]", strconv.Quote(genesis), 0, ""},
			{"object result", "system_properties", "", `{"ss58Format":42,"tokenDecimals":12,"tokenSymbol":"UNIT"}`, 0, ""},
			{"null result", "state_getStorage", `["0xdeadbeef"]`, `null`, 0, ""},
			{"params reach the node unchanged", "test_echo", `[1,"two",{"three":[3]},null]`, `[1,"two",{"three":[3]},null]`, 0, ""},
			{"object params", "test_echo", `{"a":1}`, `{"a":1}`, 0, ""},
			{"unknown method", "no_such_method", "", "", jsonrpc.CodeMethodNotFound, ""},
			{"invalid params", "chain_getBlockHash", `["x","y","z"]`, "", jsonrpc.CodeInvalidParams, ""},
			{"node error with data", "test_fail", "", "", 1010, `"Inability to pay some fees"`},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var p json.RawMessage
				if tc.params != "" {
					p = json.RawMessage(tc.params)
				}
				res, err := n.Call(ctxTimeout(t, 5*time.Second), tc.method, p)
				if tc.errCode != 0 {
					e, ok := suber.IsUpstreamError(err)
					if !ok {
						t.Fatalf("got %s, %v; want node error %d", res, err, tc.errCode)
					}
					if e.Code != tc.errCode {
						t.Errorf("code = %d (%s), want %d", e.Code, e.Message, tc.errCode)
					}
					if tc.errData != "" && string(e.Data) != tc.errData {
						t.Errorf("data = %s, want %s", e.Data, tc.errData)
					}
					return
				}
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if string(res) != tc.want {
					t.Errorf("result = %s, want %s", res, tc.want)
				}
			})
		}
	})
}

func TestIsUpstreamError(t *testing.T) {
	cases := []struct {
		name string
		err  error
		ok   bool
	}{
		{"nil", nil, false},
		{"rpc error", jsonrpc.NewError(-32601, "x"), true},
		{"wrapped rpc error", fmt.Errorf("ctx: %w", jsonrpc.NewError(1, "x")), true},
		{"unavailable", suber.ErrUnavailable, false},
		{"context", context.DeadlineExceeded, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, ok := suber.IsUpstreamError(tc.err)
			if ok != tc.ok || (ok && e == nil) {
				t.Errorf("IsUpstreamError(%v) = %v, %v", tc.err, e, ok)
			}
		})
	}
}

func TestNodeConcurrentCallsSharePool(t *testing.T) {
	fake := fakenode.Start(t)
	// A custom handler runs on its own goroutine, so replies come back
	// out of order: each must still reach its own caller.
	fake.Handle("test_echo", func(p json.RawMessage) (any, *fakenode.Error) { return p, nil })
	n := startNode(t, fake.URL(), fastOptions(2))
	const callers = 200
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			want := fmt.Sprintf(`[%d,"caller-%d"]`, i, i)
			method := "test_echo"
			if i%2 == 1 {
				method = "chain_getBlockHash" // built-in: answered inline, in order
				want = "0"
			}
			params := json.RawMessage(fmt.Sprintf(`[%d,"caller-%d"]`, i, i))
			if method == "chain_getBlockHash" {
				params = json.RawMessage(`[0]`)
			}
			res, err := n.Call(ctx, method, params)
			if err != nil {
				errs <- fmt.Errorf("caller %d: %w", i, err)
				return
			}
			if method == "test_echo" && string(res) != want {
				errs <- fmt.Errorf("caller %d got %s, want %s", i, res, want)
			}
			if method == "chain_getBlockHash" && string(res) != strconv.Quote(fake.Chain().GenesisHash()) {
				errs <- fmt.Errorf("caller %d got %s, want the genesis hash", i, res)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := fake.Connections(); got != 2 {
		t.Errorf("node has %d connections, want the pool size 2", got)
	}
	if got := fake.Calls("test_echo") + fake.Calls("chain_getBlockHash"); got != callers {
		t.Errorf("node received %d calls, want %d", got, callers)
	}
}

func TestNodeRewritesIDs(t *testing.T) {
	transports(t, func(t *testing.T, fake *fakenode.Node, n *suber.Node) {
		cases := []struct {
			name   string
			method string
			params string
			sent   string // params as the node must see them
		}{
			{"plain", "system_chain", "", "[]"},
			{"params", "chain_getBlockHash", "[0]", "[0]"},
			{"quote in method", `weird"method`, "", "[]"},
			{"unicode method", "méthode_日本", `{"a":1}`, `{"a":1}`},
			{"html in method", "a<b>&c", "", "[]"},
		}
		seen := map[uint64]string{}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var p json.RawMessage
				if tc.params != "" {
					p = json.RawMessage(tc.params)
				}
				_, _ = n.Call(ctxTimeout(t, 5*time.Second), tc.method, p) // unknown methods error, that is fine
				raw := fake.LastRequest(tc.method)
				if raw == nil {
					t.Fatalf("node never saw %q", tc.method)
				}
				var r struct {
					JSONRPC string          `json:"jsonrpc"`
					ID      json.RawMessage `json:"id"`
					Method  string          `json:"method"`
					Params  json.RawMessage `json:"params"`
				}
				if err := json.Unmarshal(raw, &r); err != nil {
					t.Fatalf("request %s: %v", raw, err)
				}
				id, err := strconv.ParseUint(string(r.ID), 10, 64)
				if err != nil {
					t.Fatalf("id %s is not a plain unsigned number (request %s)", r.ID, raw)
				}
				if prev, dup := seen[id]; dup {
					t.Errorf("id %d reused (first for %s)", id, prev)
				}
				seen[id] = tc.name
				if r.JSONRPC != "2.0" || r.Method != tc.method || string(r.Params) != tc.sent {
					t.Errorf("node saw %s; want method %q params %s", raw, tc.method, tc.sent)
				}
			})
		}
	})
}

func TestNodeCallTimeoutWhenNodeDropsMethod(t *testing.T) {
	transports(t, func(t *testing.T, fake *fakenode.Node, n *suber.Node) {
		call(t, n, "system_chain", "")
		fake.SetDrop("system_chain", true)
		const timeout = 150 * time.Millisecond
		for i := range 3 {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			start := time.Now()
			res, err := n.Call(ctx, "system_chain", nil)
			elapsed := time.Since(start)
			cancel()
			if err == nil {
				t.Fatalf("call %d: got %s from a dropped method", i, res)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("call %d: error %v, want context.DeadlineExceeded", i, err)
			}
			if elapsed > timeout+time.Second {
				t.Errorf("call %d took %v with a %v deadline", i, elapsed, timeout)
			}
		}
		// Other calls are unaffected; the connection is not poisoned.
		if got := call(t, n, "system_name", ""); string(got) != `"fake-substrate"` {
			t.Errorf("system_name = %s", got)
		}
		fake.SetDrop("system_chain", false)
		if got := call(t, n, "system_chain", ""); string(got) != `"Fake Dev"` {
			t.Errorf("system_chain = %s", got)
		}
		if fake.Calls("system_chain") != 5 {
			t.Errorf("node saw %d system_chain calls, want 5", fake.Calls("system_chain"))
		}
	})
}

func TestNodeCallCanceledContext(t *testing.T) {
	fake := fakenode.Start(t)
	n := startNode(t, fake.URL(), fastOptions(1))
	call(t, n, "system_chain", "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Sending may win the race with the canceled context, and the reply
	// may then win too; otherwise the error is the context's.
	start := time.Now()
	if _, err := n.Call(ctx, "system_chain", nil); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("canceled call: %v, want context.Canceled", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("canceled call took %v", el)
	}
	call(t, n, "system_chain", "")
}

func TestNodeStopFailFastThenRestart(t *testing.T) {
	transports(t, func(t *testing.T, fake *fakenode.Node, n *suber.Node) {
		call(t, n, "system_chain", "")
		if !n.Connected() {
			t.Fatal("not connected after a successful call")
		}
		fake.Stop()
		if n.SupportsSubscriptions() {
			waitFor(t, 3*time.Second, "the node to notice the outage", func() bool { return !n.Connected() })
		}
		for i := range 3 {
			start := time.Now()
			res, err := n.Call(ctxTimeout(t, 10*time.Second), "system_chain", nil)
			elapsed := time.Since(start)
			if err == nil {
				t.Fatalf("call %d to a stopped node returned %s", i, res)
			}
			if elapsed > time.Second {
				t.Errorf("call %d to a stopped node took %v, want it to fail fast", i, elapsed)
			}
			if n.SupportsSubscriptions() && !errors.Is(err, suber.ErrUnavailable) {
				t.Errorf("call %d: error %v, want ErrUnavailable", i, err)
			}
			if _, upstream := suber.IsUpstreamError(err); upstream {
				t.Errorf("call %d: a transport failure reported as a node error: %v", i, err)
			}
		}
		if n.Connected() {
			t.Error("Connected() after failed calls to a stopped node")
		}
		if err := fake.Restart(); err != nil {
			t.Fatal(err)
		}
		var last error
		ok := eventually(5*time.Second, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, last = n.Call(ctx, "system_chain", nil)
			return last == nil
		})
		if !ok {
			t.Fatalf("calls still fail 5s after restart: %v", last)
		}
		if !n.Connected() {
			t.Error("not Connected() after recovery")
		}
		if n.SupportsSubscriptions() {
			waitFor(t, 3*time.Second, "the whole pool to reconnect", func() bool { return fake.Connections() == 2 })
		}
	})
}

func TestNodeReconnectsAfterDisconnect(t *testing.T) {
	fake := fakenode.Start(t)
	n := startNode(t, fake.URL(), fastOptions(3))
	call(t, n, "system_chain", "")
	waitFor(t, 3*time.Second, "3 connections", func() bool { return fake.Connections() == 3 })
	for round := range 3 {
		fake.DisconnectAll()
		waitFor(t, 3*time.Second, fmt.Sprintf("reconnection, round %d", round), func() bool { return fake.Connections() == 3 })
		waitFor(t, 3*time.Second, "a working call", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := n.Call(ctx, "system_chain", nil)
			return err == nil
		})
	}
}

func TestNodeNotStartedOrClosed(t *testing.T) {
	fake := fakenode.Start(t)
	t.Run("never started", func(t *testing.T) {
		n, err := suber.NewNode(fake.URL(), fastOptions(1))
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		start := time.Now()
		_, err = n.Call(ctxTimeout(t, 100*time.Millisecond), "system_chain", nil)
		if err == nil {
			t.Fatal("call on a node that was never started succeeded")
		}
		if time.Since(start) > 2*time.Second {
			t.Errorf("call took %v", time.Since(start))
		}
		if n.Connected() {
			t.Error("Connected() on a node never started")
		}
	})
	for _, tr := range []string{"ws", "http"} {
		t.Run("after Close "+tr, func(t *testing.T) {
			url := fake.URL()
			if tr == "http" {
				url = fake.HTTPURL()
			}
			n, err := suber.NewNode(url, fastOptions(2))
			if err != nil {
				t.Fatal(err)
			}
			n.Start()
			n.Start() // idempotent
			waitFor(t, 3*time.Second, "a connection", n.Connected)
			call(t, n, "system_chain", "")
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			if err := n.Close(); err != nil { // idempotent
				t.Fatal(err)
			}
			var wrong []error
			for range 20 {
				_, err := n.Call(ctxTimeout(t, time.Second), "system_chain", nil)
				if !errors.Is(err, suber.ErrClosed) {
					wrong = append(wrong, err)
				}
			}
			if len(wrong) > 0 {
				t.Fatalf("regression: suber/node.go Node.Call after Close: %d of 20 calls returned %v instead of ErrClosed. "+
					"WebSocket: session() selects on both n.tried and n.ctx.Done(), both closed, so Go picks at random "+
					"(ErrUnavailable or ErrClosed); HTTP: Call never checks n.ctx and keeps sending requests "+
					"through a transport Close already released. Check n.ctx.Err() first in Call/Subscribe.", len(wrong), wrong[0])
			}
		})
	}
}

func TestNodeFirstCallWaitsForConnection(t *testing.T) {
	// Start promises that calls made at once wait for the pool's first
	// connection attempts instead of failing at start-up.
	fake := fakenode.Start(t)
	const tries = 30
	var failures []error
	for range tries {
		n, err := suber.NewNode(fake.URL(), fastOptions(1))
		if err != nil {
			t.Fatal(err)
		}
		n.Start()
		_, err = n.Call(ctxTimeout(t, 5*time.Second), "system_chain", nil)
		_ = n.Close()
		if err != nil {
			failures = append(failures, err)
		}
	}
	if len(failures) > 0 {
		t.Fatalf("regression: suber/node.go slot.run calls n.attempted() (which closes n.tried) right after a successful "+
			"dial but before s.cur.Store(sess); a caller woken by n.tried in Node.session then finds no session and "+
			"gets ErrUnavailable: %d of %d first calls on a fresh pool-1 node failed (%v). Store the session before "+
			"calling attempted().", len(failures), tries, failures[0])
	}
}

func TestNodeReadLimit(t *testing.T) {
	fake := fakenode.Start(t)
	fake.Handle("test_big", func(json.RawMessage) (any, *fakenode.Error) { return strings.Repeat("x", 8<<10), nil })
	opts := fastOptions(1)
	opts.ReadLimit = 4 << 10
	n := startNode(t, fake.URL(), opts)
	call(t, n, "system_chain", "")
	_, err := n.Call(ctxTimeout(t, 5*time.Second), "test_big", nil)
	if err == nil {
		t.Fatal("a reply over ReadLimit was accepted")
	}
	if !errors.Is(err, suber.ErrConnectionLost) {
		t.Errorf("error %v, want ErrConnectionLost", err)
	}
	waitFor(t, 3*time.Second, "a working call after the oversized reply", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := n.Call(ctx, "system_chain", nil)
		return err == nil
	})
}

func TestNodeReorderedReplies(t *testing.T) {
	fake := fakenode.Start(t)
	chain := fake.Chain()
	const blocks = 30
	for range blocks {
		chain.NewBlock()
	}
	fake.SetReorder(true)
	n := startNode(t, fake.URL(), fastOptions(1)) // one connection: all replies share it
	var wg sync.WaitGroup
	errs := make(chan error, blocks+1)
	for i := range blocks + 1 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, err := n.Call(ctx, "chain_getBlockHash", json.RawMessage(fmt.Sprintf("[%d]", i)))
			if err != nil {
				errs <- fmt.Errorf("block %d: %w", i, err)
				return
			}
			h, _ := chain.HeaderByNumber(uint64(i))
			if string(res) != strconv.Quote(h.Hash) {
				errs <- fmt.Errorf("block %d: got %s, want %q", i, res, h.Hash)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestNodeIgnoresStrayMessages(t *testing.T) {
	fake := fakenode.Start(t)
	n := startNode(t, fake.URL(), fastOptions(1))
	call(t, n, "system_chain", "")
	for _, raw := range []string{
		`not json at all`,
		`{"jsonrpc":"2.0","id":999999,"result":"nobody asked"}`,
		`{"jsonrpc":"2.0","id":"str","result":1}`,
		`{"jsonrpc":"2.0","id":-1,"result":1}`,
		`{"jsonrpc":"2.0","method":"chain_newHead","params":{"subscription":"unknown","result":1}}`,
		`[1,2,3]`,
		`{}`,
	} {
		fake.SendRaw([]byte(raw))
	}
	if got := call(t, n, "system_chain", ""); string(got) != `"Fake Dev"` {
		t.Errorf("after stray messages: %s", got)
	}
	if fake.Connections() != 1 {
		t.Errorf("connections = %d", fake.Connections())
	}
}

func TestNodeKeepAlive(t *testing.T) {
	fake := fakenode.Start(t)
	opts := fastOptions(1)
	opts.PingInterval = 100 * time.Millisecond
	n := startNode(t, fake.URL(), opts)
	sink := newSink(t)
	sub, err := n.Subscribe(ctxTimeout(t, 5*time.Second), "chain_subscribeNewHeads", nil, "chain_unsubscribeNewHeads", sink)
	if err != nil {
		t.Fatal(err)
	}
	// Idle for several ping intervals: pongs keep the connection alive.
	time.Sleep(600 * time.Millisecond)
	if lost := sink.LostErrs(); len(lost) > 0 {
		t.Fatalf("an idle but answering connection was dropped: %v", lost[0])
	}
	if res, err := sub.Unsubscribe(ctxTimeout(t, 5*time.Second)); err != nil || string(res) != "true" {
		t.Errorf("Unsubscribe = %s, %v", res, err)
	}
	sink.check()
}
