package cacher

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/suber"
)

const storageKey = "0x0102"

// prepare gives the chain a storage value and a few blocks, the last one
// not finalized, and waits until the suducer has seen them.
func prepare(t *testing.T, env *testEnv) {
	t.Helper()
	ch := env.node.Chain()
	// Storage changes at the best block: 0xaa from a finalized block on,
	// 0xbb at the unfinalized best.
	ch.SetStorage(storageKey, "0xaa")
	ch.NewBlockFinalized()
	best := ch.NewBlock()
	ch.SetStorage(storageKey, "0xbb")
	fin := ch.Finalized()
	env.waitFor(t, "suducer sees the new blocks", func(h Head) bool {
		return h.BestHash == best.Hash && h.FinalHash == fin.Hash
	})
}

func TestSameAnswersAsDirect(t *testing.T) {
	env := startCache(t, nil)
	prepare(t, env)
	ch := env.node.Chain()
	fin := ch.Finalized()
	q := func(s string) string { return `"` + s + `"` }
	cases := []struct{ name, method, params string }{
		{"metadata", "state_getMetadata", ""},
		{"metadata at hash", "state_getMetadata", "[" + q(fin.Hash) + "]"},
		{"runtime version", "state_getRuntimeVersion", "[]"},
		{"runtime version alias", "chain_getRuntimeVersion", ""},
		{"rpc_methods", "rpc_methods", ""},
		{"system_chain", "system_chain", ""},
		{"system_properties", "system_properties", ""},
		{"genesis hash", "chain_getBlockHash", "[0]"},
		{"finalized block hash", "chain_getBlockHash", fmt.Sprintf("[%d]", fin.Number)},
		{"storage at latest", "state_getStorage", "[" + q(storageKey) + "]"},
		{"storage at latest, null hash", "state_getStorage", "[" + q(storageKey) + ",null]"},
		{"storage at a hash", "state_getStorage", "[" + q(storageKey) + "," + q(fin.Hash) + "]"},
		{"storage hash at latest", "state_getStorageHash", "[" + q(storageKey) + "]"},
		{"keys paged at latest", "state_getKeysPaged", `["0x01",10]`},
		{"query storage at latest", "state_queryStorageAt", "[[" + q(storageKey) + "]]"},
		{"state_call at latest", "state_call", `["Core_version","0x"]`},
		{"latest header", "chain_getHeader", ""},
		{"header at hash", "chain_getHeader", "[" + q(fin.Hash) + "]"},
		{"latest block", "chain_getBlock", ""},
		{"latest block hash", "chain_getBlockHash", ""},
		{"finalized head", "chain_getFinalizedHead", ""},
		{"finalized head alias", "chain_getFinalisedHead", ""},
		{"sync state", "system_syncState", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := direct(t, env.node, tc.method, tc.params)
			for i := range 2 { // the miss, then the hit
				if got := env.call(t, tc.method, tc.params); string(got) != string(want) {
					t.Fatalf("call %d: got %.200s\nwant %.200s", i, got, want)
				}
			}
		})
	}
}

