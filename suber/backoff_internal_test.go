package suber

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
)

func TestBackoffSequence(t *testing.T) {
	const ms = time.Millisecond
	type step struct {
		lived time.Duration // > 0: a connection that lived this long ended before this wait
		want  time.Duration
	}
	cases := []struct {
		name     string
		min, max time.Duration
		steps    []step
	}{
		{
			name: "defaults double up to the 30s cap",
			min:  DefaultBackoffMin, max: DefaultBackoffMax,
			steps: []step{{0, 200 * ms}, {0, 400 * ms}, {0, 800 * ms}, {0, 1600 * ms}, {0, 3200 * ms},
				{0, 6400 * ms}, {0, 12800 * ms}, {0, 25600 * ms}, {0, 30 * time.Second}, {0, 30 * time.Second}},
		},
		{
			name: "a long-lived connection starts over at the minimum",
			min:  DefaultBackoffMin, max: DefaultBackoffMax,
			steps: []step{{0, 200 * ms}, {0, 400 * ms}, {0, 800 * ms}, {0, 1600 * ms},
				{time.Minute, 200 * ms}, {0, 400 * ms}, {0, 800 * ms}},
		},
		{
			name: "after the cap too",
			min:  100 * ms, max: 400 * ms,
			steps: []step{{0, 100 * ms}, {0, 200 * ms}, {0, 400 * ms}, {0, 400 * ms}, {time.Hour, 100 * ms}, {0, 200 * ms}},
		},
		{
			name: "a connection that dropped at once keeps backing off",
			min:  DefaultBackoffMin, max: DefaultBackoffMax,
			steps: []step{{0, 200 * ms}, {0, 400 * ms}, {time.Millisecond, 800 * ms}, {time.Second, 1600 * ms}},
		},
		{
			name: "ten minimum waits is not long enough",
			min:  DefaultBackoffMin, max: DefaultBackoffMax,
			steps: []step{{0, 200 * ms}, {0, 400 * ms}, {2 * time.Second, 800 * ms}, {2*time.Second + 1, 200 * ms}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := backoff{min: tc.min, max: tc.max}
			for i, s := range tc.steps {
				if s.lived > 0 {
					b.connectionLived(s.lived)
				}
				if got := b.next(); got != s.want {
					t.Fatalf("wait %d = %v, want %v", i+1, got, s.want)
				}
			}
		})
	}
}

// The waits a pool slot really takes between attempts, against a fake
// node that refuses, then accepts and drops connections: the sleeping and
// the clock are the node's seams, so nothing here waits for real.
func TestSlotReconnectWaits(t *testing.T) {
	const (
		minWait = 100 * time.Millisecond
		maxWait = 800 * time.Millisecond
	)
	fake := fakenode.Start(t)
	fake.Stop() // connections refused
	n, err := NewNode(fake.URL(), Options{PoolSize: 1, DialTimeout: 2 * time.Second, PingInterval: time.Hour,
		BackoffMin: minWait, BackoffMax: maxWait, HealthInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var elapsed atomic.Int64
	base := time.Now()
	n.now = func() time.Time { return base.Add(time.Duration(elapsed.Load())) }
	waits := make(chan time.Duration)
	proceed := make(chan bool)
	n.sleep = func(ctx context.Context, d time.Duration) bool {
		select {
		case waits <- d:
		case <-ctx.Done():
			return false
		}
		select {
		case ok := <-proceed:
			return ok
		case <-ctx.Done():
			return false
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.slots[0].run(n.ctx)
	}()
	t.Cleanup(func() {
		_ = n.Close()
		<-done
	})

	// expect takes the next wait, checks it is the jittered want, and lets
	// the slot go on once before has run.
	expect := func(what string, want time.Duration, before func()) {
		t.Helper()
		select {
		case d := <-waits:
			if d < want/2 || d >= want {
				t.Fatalf("%s: waited %v, want %v jittered to [%v, %v)", what, d, want, want/2, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the slot never waited", what)
		}
		if before != nil {
			before()
		}
		proceed <- true
	}
	connected := func() {
		waitUntil(t, 10*time.Second, "a connection", func() bool { return n.Connected() && fake.Connections() == 1 })
	}

	expect("1st refused dial", minWait, nil)
	expect("2nd refused dial", 2*minWait, nil)
	expect("3rd refused dial", 4*minWait, nil)
	expect("4th refused dial", maxWait, nil)
	expect("5th refused dial, capped", maxWait, func() {
		if err := fake.Restart(); err != nil {
			t.Fatal(err)
		}
	})
	// A connection dropped at once does not reset the backoff.
	connected()
	fake.DisconnectAll()
	expect("after a connection that dropped at once", maxWait, nil)
	// One that lived long (by the node's clock) does.
	connected()
	elapsed.Add(int64(time.Hour))
	fake.DisconnectAll()
	expect("after a long-lived connection", minWait, nil)
	// And doubling resumes from there.
	connected()
	fake.DisconnectAll()
	expect("after the next short connection", 2*minWait, nil)
}
