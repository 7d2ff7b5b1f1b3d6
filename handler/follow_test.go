package handler_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// headEvent is a chainHead follow event as a client reads it.
type headEvent struct {
	Event                string   `json:"event"`
	OperationID          string   `json:"operationId"`
	FinalizedBlockHashes []string `json:"finalizedBlockHashes"`
	PrunedBlockHashes    []string `json:"prunedBlockHashes"`
	BlockHash            string   `json:"blockHash"`
	ParentBlockHash      string   `json:"parentBlockHash"`
	BestBlockHash        string   `json:"bestBlockHash"`
	Items                []json.RawMessage
}

// follower is a light chainHead client for tests with many of them: one
// reader goroutine records its events and, like PAPI, unpins every block
// but the finalized one once it is finalized.
type follower struct {
	conn   *websocket.Conn
	wmu    sync.Mutex
	sub    string
	mu     sync.Mutex
	events []headEvent
	held   []string // pinned blocks not yet unpinned
	unpin  bool
	errs   []string
	done   chan struct{}
}

func newFollower(t *testing.T, url string, unpin bool) *follower {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	f := &follower{conn: conn, unpin: unpin, done: make(chan struct{})}
	f.write(`{"jsonrpc":"2.0","id":"follow","method":"chainHead_v1_follow","params":[false]}`)
	go f.read()
	return f
}

func (f *follower) write(s string) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	_ = f.conn.WriteMessage(websocket.TextMessage, []byte(s))
}

func (f *follower) read() {
	defer close(f.done)
	for {
		_, data, err := f.conn.ReadMessage()
		if err != nil {
			return
		}
		var m testgw.Response
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		f.mu.Lock()
		switch {
		case string(m.ID) == `"follow"`:
			if json.Unmarshal(m.Result, &f.sub) != nil {
				f.errs = append(f.errs, "follow: "+string(data))
			}
		case m.Method == "chainHead_v1_followEvent":
			var ev headEvent
			_ = json.Unmarshal(m.Params.Result, &ev)
			f.events = append(f.events, ev)
			switch ev.Event {
			case "initialized":
				f.held = append(f.held, ev.FinalizedBlockHashes...)
			case "newBlock":
				f.held = append(f.held, ev.BlockHash)
			case "finalized":
				last := ev.FinalizedBlockHashes[len(ev.FinalizedBlockHashes)-1]
				if f.unpin {
					var drop, keep []string
					for _, h := range f.held {
						if h == last {
							keep = append(keep, h)
						} else {
							drop = append(drop, h)
						}
					}
					f.held = keep
					js, _ := json.Marshal(drop)
					go f.write(fmt.Sprintf(`{"jsonrpc":"2.0","id":"unpin","method":"chainHead_v1_unpin","params":[%q,%s]}`, f.sub, js))
				}
			}
		case m.Error != nil:
			f.errs = append(f.errs, string(data))
		}
		f.mu.Unlock()
	}
}

func (f *follower) snapshot() []headEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]headEvent(nil), f.events...)
}

func (f *follower) saw(event string) bool {
	for _, ev := range f.snapshot() {
		if ev.Event == event {
			return true
		}
	}
	return false
}

func upstreamFollows(nodes ...*fakenode.Node) int {
	n := 0
	for _, node := range nodes {
		n += node.ActiveFollows()
	}
	return n
}