func TestCachedCallsDoNotReachTheNode(t *testing.T) {
	env := startCache(t, nil)
	prepare(t, env)
	fin := env.node.Chain().Finalized()
	q := func(s string) string { return `"` + s + `"` }
	cases := []struct {
		name, method, params string
		cached               bool
	}{
		{"metadata", "state_getMetadata", "", true},
		{"metadata at hash", "state_getMetadata", "[" + q(fin.Hash) + "]", true},
		{"runtime version", "state_getRuntimeVersion", "", true},
		{"system_name", "system_name", "", true},
		{"rpc_methods", "rpc_methods", "[]", true},
		{"genesis", "chain_getBlockHash", "[0]", true},
		{"finalized number", "chain_getBlockHash", fmt.Sprintf("[%d]", fin.Number), true},
		{"finalized numbers as list", "chain_getBlockHash", fmt.Sprintf(`[[0,"0x%x"]]`, fin.Number), true},
		{"storage at hash", "state_getStorage", "[" + q(storageKey) + "," + q(fin.Hash) + "]", true},
		{"storage at latest", "state_getStorage", "[" + q(storageKey) + "]", true},
		{"keys paged", "state_getKeysPaged", `["0x",5,null,` + q(fin.Hash) + "]", true},
		{"latest block", "chain_getBlock", "", true},
		{"sync state", "system_syncState", "", true},
		{"block at hash", "chain_getBlock", "[" + q(fin.Hash) + "]", true},
		{"runtime call at hash", "state_call", `["Core_version","0x",` + q(fin.Hash) + "]", true},
		{"child keys at hash", "childstate_getKeys", `["0x636869","0x",` + q(fin.Hash) + "]", true},
		{"child keys paged at hash", "childstate_getKeysPaged", `["0x636869","0x",10,null,` + q(fin.Hash) + "]", true},

		{"null result", "state_getStorage", `["0xdead"]`, false},
		{"error result", "state_getStorage", `["nothex","0x` + strings.Repeat("11", 32) + `"]`, false},
		{"error result when pinned", "state_getStorage", `["nothex"]`, false},
		{"unknown block is an error", "state_getStorage", `["0x01","0x` + strings.Repeat("00", 32) + `"]`, false},
		{"number above finalized", "chain_getBlockHash", fmt.Sprintf("[%d]", fin.Number+1), false},
		{"author_pendingExtrinsics", "author_pendingExtrinsics", "", false},
		{"system_accountNextIndex", "system_accountNextIndex", `["5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"]`, false},
		{"named params", "state_getStorage", `{"key":"0x0102"}`, false},
		{"unknown method", "grandpa_roundState", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var p json.RawMessage
			if tc.params != "" {
				p = json.RawMessage(tc.params)
			}
			_, _ = env.cache.Call(ctx, tc.method, p) // warm
			before := env.node.Calls(tc.method)
			for range 3 {
				_, _ = env.cache.Call(ctx, tc.method, p)
			}
			reached := env.node.Calls(tc.method) - before
			if tc.cached && reached != 0 {
				t.Fatalf("%d of 3 cached calls reached the node", reached)
			}
			if !tc.cached && reached != 3 {
				t.Fatalf("%d of 3 uncacheable calls reached the node", reached)
			}
		})
	}
}

// N concurrent identical misses make one upstream call: misses that fill
// a store entry, and calls the cache cannot answer at the moment (latest
// entries stale after a stall).
func TestSingleFlight(t *testing.T) {
	cases := []struct {
		name, method string
		params       func(fin fakenode.Header) json.RawMessage
		prepare      func(env *testEnv)
		answer       any
		want         string
		flightKey    func(env *testEnv, params json.RawMessage) string
	}{
		{
			name: "store miss", method: "state_getStorageSize",
			params:  func(fin fakenode.Header) json.RawMessage { return json.RawMessage(`["0x01","` + fin.Hash + `"]`) },
			prepare: func(*testEnv) {},
			answer:  42, want: "42",
			flightKey: func(env *testEnv, params json.RawMessage) string {
				return env.cache.plan("state_getStorageSize", params).key
			},
		},
		{
			name: "stale latest entry", method: "system_syncState",
			params: func(fakenode.Header) json.RawMessage { return nil },
			prepare: func(env *testEnv) {
				// The suducer stalls (its first call of a refresh hangs),
				// and its entries go stale.
				env.node.SetDrop("chain_getBlockHash", true)
				env.clock.Advance(10 * time.Second)
			},
			answer: map[string]int{"startingBlock": 0, "currentBlock": 7, "highestBlock": 7},
			want:   `{"currentBlock":7,"highestBlock":7,"startingBlock":0}`,
			flightKey: func(*testEnv, json.RawMessage) string {
				return passFlightKey + "0:0\x00system_syncState\x00"
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := startCache(t, nil)
			tc.prepare(env)
			release := make(chan struct{})
			env.node.Handle(tc.method, func(json.RawMessage) (any, *fakenode.Error) {
				<-release
				return tc.answer, nil
			})
			params := tc.params(env.node.Chain().Finalized())
			key := tc.flightKey(env, params)
			before := env.node.Calls(tc.method)
			const n = 100
			var wg sync.WaitGroup
			results := make([]string, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					v, err := env.cache.Call(context.Background(), tc.method, params)
					results[i] = fmt.Sprintf("%s %v", v, err)
				}()
			}
			// Release the node only once every caller waits on the shared call.
			deadline := time.Now().Add(20 * time.Second)
			for env.cache.flight.waiting(key) != n-1 {
				if time.Now().After(deadline) {
					t.Fatalf("only %d callers joined", env.cache.flight.waiting(key))
				}
				time.Sleep(time.Millisecond)
			}
			close(release)
			wg.Wait()
			if got := env.node.Calls(tc.method) - before; got != 1 {
				t.Fatalf("%d concurrent identical calls made %d upstream calls, want 1", n, got)
			}
			for i, r := range results {
				if r != tc.want+" <nil>" {
					t.Fatalf("caller %d got %s", i, r)
				}
			}
		})
	}
}

