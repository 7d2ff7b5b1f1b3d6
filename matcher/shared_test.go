package matcher

import (
	"context"
	"encoding/json"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/suber"
)

// recorder is a client that keeps every frame it is sent.
type recorder struct {
	mu     sync.Mutex
	frames [][]byte
}

func (r *recorder) Send(f []byte) bool {
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.mu.Unlock()
	return true
}

func (r *recorder) numbers(t *testing.T) []uint64 {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint64
	for _, f := range r.frames {
		var n struct {
			Params struct {
				Result json.RawMessage `json:"result"`
			} `json:"params"`
		}
		if err := json.Unmarshal(f, &n); err != nil {
			t.Fatal(err)
		}
		num, ok := suber.HeaderNumber(n.Params.Result)
		if !ok {
			t.Fatalf("not a header: %s", f)
		}
		out = append(out, num)
	}
	return out
}

func newTestMatcher(t *testing.T, grace time.Duration) (*Matcher, *fakenode.Node) {
	t.Helper()
	node := fakenode.Start(t)
	n, err := suber.NewNode(node.URL(), suber.Options{PoolSize: 2, HealthInterval: 50 * time.Millisecond, BackoffMin: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	g := suber.NewGroup([]*suber.Node{n}, suber.DefaultReadiness)
	m := New(g, Options{Grace: grace, CallTimeout: 2 * time.Second})
	t.Cleanup(func() {
		m.Close()
		g.Close()
		n.Close()
	})
	return m, node
}

// Clients join while blocks are being made: each must see the current
// head at once and every later head exactly once, in order.
func TestJoinDuringNotificationsNeverDuplicatesOrSkips(t *testing.T) {
	m, node := newTestMatcher(t, time.Second)
	chain := node.Chain()
	stopBlocks := makeBlocks(chain.NewBlock, time.Millisecond)
	var clients []*recorder
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &recorder{}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			cs, err := m.Subscribe(ctx, r, "chain_subscribeNewHeads", nil)
			if err != nil {
				t.Error(err)
				return
			}
			cs.Activate()
			mu.Lock()
			clients = append(clients, r)
			mu.Unlock()
		}()
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	stopBlocks()
	final := chain.NewBlock().Number
	deadline := time.Now().Add(5 * time.Second)
	for _, r := range clients {
		for {
			nums := r.numbers(t)
			if len(nums) > 0 && nums[len(nums)-1] == final {
				for i := 1; i < len(nums); i++ {
					if nums[i] != nums[i-1]+1 {
						t.Fatalf("client saw %v: duplicate or gap at %d", nums, i)
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("client stopped at %v, want up to %d", nums, final)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if m.SharedCount() != 1 {
		t.Fatalf("%d shared subscriptions, want 1", m.SharedCount())
	}
}

func TestNotificationsWaitForActivate(t *testing.T) {
	m, node := newTestMatcher(t, 0)
	r := &recorder{}
	cs, err := m.Subscribe(context.Background(), r, "chain_subscribeNewHeads", nil)
	if err != nil {
		t.Fatal(err)
	}
	node.Chain().NewBlock()
	time.Sleep(50 * time.Millisecond)
	if len(r.numbers(t)) != 0 {
		t.Fatal("notification sent before the subscribe reply")
	}
	cs.Activate()
	if len(r.numbers(t)) == 0 {
		t.Fatal("held notifications not released")
	}
	if res, _ := cs.Unsubscribe(context.Background()); string(res) != "true" {
		t.Fatalf("unsubscribe: %s", res)
	}
	if res, _ := cs.Unsubscribe(context.Background()); string(res) != "false" {
		t.Fatalf("second unsubscribe: %s", res)
	}
}

func (r *recorder) Ended(*ClientSub) {}

// makeBlocks calls newBlock every interval until the returned stop, which
// waits for the last call.
func makeBlocks[H any](newBlock func() H, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var producer sync.WaitGroup
	producer.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				newBlock()
				time.Sleep(interval)
			}
		}
	})
	return func() { close(done); producer.Wait() }
}

// A head reaches every client of a shared subscription exactly once and
// in order, however many clients share it: one goroutine delivers to a
// few, several share out many in chunks (the last one partial).
func TestEveryClientGetsEveryHeadOnce(t *testing.T) {
	// Four delivering goroutines contend for the chunks even where the
	// machine has fewer CPUs.
	prev := runtime.GOMAXPROCS(4)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	for _, tc := range []struct {
		name    string
		clients int
	}{
		{"one goroutine", parallelFanout - 1},
		{"shared out, last chunk partial", parallelFanout + fanoutChunk + 7},
		{"shared out, many chunks", 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, node := newTestMatcher(t, 0)
			chain := node.Chain()
			clients := make([]*recorder, tc.clients)
			for i := range clients {
				clients[i] = &recorder{}
				cs, err := m.Subscribe(context.Background(), clients[i], "chain_subscribeNewHeads", nil)
				if err != nil {
					t.Fatal(err)
				}
				cs.Activate()
			}
			var final uint64
			for range 3 {
				final = chain.NewBlock().Number
			}
			deadline := time.Now().Add(10 * time.Second)
			for i, r := range clients {
				for {
					nums := r.numbers(t)
					if n := len(nums); n > 0 && nums[n-1] >= final {
						for j := 1; j < n; j++ {
							if nums[j] != nums[j-1]+1 {
								t.Fatalf("client %d saw %v: a duplicate, gap or reordering at %d", i, nums, j)
							}
						}
						if nums[0] > final-3 {
							t.Fatalf("client %d saw %v: missed heads up to %d", i, nums, final)
						}
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("client %d has %v, want up to %d", i, nums, final)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
		})
	}
}