// 1,000 client follows through the gateway make one upstream follow, on
// nodes that refuse a 5th follow per connection; every client gets its
// own id and sees every block once and in order (newBlock with the right
// parent, bestBlockChanged, finalized), and once every client has unpinned
// the blocks it no longer needs, so has the node.
func TestSharedFollowServesAThousandClients(t *testing.T) {
	gw, a, b := startPair(t)
	const clients = 1000
	fs := make([]*follower, clients)
	for i := range fs {
		fs[i] = newFollower(t, gw.WS("/dev"), true)
	}
	waitLong(t, "every client initialized", func() bool {
		for _, f := range fs {
			if !f.saw("initialized") {
				return false
			}
		}
		return true
	})
	if got := upstreamFollows(a, b); got != 1 {
		t.Fatalf("upstream follows = %d, want 1", got)
	}
	ids := map[string]bool{}
	for _, f := range fs {
		f.mu.Lock()
		ids[f.sub] = true
		f.mu.Unlock()
	}
	if len(ids) != clients {
		t.Fatalf("%d distinct follow ids for %d clients", len(ids), clients)
	}
	start := a.Chain().Finalized()
	var blocks []fakenode.Header
	for range 5 {
		blocks = append(blocks, a.Chain().NewBlockFinalized())
	}
	last := blocks[len(blocks)-1].Hash
	defer func() {
		if t.Failed() {
			missing := 0
			for _, f := range fs {
				evs := f.snapshot()
				if len(evs) == 0 || evs[len(evs)-1].Event != "finalized" || !contains(evs[len(evs)-1].FinalizedBlockHashes, last) {
					if missing++; missing < 3 {
						t.Logf("client: %d events, last %+v, errs %v", len(evs), evs[max(0, len(evs)-2):], f.errs)
					}
				}
			}
			t.Logf("%d clients missing the last block; upstream follows %d", missing, upstreamFollows(a, b))

		}
	}()
	// 1,000 clients under the race detector on a shared machine: allow time.
	waitLong(t, "every client saw the last block finalized", func() bool {
		for _, f := range fs {
			evs := f.snapshot()
			if len(evs) == 0 || evs[len(evs)-1].Event != "finalized" || !contains(evs[len(evs)-1].FinalizedBlockHashes, last) {
				return false
			}
		}
		return true
	})
	for i, f := range fs {
		evs := f.snapshot()
		if evs[0].Event != "initialized" || len(evs[0].FinalizedBlockHashes) == 0 || evs[0].FinalizedBlockHashes[len(evs[0].FinalizedBlockHashes)-1] != start.Hash {
			t.Fatalf("client %d: first event %+v, want initialized at %s", i, evs[0], start.Hash)
		}
		evs = evs[1:]
		if len(evs) != 3*len(blocks) {
			t.Fatalf("client %d: %d events after initialized, want %d: %+v", i, len(evs), 3*len(blocks), evs)
		}
		parent := start.Hash
		for j, blk := range blocks {
			nb, best, fin := evs[3*j], evs[3*j+1], evs[3*j+2]
			if nb.Event != "newBlock" || nb.BlockHash != blk.Hash || nb.ParentBlockHash != parent ||
				best.Event != "bestBlockChanged" || best.BestBlockHash != blk.Hash ||
				fin.Event != "finalized" || strings.Join(fin.FinalizedBlockHashes, ",") != blk.Hash {
				t.Fatalf("client %d, block %d: %+v %+v %+v", i, j, nb, best, fin)
			}
			parent = blk.Hash
		}
		if len(f.errs) > 0 {
			t.Fatalf("client %d: %v", i, f.errs)
		}
	}
	holder := a
	if b.ActiveFollows() == 1 {
		holder = b
	}
	waitFor(t, "the node holds only the last finalized block pinned", func() bool { return holder.PinnedBlocks() == 1 })
}

// waitLong is waitFor with room for a thousand clients on a busy machine.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// holderOf returns which node holds the shared upstream follow.
func holderOf(t *testing.T, a, b *fakenode.Node) *fakenode.Node {
	t.Helper()
	waitFor(t, "one upstream follow", func() bool { return upstreamFollows(a, b) == 1 })
	if a.ActiveFollows() == 1 {
		return a
	}
	return b
}

// nextFollowEvent returns the next event of sub, skipping other notifications.
func nextFollowEvent(t *testing.T, c *testgw.WSClient, sub json.RawMessage) (headEvent, json.RawMessage) {
	t.Helper()
	for {
		r := c.Next(5 * time.Second)
		if r.Method != "chainHead_v1_followEvent" {
			continue
		}
		if string(r.Params.Subscription) != string(sub) {
			t.Fatalf("event of another subscription %s (want %s): %s", r.Params.Subscription, sub, r.Raw)
		}
		var ev headEvent
		_ = json.Unmarshal(r.Params.Result, &ev)
		return ev, r.Params.Result
	}
}

