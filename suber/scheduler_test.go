package suber

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// queue starts a call of c that waits its turn and records its name in
// order once admitted; it returns once the call is queued.
type admissions struct {
	mu    sync.Mutex
	order []string
	rel   []func()
	wg    sync.WaitGroup
}

func (a *admissions) queue(t *testing.T, s *Scheduler, c *Client, name string) {
	t.Helper()
	_, before := s.Stats()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		release, err := s.Acquire(WithClient(context.Background(), c))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		a.mu.Lock()
		a.order = append(a.order, name)
		a.rel = append(a.rel, release)
		a.mu.Unlock()
	}()
	schedWait(t, func() bool { _, w := s.Stats(); return w == before+1 })
}

// releaseNext ends the oldest admitted call and waits for the next one.
func (a *admissions) releaseNext(t *testing.T) {
	t.Helper()
	a.mu.Lock()
	n := len(a.order)
	r := a.rel[0]
	a.rel = a.rel[1:]
	a.mu.Unlock()
	r()
	schedWait(t, func() bool { a.mu.Lock(); defer a.mu.Unlock(); return len(a.order) == n+1 })
}

func schedWait(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Queued calls are admitted in turn: IPs first, then each IP's clients,
// so neither a client with many calls waiting nor an IP with many
// clients goes before the others more than once per round.
func TestSchedulerTakesTurns(t *testing.T) {
	cases := []struct {
		name    string
		clients map[string]*Client
		queue   []string // who queues, in order
		want    []string // admission order, one release at a time
	}{
		{"one client's backlog does not go first",
			map[string]*Client{"a": {IP: "1"}, "b": {IP: "2"}},
			[]string{"a", "a", "a", "a", "b"},
			[]string{"a", "b", "a", "a", "a"}},
		{"connections of one IP share one turn",
			map[string]*Client{"x1": {IP: "x"}, "x2": {IP: "x"}, "x3": {IP: "x"}, "y": {IP: "y"}},
			[]string{"x1", "x2", "x3", "x1", "x2", "x3", "y", "y", "y"},
			[]string{"x1", "y", "x2", "y", "x3", "y", "x1", "x2", "x3"}},
		{"connections of one IP take turns",
			map[string]*Client{"a": {IP: "1"}, "b": {IP: "1"}},
			[]string{"a", "a", "a", "b", "b"},
			[]string{"a", "b", "a", "b", "a"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := NewScheduler(SchedulerLimits{InFlight: 1})
			// A call of nobody's holds the only place while the others queue.
			hold, err := s.Acquire(WithClient(context.Background(), &Client{IP: "holder"}))
			if err != nil {
				t.Fatal(err)
			}
			var a admissions
			for _, name := range tc.queue {
				a.queue(t, s, tc.clients[name], name)
			}
			hold()
			schedWait(t, func() bool { a.mu.Lock(); defer a.mu.Unlock(); return len(a.order) == 1 })
			for range len(tc.queue) - 1 {
				a.releaseNext(t)
			}
			if got := a.order; !slices.Equal(got, tc.want) {
				t.Fatalf("admitted %v, want %v", got, tc.want)
			}
			for _, r := range a.rel {
				r()
			}
			a.wg.Wait()
			if in, w := s.Stats(); in != 0 || w != 0 || len(s.ips) != 0 || len(s.ring) != 0 {
				t.Fatalf("left: %d in flight, %d waiting, %d IPs, ring %d", in, w, len(s.ips), len(s.ring))
			}
		})
	}
}

func TestSchedulerBounds(t *testing.T) {
	t.Run("a client's own bound makes its next call wait", func(t *testing.T) {
		s := NewScheduler(SchedulerLimits{})
		ctx := WithClient(context.Background(), &Client{IP: "1", MaxInFlight: 2})
		r1, _ := s.Acquire(ctx)
		r2, _ := s.Acquire(ctx)
		got := make(chan error, 1)
		go func() {
			r3, err := s.Acquire(ctx)
			if err == nil {
				r3()
			}
			got <- err
		}()
		schedWait(t, func() bool { _, w := s.Stats(); return w == 1 })
		// Another client is not held up by it.
		other, err := s.Acquire(WithClient(context.Background(), &Client{IP: "1", MaxInFlight: 2}))
		if err != nil {
			t.Fatal(err)
		}
		other()
		r1()
		if err := <-got; err != nil {
			t.Fatal(err)
		}
		r2()
		r1() // a second release is a no-op
		if in, w := s.Stats(); in != 0 || w != 0 {
			t.Fatalf("left %d in flight, %d waiting", in, w)
		}
	})
	t.Run("pending bound refuses", func(t *testing.T) {
		s := NewScheduler(SchedulerLimits{InFlight: 1, Pending: 2})
		c := WithClient(context.Background(), &Client{IP: "1"})
		r1, _ := s.Acquire(c)
		ctx, cancel := context.WithCancel(c)
		waited := make(chan error, 1)
		go func() { _, err := s.Acquire(ctx); waited <- err }()
		schedWait(t, func() bool { _, w := s.Stats(); return w == 1 })
		if _, err := s.Acquire(c); !errors.Is(err, ErrTooManyPending) {
			t.Fatalf("third call: %v, want ErrTooManyPending", err)
		}
		// A waiting call whose deadline passes leaves the queue.
		cancel()
		if err := <-waited; !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled wait: %v", err)
		}
		r1()
		if in, w := s.Stats(); in != 0 || w != 0 || len(s.ips) != 0 {
			t.Fatalf("left %d in flight, %d waiting, %d IPs", in, w, len(s.ips))
		}
	})
	t.Run("the gateway's own calls are never queued", func(t *testing.T) {
		s := NewScheduler(SchedulerLimits{InFlight: 1, Pending: 1})
		r1, _ := s.Acquire(WithClient(context.Background(), &Client{IP: "1"}))
		defer r1()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r, err := s.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r()
	})
	t.Run("raising the bound admits those waiting", func(t *testing.T) {
		s := NewScheduler(SchedulerLimits{InFlight: 1})
		c := WithClient(context.Background(), &Client{IP: "1"})
		r1, _ := s.Acquire(c)
		got := make(chan func(), 1)
		go func() { r, _ := s.Acquire(c); got <- r }()
		schedWait(t, func() bool { _, w := s.Stats(); return w == 1 })
		s.SetLimits(SchedulerLimits{InFlight: 2})
		(<-got)()
		r1()
	})
}

// The cost the scheduler adds to every client call that reaches a node,
// when nothing waits (the common case) and with every call queued behind
// a full chain (RunParallel: many clients at once).
func BenchmarkSchedulerAcquire(b *testing.B) {
	b.Run("under the bounds", func(b *testing.B) {
		s := NewScheduler(SchedulerLimits{InFlight: 1 << 20, Pending: 1 << 20})
		b.RunParallel(func(pb *testing.PB) {
			ctx := WithClient(context.Background(), &Client{IP: "198.51.100.1", MaxInFlight: 32})
			for pb.Next() {
				r, _ := s.Acquire(ctx)
				r()
			}
		})
	})
	b.Run("at the bound, queued", func(b *testing.B) {
		s := NewScheduler(SchedulerLimits{InFlight: 2})
		b.RunParallel(func(pb *testing.PB) {
			ctx := WithClient(context.Background(), &Client{IP: "198.51.100.1", MaxInFlight: 32})
			for pb.Next() {
				r, _ := s.Acquire(ctx)
				r()
			}
		})
	})
}
