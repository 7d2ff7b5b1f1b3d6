package cacher

import (
	"context"
	"encoding/json"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/suber"
)

// fakeClock moves only when told; its After channels fire as it passes
// their deadlines.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), ch: ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
			continue
		}
		kept = append(kept, t)
	}
	c.timers = kept
}

// groupUp adapts a suber group, as the app does.
type groupUp struct{ g *suber.Group }

func (u groupUp) Call(ctx context.Context, m string, p json.RawMessage) (json.RawMessage, error) {
	return u.g.Call(ctx, m, p)
}

func (u groupUp) Subscribe(ctx context.Context, m string, p json.RawMessage, unsub string, sink suber.Sink) (Subscription, error) {
	s, err := u.g.Subscribe(ctx, m, p, unsub, sink)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// NodeCalls lets the cache address the ready nodes, as the app's adapter does.
func (u groupUp) NodeCalls() []CallFunc {
	nodes := u.g.Nodes()
	var out []CallFunc
	for i, h := range u.g.Health() {
		if h.Ready {
			out = append(out, nodes[i].Call)
		}
	}
	return out
}

// upstreamGroup connects a group of one-connection nodes, in this order,
// with readiness rules.
func upstreamGroup(t *testing.T, rules suber.Readiness, fakes ...*fakenode.Node) Upstream {
	t.Helper()
	var nodes []*suber.Node
	for _, f := range fakes {
		n, err := suber.NewNode(f.URL(), suber.Options{PoolSize: 1, HealthInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		n.Start()
		nodes = append(nodes, n)
	}
	g := suber.NewGroup(nodes, rules)
	t.Cleanup(func() {
		g.Close()
		for _, n := range nodes {
			_ = n.Close()
		}
	})
	return groupUp{g}
}

// upstream connects a one-connection group to node. Node health checks
// are slowed down so the node's counters show only what the cache and
// the test send (plus the group's few health calls at start).
func upstream(t *testing.T, node *fakenode.Node) Upstream {
	t.Helper()
	n, err := suber.NewNode(node.URL(), suber.Options{PoolSize: 1, HealthInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	g := suber.NewGroup([]*suber.Node{n}, suber.Readiness{MaxLag: 5})
	t.Cleanup(func() {
		g.Close()
		_ = n.Close()
	})
	return groupUp{g}
}

type testEnv struct {
	node  *fakenode.Node
	clock *fakeClock
	store *MemoryStore
	cache *Cache
}

// startCache runs a cache over a fresh fake node with a fake clock; edit
// tweaks the options first. The suducer is started and has read the
// chain's state when it returns.
func startCache(t *testing.T, edit func(*Options)) *testEnv {
	t.Helper()
	node := fakenode.Start(t)
	return startCacheOn(t, node, upstream(t, node), edit)
}

// startCacheOn is startCache over up, whose nodes follow node's chain;
// env.node is node.
func startCacheOn(t *testing.T, node *fakenode.Node, up Upstream, edit func(*Options)) *testEnv {
	t.Helper()
	clock := newFakeClock()
	store := NewMemoryStore(16<<20, clock, nil)
	rules, err := NewRules(nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Name: "dev", Upstream: up, Store: store, Rules: rules,
		Refresh: time.Second, CallTimeout: 5 * time.Second, Clock: clock,
	}
	if edit != nil {
		edit(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	c.Start()
	env := &testEnv{node: node, clock: opts.Clock.(*fakeClock), store: store, cache: c}
	best := node.Chain().Best()
	env.waitFor(t, "suducer reads the chain", func(h Head) bool {
		return h.Best == best.Number && h.BestHash == best.Hash && h.FinalHash != "" && h.SpecVersion != "" && h.Genesis != "" && env.constantsReady()
	})
	return env
}

// constantsReady reports whether the runtime constants are in the store.
func (e *testEnv) constantsReady() bool {
	h := e.cache.Head()
	_, err := e.cache.store.Get(context.Background(), buildKey(h.Genesis, scopeRuntime+h.SpecVersion, "system_properties", emptyArray))
	return err == nil
}

// waitFor polls the cache's view until cond holds. The deadline only
// keeps a broken build from hanging; nothing is measured against it.
func (e *testEnv) waitFor(t *testing.T, what string, cond func(Head) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond(e.cache.Head()) || !e.idle() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s (head %+v)", what, e.cache.Head())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// idle reports whether the suducer has nothing to do: with the fake clock
// standing still and the chain unchanged, it makes no upstream call, so
// the node's counters show only what the test sends.
func (e *testEnv) idle() bool {
	return e.cache.pending.Load() == 0 && !e.cache.busy.Load() && len(e.cache.kick) == 0
}

func (e *testEnv) call(t *testing.T, method string, params string) json.RawMessage {
	t.Helper()
	var p json.RawMessage
	if params != "" {
		p = json.RawMessage(params)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := e.cache.Call(ctx, method, p)
	if err != nil {
		t.Fatalf("%s(%s): %v", method, params, err)
	}
	return v
}

// direct asks the node itself over HTTP.
func direct(t *testing.T, node *fakenode.Node, method, params string) json.RawMessage {
	t.Helper()
	if params == "" {
		params = "[]"
	}
	body := `{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":` + params + `}`
	resp, err := http.Post(node.HTTPURL(), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || m.Error != nil {
		t.Fatalf("direct %s(%s): %v %s", method, params, err, m.Error)
	}
	return m.Result
}

// allStacks is the stack of every goroutine.
func allStacks() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// countGoroutines counts the suducer's loops in this process.
func countGoroutines() int {
	stacks := allStacks()
	return strings.Count(stacks, "cacher.(*Cache).run(") + strings.Count(stacks, "cacher.(*Cache).follow(")
}

// cacheGoroutines counts goroutines running methods of this package's
// types (the cache, its flights and stores), other than tests.
func cacheGoroutines() (int, string) {
	count := 0
	var found []string
	for _, g := range strings.Split(allStacks(), "\n\n") {
		if strings.Contains(g, "elara/cacher.(*") && !strings.Contains(g, "testing.tRunner") {
			count++
			found = append(found, g)
		}
	}
	return count, strings.Join(found, "\n\n")
}

// waitNoGoroutines waits for the loops to finish exiting (Stop has
// already waited for them to return).
func waitNoGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for countGoroutines() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d suducer goroutines survive Stop", countGoroutines())
		}
		time.Sleep(time.Millisecond)
	}
}