// Pins are each client's own: a block stays pinned on the node while any
// client holds it and is unpinned there once none does; calls on a block
// the client does not hold fail as a node's would. Operations run on the
// shared follow and their events reach only the client that started them,
// after its reply; continue and stopOperation with another client's
// operation id never reach it; unfollow frees only that client.
func TestSharedFollowPinsAndOperations(t *testing.T) {
	gw, a, b := startPair(t)
	chain := a.Chain()
	for i := range 7 {
		chain.SetStorage(fmt.Sprintf("0x0c%02x", i), "0x05")
	}
	f0 := chain.NewBlockFinalized()
	ca, cb := testgw.Dial(t, gw.WS("/dev")), testgw.Dial(t, gw.WS("/dev"))
	subA := ca.Subscribe("chainHead_v1_follow", []bool{false})
	subB := cb.Subscribe("chainHead_v1_follow", []bool{false})
	if string(subA) == string(subB) {
		t.Fatal("two clients got the same follow id")
	}
	for _, c := range []struct {
		c   *testgw.WSClient
		sub json.RawMessage
	}{{ca, subA}, {cb, subB}} {
		if ev, raw := nextFollowEvent(t, c.c, c.sub); ev.Event != "initialized" || ev.FinalizedBlockHashes[0] != f0.Hash {
			t.Fatalf("first event %s", raw)
		}
	}
	holder := holderOf(t, a, b)
	b1 := chain.NewBlockFinalized()
	for _, c := range []struct {
		c   *testgw.WSClient
		sub json.RawMessage
	}{{ca, subA}, {cb, subB}} {
		for range 3 { // newBlock, bestBlockChanged, finalized
			nextFollowEvent(t, c.c, c.sub)
		}
	}
	waitFor(t, "two blocks pinned upstream", func() bool { return holder.PinnedBlocks() == 2 })

	t.Run("calls on blocks the client does not hold", func(t *testing.T) {
		genesis := chain.GenesisHash()
		for _, method := range []string{"chainHead_v1_header", "chainHead_v1_body"} {
			if r := ca.Call(method, []any{subA, genesis}); r.ErrCode() != -32801 {
				t.Fatalf("%s on an unpinned block: %s", method, r.Raw)
			}
		}
		if r := ca.Call("chainHead_v1_unpin", []any{subA, []string{b1.Hash, b1.Hash}}); r.ErrCode() != -32801 {
			t.Fatalf("unpin of a repeated hash: %s", r.Raw)
		}
	})

	t.Run("body reaches only its client, after the reply", func(t *testing.T) {
		r := ca.Call("chainHead_v1_body", []any{subA, b1.Hash})
		var started struct{ Result, OperationID string }
		if json.Unmarshal(r.Result, &started) != nil || started.Result != "started" {
			t.Fatalf("body: %s", r.Raw)
		}
		ev, raw := nextFollowEvent(t, ca, subA)
		if ev.Event != "operationBodyDone" || ev.OperationID != started.OperationID {
			t.Fatalf("event %s", raw)
		}
		cb.NoNotification(100 * time.Millisecond)
	})

	t.Run("storage paused for continue", func(t *testing.T) {
		r := ca.Call("chainHead_v1_storage", []any{subA, b1.Hash, []map[string]string{{"key": "0x0c", "type": "descendantsValues"}}, nil})
		var started struct{ Result, OperationID string }
		if json.Unmarshal(r.Result, &started) != nil || started.Result != "started" {
			t.Fatalf("storage: %s", r.Raw)
		}
		op := started.OperationID
		if ev, raw := nextFollowEvent(t, ca, subA); ev.Event != "operationStorageItems" || len(ev.Items) != 5 {
			t.Fatalf("event %s", raw)
		}
		if ev, raw := nextFollowEvent(t, ca, subA); ev.Event != "operationWaitingForContinue" {
			t.Fatalf("event %s", raw)
		}
		before := holder.Calls("chainHead_v1_continue")
		if r := cb.Call("chainHead_v1_continue", []any{subB, op}); r.ErrCode() != -32602 {
			t.Fatalf("continue of another client's operation: %s", r.Raw)
		}
		if holder.Calls("chainHead_v1_continue") != before {
			t.Fatal("another client's continue reached the node")
		}
		if r := ca.Call("chainHead_v1_continue", []any{subA, op}); r.Error != nil {
			t.Fatalf("continue: %s", r.Raw)
		}
		// The client's operation id is its own, mapped to the node's.
		if last := string(holder.LastRequest("chainHead_v1_continue")); strings.Contains(last, op) || strings.Contains(last, string(subA)) {
			t.Fatalf("the client's ids reached the node: %s", last)
		}
		if ev, raw := nextFollowEvent(t, ca, subA); ev.Event != "operationStorageItems" || len(ev.Items) != 2 {
			t.Fatalf("event %s", raw)
		}
		if ev, raw := nextFollowEvent(t, ca, subA); ev.Event != "operationStorageDone" {
			t.Fatalf("event %s", raw)
		}
		cb.NoNotification(100 * time.Millisecond)
	})

	t.Run("a block stays pinned upstream while any client holds it", func(t *testing.T) {
		if r := ca.Call("chainHead_v1_unpin", []any{subA, f0.Hash}); r.Error != nil || string(r.Result) != "null" {
			t.Fatalf("unpin: %s", r.Raw)
		}
		time.Sleep(100 * time.Millisecond)
		if got := holder.PinnedBlocks(); got != 2 {
			t.Fatalf("pinned upstream = %d while B still holds %s", got, f0.Hash)
		}
		if r := ca.Call("chainHead_v1_header", []any{subA, f0.Hash}); r.ErrCode() != -32801 {
			t.Fatalf("header of a block A unpinned: %s", r.Raw)
		}
		if r := cb.Call("chainHead_v1_header", []any{subB, f0.Hash}); r.Error != nil {
			t.Fatalf("header of a block B holds: %s", r.Raw)
		}
		if r := cb.Call("chainHead_v1_unpin", []any{subB, []string{f0.Hash}}); r.Error != nil {
			t.Fatalf("unpin: %s", r.Raw)
		}
		waitFor(t, "the block unpinned upstream", func() bool { return holder.PinnedBlocks() == 1 })
	})

	t.Run("unfollow frees only that client", func(t *testing.T) {
		if r := ca.Call("chainHead_v1_unfollow", []any{subA}); r.Error != nil {
			t.Fatalf("unfollow: %s", r.Raw)
		}
		b2 := chain.NewBlockFinalized()
		if ev, raw := nextFollowEvent(t, cb, subB); ev.Event != "newBlock" || ev.BlockHash != b2.Hash {
			t.Fatalf("B after A left: %s", raw)
		}
		if got := upstreamFollows(a, b); got != 1 {
			t.Fatalf("upstream follows = %d", got)
		}
		if r := cb.Call("chainHead_v1_unfollow", []any{subB}); r.Error != nil {
			t.Fatalf("unfollow: %s", r.Raw)
		}
		waitFor(t, "the upstream follow closed with its last client", func() bool { return upstreamFollows(a, b) == 0 })
	})
}