// A client told of a newer head never joins a call started before it was:
// that call may answer for the head before.
func TestCallersToldOfANewerHeadDoNotJoinOlderCalls(t *testing.T) {
	env := startCache(t, nil)
	env.node.SetDrop("chain_getBlockHash", true) // the suducer stalls
	env.clock.Advance(10 * time.Second)          // and its entries go stale
	release := make(chan struct{})
	env.node.Handle("chain_getHeader", func(json.RawMessage) (any, *fakenode.Error) {
		<-release
		return env.node.Chain().Best(), nil
	})
	before := env.node.Calls("chain_getHeader")
	var wg sync.WaitGroup
	call := func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = env.cache.Call(context.Background(), "chain_getHeader", nil)
		}()
	}
	waitCalls := func(n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for env.node.Calls("chain_getHeader") < before+n {
			if time.Now().After(deadline) {
				t.Fatalf("%d upstream calls, want %d", env.node.Calls("chain_getHeader")-before, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	call()
	waitCalls(1)
	env.cache.ObserveHead(env.node.Chain().Best().Number+1, false)
	call()
	waitCalls(2)
	close(release)
	wg.Wait()
}

func TestNewHeadRefreshesLatest(t *testing.T) {
	env := startCache(t, nil)
	ch := env.node.Chain()
	for range 3 {
		b := ch.NewBlock()
		// No clock tick: only the head subscription can bring it.
		env.waitFor(t, "new head", func(h Head) bool { return h.BestHash == b.Hash })
		before := env.node.Calls("chain_getBlock")
		cases := []struct{ method, want string }{
			{"chain_getBlockHash", `"` + b.Hash + `"`},
			{"chain_getHeader", string(direct(t, env.node, "chain_getHeader", `["`+b.Hash+`"]`))},
			{"chain_getBlock", string(direct(t, env.node, "chain_getBlock", `["`+b.Hash+`"]`))},
		}
		for _, tc := range cases {
			if got := env.call(t, tc.method, ""); string(got) != tc.want {
				t.Fatalf("block %d: %s() = %.120s, want %.120s", b.Number, tc.method, got, tc.want)
			}
		}
		if env.node.Calls("chain_getBlock") != before+1 { // the direct call only
			t.Fatalf("chain_getBlock() reached the node")
		}
	}
	f := ch.Finalized()
	ch.Finalize(ch.Best().Number)
	env.waitFor(t, "new finalized head", func(h Head) bool { return h.FinalHash != f.Hash })
	if got, want := env.call(t, "chain_getFinalizedHead", ""), `"`+ch.Finalized().Hash+`"`; string(got) != want {
		t.Fatalf("finalized head %s, want %s", got, want)
	}
}

func TestRuntimeUpgrade(t *testing.T) {
	env := startCache(t, nil)
	ch := env.node.Chain()
	old := ch.Best()
	ch.NewBlock() // the upgrade applies from the best block on
	metaOld := `"` + fakenode.Metadata(fakenode.DefaultSpecVersion) + `"`
	if got := env.call(t, "state_getMetadata", ""); string(got) != metaOld {
		t.Fatal("metadata before the upgrade differs")
	}
	ch.SetRuntimeVersion(fakenode.DefaultSpecVersion + 1)
	env.waitFor(t, "new runtime version", func(h Head) bool { return h.SpecVersion == fmt.Sprint(fakenode.DefaultSpecVersion+1) })
	metaNew := `"` + fakenode.Metadata(fakenode.DefaultSpecVersion+1) + `"`
	if got := env.call(t, "state_getMetadata", ""); string(got) != metaNew {
		t.Fatal("old metadata served after a runtime upgrade")
	}
	rv := env.call(t, "state_getRuntimeVersion", "")
	if v, _ := specVersion(rv); v != fmt.Sprint(fakenode.DefaultSpecVersion+1) {
		t.Fatalf("runtime version after the upgrade: %s", rv)
	}
	// Immutable by hash: the old block keeps its metadata.
	if got := env.call(t, "state_getMetadata", `["`+old.Hash+`"]`); string(got) != metaOld {
		t.Fatal("metadata at the pre-upgrade hash changed")
	}
}

func TestReconnectRefreshesConstants(t *testing.T) {
	env := startCache(t, func(o *Options) { o.Refresh = time.Hour })
	if got := env.call(t, "system_version", ""); string(got) != `"1.0.0"` {
		t.Fatalf("system_version %s", got)
	}
	env.node.Handle("system_version", func(json.RawMessage) (any, *fakenode.Error) { return "2.0.0", nil })
	if got := env.call(t, "system_version", ""); string(got) != `"1.0.0"` {
		t.Fatalf("system_version is not cached: %s", got)
	}
	env.node.DisconnectAll()
	env.waitSystemVersion(t, `"2.0.0"`)
}

// After a reconnect the constants' calls may race the connections coming
// back: those that find no node are tried again, not left to the next
// refresh period (an hour here).
func TestReconnectRefreshRetriesCallsThatFoundNoNode(t *testing.T) {
	node := fakenode.Start(t)
	up := &dropCalls{Upstream: upstream(t, node)}
	env := startCacheOn(t, node, up, func(o *Options) { o.Refresh = time.Hour })
	if got := env.call(t, "system_version", ""); string(got) != `"1.0.0"` {
		t.Fatalf("system_version %s", got)
	}
	node.Handle("system_version", func(json.RawMessage) (any, *fakenode.Error) { return "2.0.0", nil })
	up.drop("system_version", 3)
	node.DisconnectAll()
	env.waitSystemVersion(t, `"2.0.0"`)
}

// A node's error reply is its answer: the constants' refetch after a
// reconnect does not ask again and again.
func TestReconnectRefreshTakesANodesErrorAsItsAnswer(t *testing.T) {
	env := startCache(t, func(o *Options) { o.Refresh = time.Hour })
	env.node.Handle("system_name", func(json.RawMessage) (any, *fakenode.Error) {
		return nil, &fakenode.Error{Code: -32000, Message: "not today"}
	})
	env.node.Handle("system_version", func(json.RawMessage) (any, *fakenode.Error) { return "2.0.0", nil })
	before := env.node.Calls("system_name")
	env.node.DisconnectAll()
	env.waitSystemVersion(t, `"2.0.0"`)
	// Well past every retry a call that found no node would get.
	for range 100 {
		env.clock.Advance(time.Minute)
		time.Sleep(time.Millisecond)
	}
	if n := env.node.Calls("system_name") - before; n != 1 {
		t.Fatalf("system_name asked %d times after the reconnect, want 1", n)
	}
}

// waitSystemVersion waits until the cache answers system_version with
// want, advancing its clock: resubscribing backs off on it. The clock
// never gets near a refresh period (an hour in these tests), so only a
// refetch after the reconnect can bring want.
func (e *testEnv) waitSystemVersion(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for string(e.call(t, "system_version", "")) != want {
		if time.Now().After(deadline) {
			t.Fatal("constants not refreshed after the upstream reconnected")
		}
		e.clock.Advance(100 * time.Millisecond)
		time.Sleep(5 * time.Millisecond)
	}
}

// dropCalls fails the next n calls of a method as if no node were ready.
type dropCalls struct {
	Upstream
	mu     sync.Mutex
	method string
	n      int
}

func (d *dropCalls) drop(method string, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.method, d.n = method, n
}

func (d *dropCalls) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	d.mu.Lock()
	if method == d.method && d.n > 0 {
		d.n--
		d.mu.Unlock()
		return nil, suber.ErrNoReadyNode // as a group with every node not ready answers
	}
	d.mu.Unlock()
	return d.Upstream.Call(ctx, method, params)
}

// The latest block entry never lags the latest header: when the new
// head's block cannot be read, the old one is not served for it.
func TestLatestBlockNeverLagsTheHeader(t *testing.T) {
	env := startCache(t, nil)
	env.node.Handle("chain_getBlock", func(json.RawMessage) (any, *fakenode.Error) {
		return nil, &fakenode.Error{Code: -32000, Message: "busy"}
	})
	b := env.node.Chain().NewBlock()
	env.waitFor(t, "the new head", func(h Head) bool { return h.BestHash == b.Hash })
	if got := env.call(t, "chain_getHeader", ""); !strings.Contains(string(got), b.Hash) && !strings.Contains(string(got), fmt.Sprintf(`"0x%x"`, b.Number)) {
		t.Fatalf("latest header %s, want block %d", got, b.Number)
	}
	env.node.Handle("chain_getBlock", nil)
	before := env.node.Calls("chain_getBlock")
	got := env.call(t, "chain_getBlock", "")
	if env.node.Calls("chain_getBlock") != before+1 || !strings.Contains(string(got), fmt.Sprintf(`"number":"0x%x"`, b.Number)) {
		t.Fatalf("latest block %s did not come from the node for block %d", got, b.Number)
	}
}

func TestMethodOverrides(t *testing.T) {
	cases := []struct {
		name      string
		overrides map[string]Override
		method    string
		params    func(fin fakenode.Header) string
		// cachedFor is how long answers are served from the cache; 0: never.
		cachedFor time.Duration
	}{
		{"nocache", map[string]Override{"state_getStorage": {NoCache: true}},
			"state_getStorage", func(fin fakenode.Header) string { return `["` + storageKey + `","` + fin.Hash + `"]` }, 0},
		{"ttl of a known method", map[string]Override{"state_getStorage": {TTL: 10 * time.Second}},
			"state_getStorage", func(fin fakenode.Header) string { return `["` + storageKey + `","` + fin.Hash + `"]` }, 10 * time.Second},
		{"ttl makes a method cacheable", map[string]Override{"custom_answer": {TTL: 5 * time.Second}},
			"custom_answer", func(fakenode.Header) string { return `[1]` }, 5 * time.Second},
		{"unknown method without ttl", nil,
			"custom_answer", func(fakenode.Header) string { return `[1]` }, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := startCache(t, func(o *Options) {
				rules, err := NewRules(tc.overrides, 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				o.Rules = rules
			})
			env.node.Handle("custom_answer", func(json.RawMessage) (any, *fakenode.Error) { return "42", nil })
			prepare(t, env)
			params := tc.params(env.node.Chain().Finalized())
			env.call(t, tc.method, params)
			before := env.node.Calls(tc.method)
			env.call(t, tc.method, params)
			if reached := env.node.Calls(tc.method) - before; (reached == 0) != (tc.cachedFor > 0) {
				t.Fatalf("repeated call reached the node %d times (cached for %v)", reached, tc.cachedFor)
			}
			if tc.cachedFor == 0 {
				return
			}
			env.clock.Advance(tc.cachedFor - time.Millisecond)
			env.call(t, tc.method, params)
			if env.node.Calls(tc.method) != before {
				t.Fatal("expired before its ttl")
			}
			env.clock.Advance(time.Millisecond)
			env.call(t, tc.method, params)
			if env.node.Calls(tc.method) != before+1 {
				t.Fatal("served after its ttl")
			}
		})
	}
}

// A method's share bounds what one chain's entries of it may take of the
// memory store, so one busy method cannot push the others out.
func TestMethodShareBoundsItsEntries(t *testing.T) {
	const max = 1 << 20
	env := startCache(t, func(o *Options) {
		rules, err := NewRules(map[string]Override{"state_getStorage": {Share: 0.05}}, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		o.Rules = rules
		o.Store = NewMemoryStore(max, o.Clock, nil)
	})
	store := env.cache.store.(*MemoryStore)
	big := strings.Repeat("ab", 4<<10) // 8 KiB values
	env.node.Handle("state_getStorage", func(json.RawMessage) (any, *fakenode.Error) { return "0x" + big, nil })
	fin := env.node.Chain().Finalized()
	for i := range 100 {
		env.call(t, "state_getStorage", fmt.Sprintf(`["0x%04x","%s"]`, i, fin.Hash))
	}
	store.mu.Lock()
	var used int64
	entries := 0
	for _, e := range store.items {
		if e.group.method == "state_getStorage" {
			used += e.size
			entries++
		}
	}
	store.mu.Unlock()
	if used > max*5/100 || entries == 0 {
		t.Fatalf("state_getStorage holds %d bytes in %d entries, want at most 5%% of %d", used, entries, max)
	}
	// The runtime constants, stored earlier, are still there.
	if !env.constantsReady() {
		t.Fatal("constants were evicted by another method's entries")
	}
}

func TestStaleLatestGoesToTheNode(t *testing.T) {
	cases := []struct {
		name     string
		maxStale time.Duration
		advance  time.Duration
		cached   bool
	}{
		{"fresh", 0, 2900 * time.Millisecond, true},
		{"three refresh periods", 0, 3 * time.Second, false},
		{"max_stale is shorter", 1500 * time.Millisecond, 1500 * time.Millisecond, false},
		{"max_stale longer than three periods does not extend", 10 * time.Second, 3 * time.Second, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := startCache(t, func(o *Options) { o.MaxStale = tc.maxStale })
			// A stalled suducer: its loops are stopped, time goes on.
			env.cache.Stop()
			env.clock.Advance(tc.advance)
			for _, m := range []string{"system_syncState", "chain_getBlock"} {
				before := env.node.Calls(m)
				env.call(t, m, "")
				if reached := env.node.Calls(m) > before; reached == tc.cached {
					t.Fatalf("%s: reached the node = %v", m, reached)
				}
			}
			// Calls without a hash are not pinned to a stale head.
			env.call(t, "state_getStorage", `["0x0102"]`)
			pinned := strings.Contains(string(env.node.LastRequest("state_getStorage")), env.cache.Head().BestHash)
			if !tc.cached && pinned {
				t.Fatalf("pinned to a stale head: %s", env.node.LastRequest("state_getStorage"))
			}
			// The suducer catches up.
			env.cache.Start()
			env.clock.Advance(time.Second)
			env.waitFor(t, "suducer catches up", func(h Head) bool { return h.BestFresh && h.FinalFresh })
			before := env.node.Calls("system_syncState")
			env.call(t, "system_syncState", "")
			if env.node.Calls("system_syncState") != before {
				t.Fatal("fresh again, but still going to the node")
			}
		})
	}
}

func TestPinFinalized(t *testing.T) {
	env := startCache(t, func(o *Options) { o.Pin = PinFinalized })
	prepare(t, env)
	fin, best := env.node.Chain().Finalized(), env.node.Chain().Best()
	if fin.Hash == best.Hash {
		t.Fatal("test needs an unfinalized best block")
	}
	got := env.call(t, "state_getStorage", `["`+storageKey+`"]`)
	if string(got) != `"0xaa"` {
		t.Fatalf("storage pinned to finalized: %s, want the finalized value", got)
	}
	if req := string(env.node.LastRequest("state_getStorage")); !strings.Contains(req, fin.Hash) {
		t.Fatalf("upstream call not pinned to the finalized hash: %s", req)
	}
}

// noSubs refuses subscriptions, like an HTTP-only node.
type noSubs struct{ Upstream }

func (noSubs) Subscribe(context.Context, string, json.RawMessage, string, suber.Sink) (Subscription, error) {
	return nil, suber.ErrNoSubscriptions
}

func TestPollsWithoutSubscriptions(t *testing.T) {
	env := startCache(t, func(o *Options) { o.Upstream = noSubs{o.Upstream} })
	ch := env.node.Chain()
	b := ch.NewBlockFinalized()
	ch.SetRuntimeVersion(fakenode.DefaultSpecVersion + 5)
	env.clock.Advance(time.Second)
	env.waitFor(t, "poll brings the new head and runtime", func(h Head) bool {
		return h.BestHash == b.Hash && h.FinalHash == b.Hash && h.SpecVersion == fmt.Sprint(fakenode.DefaultSpecVersion+5)
	})
	if got := env.call(t, "chain_getBlockHash", ""); string(got) != `"`+b.Hash+`"` {
		t.Fatalf("latest hash %s", got)
	}
}

func TestPinnedCallFallsBackOnUpstreamError(t *testing.T) {
	env := startCache(t, nil)
	prepare(t, env)
	unknown := `"0x` + strings.Repeat("00", 32) + `"`
	env.cache.mu.Lock()
	env.cache.best.hash = unknown[1 : len(unknown)-1] // a head the node does not know
	env.cache.mu.Unlock()
	got := env.call(t, "state_getStorage", `["`+storageKey+`"]`)
	if string(got) != `"0xbb"` {
		t.Fatalf("got %s, want the latest value from the unpinned call", got)
	}
	if req := string(env.node.LastRequest("state_getStorage")); strings.Contains(req, unknown) {
		t.Fatalf("last upstream call still pinned: %s", req)
	}
}

func TestEntryTTLs(t *testing.T) {
	env := startCache(t, func(o *Options) { o.PinnedTTL = 30 * time.Second })
	prepare(t, env)
	fin := env.node.Chain().Finalized()
	cases := []struct {
		name, method, params string
		ttl                  time.Duration
	}{
		{"pinned to the head", "state_getStorage", `["` + storageKey + `"]`, 30 * time.Second},
		{"named hash", "state_getStorage", `["` + storageKey + `","` + fin.Hash + `"]`, DefaultImmutableTTL},
		{"constant", "system_chain", "", DefaultConstantTTL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env.call(t, tc.method, tc.params)
			p := env.cache.plan(tc.method, json.RawMessage(tc.params))
			env.store.mu.Lock()
			e := env.store.items[p.key]
			env.store.mu.Unlock()
			if e == nil {
				t.Fatal("not stored")
			}
			if got := e.expires.Sub(env.clock.Now()); got != tc.ttl {
				t.Fatalf("ttl %v, want %v", got, tc.ttl)
			}
		})
	}
}

// Stop waits for the suducer's own upstream calls: none outlives it, even
// one it was waiting on (a slow metadata fetch after a runtime upgrade).
func TestStopEndsTheSuducersCalls(t *testing.T) {
	env := startCache(t, nil)
	env.node.SetDelay("state_getMetadata", 5*time.Second)
	chain := env.node.Chain()
	before := env.node.Calls("state_getMetadata")
	chain.SetRuntimeVersion(chain.SpecVersion() + 1)
	chain.NewBlock()
	deadline := time.Now().Add(20 * time.Second)
	for env.node.Calls("state_getMetadata") == before {
		if time.Now().After(deadline) {
			t.Fatal("the suducer did not refetch metadata after the upgrade")
		}
		time.Sleep(time.Millisecond)
	}
	env.cache.Stop()
	// Stop has waited for them to return; give them the moment they need
	// to exit, far less than the metadata call's 5 s.
	for wait := time.Now().Add(time.Second); ; time.Sleep(time.Millisecond) {
		n, stacks := cacheGoroutines()
		if n == 0 {
			break
		}
		if time.Now().After(wait) {
			t.Fatalf("%d goroutines of the cache survive Stop:\n%s", n, stacks)
		}
	}
}

func TestStopLeavesNoGoroutine(t *testing.T) {
	env := startCache(t, nil)
	env.cache.Start() // a second user, as after a config reload
	env.cache.Stop()
	if n := countGoroutines(); n != 1+len(follows) {
		t.Fatalf("one Stop of two Starts left %d loops, want %d", n, 1+len(follows))
	}
	env.cache.Stop()
	waitNoGoroutines(t)
}