// A client that never unpins is stopped alone once it holds too many
// blocks; the others go on, and its pins are released on the node.
func TestSharedFollowStopsAClientThatNeverUnpins(t *testing.T) {
	gw, a, b := startPair(t)
	hog := newFollower(t, gw.WS("/dev"), false)
	good := newFollower(t, gw.WS("/dev"), true)
	waitFor(t, "both initialized", func() bool { return hog.saw("initialized") && good.saw("initialized") })
	holder := holderOf(t, a, b)
	// Blocks come one after another, as on a chain, not in one burst
	// (a node's own pin limit would stop the upstream follow first).
	finalizedSeen := func(f *follower, hash string) bool {
		evs := f.snapshot()
		return len(evs) > 0 && evs[len(evs)-1].Event == "finalized" && contains(evs[len(evs)-1].FinalizedBlockHashes, hash)
	}
	for range 300 {
		h := a.Chain().NewBlockFinalized().Hash
		waitFor(t, "the good client saw the block finalized", func() bool { return finalizedSeen(good, h) })
	}
	last := a.Chain().Finalized().Hash
	defer func() {
		if t.Failed() {
			evs := good.snapshot()
			t.Logf("good: %d events, last %+v; hog stopped %v; errs %v; follows %d", len(evs), evs[max(0, len(evs)-3):], hog.saw("stop"), good.errs, upstreamFollows(a, b))
		}
	}()
	waitFor(t, "the good client saw the last block finalized", func() bool {
		evs := good.snapshot()
		return len(evs) > 0 && evs[len(evs)-1].Event == "finalized" && contains(evs[len(evs)-1].FinalizedBlockHashes, last)
	})
	if !hog.saw("stop") {
		t.Fatal("the client that never unpins was not stopped")
	}
	if good.saw("stop") {
		t.Fatal("the client that unpins was stopped")
	}
	if got := upstreamFollows(a, b); got != 1 {
		t.Fatalf("upstream follows = %d", got)
	}
	waitFor(t, "the stopped client's pins released upstream", func() bool { return holder.PinnedBlocks() == 1 })
}

// When the node holding the upstream follow dies, or ends the follow
// itself, every client follow on it gets stop, and the next follows open
// on a ready node (the other one, when the first is gone).
func TestSharedFollowNodeLossStopsEveryClient(t *testing.T) {
	cases := []struct {
		name      string
		end       func(n *fakenode.Node)
		elsewhere bool // new follows must land on the other node
	}{
		{"node killed", (*fakenode.Node).Stop, true},
		{"node stops the follow", func(n *fakenode.Node) { n.StopChainHeadFollows() }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gw, a, b := startPair(t)
			fs := make([]*follower, 20)
			for i := range fs {
				fs[i] = newFollower(t, gw.WS("/dev"), true)
			}
			waitFor(t, "every client initialized", func() bool {
				for _, f := range fs {
					if !f.saw("initialized") {
						return false
					}
				}
				return true
			})
			holder := holderOf(t, a, b)
			tc.end(holder)
			waitFor(t, "every client stopped", func() bool {
				for _, f := range fs {
					if !f.saw("stop") {
						return false
					}
				}
				return true
			})
			// Like PAPI, follow again.
			again := newFollower(t, gw.WS("/dev"), true)
			waitFor(t, "a new follow initialized", func() bool { return again.saw("initialized") })
			if tc.elsewhere && other(holder, a, b).ActiveFollows() != 1 {
				t.Fatalf("follows on the surviving node = %d, want 1", other(holder, a, b).ActiveFollows())
			}
			waitFor(t, "one upstream follow", func() bool { return upstreamFollows(a, b) == 1 })
		})
	}
}

// A client that follows while blocks above the finalized one exist gets
// what a node gives a new follower: initialized with the finalized block
// and its runtime, each later block as newBlock (parent first, newRuntime
// where the runtime changed), then the best block; the client already
// following saw the same blocks live, with the same runtimes.
func TestSharedFollowLateJoinerGetsTheLiveBlocks(t *testing.T) {
	gw, a, _ := startPair(t)
	chain := a.Chain()
	fin := chain.NewBlockFinalized()
	early := testgw.Dial(t, gw.WS("/dev"))
	subEarly := early.Subscribe("chainHead_v1_follow", []bool{true})
	if ev, raw := nextFollowEvent(t, early, subEarly); ev.Event != "initialized" {
		t.Fatalf("first event %s", raw)
	}
	b1 := chain.NewBlock()
	chain.SetRuntimeVersion(101)
	b2 := chain.NewBlock()
	var live []json.RawMessage
	for len(live) < 4 { // newBlock, bestBlockChanged twice
		_, raw := nextFollowEvent(t, early, subEarly)
		live = append(live, raw)
	}

	late := testgw.Dial(t, gw.WS("/dev"))
	subLate := late.Subscribe("chainHead_v1_follow", []bool{true})
	_, init := nextFollowEvent(t, late, subLate)
	var got struct {
		Event                 string
		FinalizedBlockHashes  []string
		FinalizedBlockRuntime struct{ Spec struct{ SpecVersion int } }
	}
	if json.Unmarshal(init, &got) != nil || got.Event != "initialized" || len(got.FinalizedBlockHashes) != 1 ||
		got.FinalizedBlockHashes[0] != fin.Hash || got.FinalizedBlockRuntime.Spec.SpecVersion != 100 {
		t.Fatalf("initialized %s, want %s at spec 100", init, fin.Hash)
	}
	_, nb1 := nextFollowEvent(t, late, subLate)
	_, nb2 := nextFollowEvent(t, late, subLate)
	_, best := nextFollowEvent(t, late, subLate)
	// The same newBlock events the early client got live.
	if string(nb1) != string(live[0]) || string(nb2) != string(live[2]) {
		t.Fatalf("late newBlocks\n%s\n%s\nlive\n%s\n%s", nb1, nb2, live[0], live[2])
	}
	if !strings.Contains(string(nb1), b1.Hash) || !strings.Contains(string(nb1), `"newRuntime":null`) ||
		!strings.Contains(string(nb2), b2.Hash) || !strings.Contains(string(nb2), `"specVersion":101`) {
		t.Fatalf("newBlocks %s %s", nb1, nb2)
	}
	if string(best) != `{"event":"bestBlockChanged","bestBlockHash":"`+b2.Hash+`"}` {
		t.Fatalf("best %s", best)
	}
	for _, c := range []struct {
		c   *testgw.WSClient
		sub json.RawMessage
	}{{early, subEarly}, {late, subLate}} {
		if r := c.c.Call("chainHead_v1_header", []any{c.sub, b2.Hash}); r.Error != nil {
			t.Fatalf("header of a block the client holds: %s", r.Raw)
		}
	}
}

// Shared follows leave no goroutine and no upstream connection behind
// across reloads and a stop, with clients still following (a storage
// operation waiting for continue included).
func TestSharedFollowNoGoroutineLeakAcrossReloads(t *testing.T) {
	a := fakenode.Start(t)
	for i := range 7 {
		a.Chain().SetStorage(fmt.Sprintf("0x0d%02x", i), "0x01")
	}
	fin := a.Chain().NewBlockFinalized()
	settle := func() int {
		time.Sleep(50 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	before := settle()
	gw := &testgw.Gateway{Port: testgw.FreePort(t)}
	for range 3 {
		testgw.Load(t, gw.Caddyfile(chainBlock("dev", testChainOpts, a.URL()), "\telara_rpc"))
		awaitServing(t, gw)
		c := testgw.Dial(t, gw.WS("/dev"))
		sub := c.Subscribe("chainHead_v1_follow", []bool{false})
		nextFollowEvent(t, c, sub)
		if r := c.Call("chainHead_v1_storage", []any{sub, fin.Hash, []map[string]string{{"key": "0x0d", "type": "descendantsValues"}}, nil}); r.Error != nil {
			t.Fatal(string(r.Raw))
		}
	}
	stopCaddy(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		now := settle()
		if now <= before {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines: %d before, %d after stop\n%s", before, now, buf[:n])
		}
	}
	if a.Connections() != 0 || a.ActiveFollows() != 0 {
		t.Fatalf("after stop: %d connections, %d follows on the node", a.Connections(), a.ActiveFollows())
	}
}

// When the node holding the upstream follow stops being ready (it lags),
// new follows open on the ready node at once, while the clients already
// following keep their stream (a short lag must not stop them all).
func TestSharedFollowNewFollowsLeaveANodeThatIsNotReady(t *testing.T) {
	gw, a, b := startPair(t)
	first := newFollower(t, gw.WS("/dev"), true)
	waitFor(t, "first client initialized", func() bool { return first.saw("initialized") })
	holder := holderOf(t, a, b)
	holder.SetFollow(false)
	for range 4 { // past max_lag 2
		a.Chain().NewBlockFinalized()
	}
	waitReady(t, gw, 1)
	second := newFollower(t, gw.WS("/dev"), true)
	waitFor(t, "second client initialized", func() bool { return second.saw("initialized") })
	if got := other(holder, a, b).ActiveFollows(); got != 1 {
		t.Fatalf("follows on the ready node = %d, want 1", got)
	}
	if holder.ActiveFollows() != 1 || first.saw("stop") {
		t.Fatalf("the lagging node's follow: %d open, first client stopped: %v", holder.ActiveFollows(), first.saw("stop"))
	}
	// The first client still gets the lagging node's blocks once it
	// catches up, from that node only.
	holder.SetFollow(true)
	last := a.Chain().Finalized().Hash
	waitFor(t, "the first client caught up", func() bool {
		evs := first.snapshot()
		return len(evs) > 0 && evs[len(evs)-1].Event == "finalized" && contains(evs[len(evs)-1].FinalizedBlockHashes, last)
	})
}
