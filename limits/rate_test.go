package limits

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestRateLimiter(t *testing.T) {
	type step struct {
		after time.Duration // clock advance before the call
		n     int64
		ok    bool
		retry time.Duration // expected retry-after when refused
	}
	cases := []struct {
		name  string
		lim   Limits
		steps []step
	}{
		{"burst then refused with retry-after of one interval", Limits{RequestsPerSecond: 5, Burst: 3}, []step{
			{0, 1, true, 0}, {0, 1, true, 0}, {0, 1, true, 0},
			{0, 1, false, 200 * time.Millisecond},
			{100 * time.Millisecond, 1, false, 100 * time.Millisecond},
			{100 * time.Millisecond, 1, true, 0},
			{0, 1, false, 200 * time.Millisecond},
		}},
		{"default burst is the rate", Limits{RequestsPerSecond: 2}, []step{
			{0, 1, true, 0}, {0, 1, true, 0}, {0, 1, false, 500 * time.Millisecond},
		}},
		{"steady rate is always allowed", Limits{RequestsPerSecond: 10, Burst: 1}, []step{
			{0, 1, true, 0}, {100 * time.Millisecond, 1, true, 0}, {100 * time.Millisecond, 1, true, 0},
			{50 * time.Millisecond, 1, false, 50 * time.Millisecond},
		}},
		{"idle refills only up to the burst", Limits{RequestsPerSecond: 1, Burst: 2}, []step{
			{0, 1, true, 0}, {time.Hour, 1, true, 0}, {0, 1, true, 0}, {0, 1, false, time.Second},
		}},
		{"n at once is all or none", Limits{RequestsPerSecond: 10, Burst: 5}, []step{
			{0, 4, true, 0}, {0, 2, false, 100 * time.Millisecond}, {0, 1, true, 0},
		}},
		{"slow rate", Limits{RequestsPerSecond: 0.5, Burst: 1}, []step{
			{0, 1, true, 0}, {time.Second, 1, false, time.Second}, {time.Second, 1, true, 0},
		}},
		// Callers read the clock before the limiter's lock, so a call
		// can arrive with an older reading than the one before it.
		{"readings out of order stay within the burst", Limits{RequestsPerSecond: 1, Burst: 2}, []step{
			{time.Millisecond, 1, true, 0}, {-time.Millisecond, 1, true, 0}, {0, 1, false, time.Second},
		}},
		{"zero rate is unlimited", Limits{}, []step{
			{0, 1000, true, 0}, {0, 1000, true, 0},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := newFakeClock(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
			r := NewRateLimiter(0, clk.Now)
			for i, s := range c.steps {
				clk.Advance(s.after)
				d := r.AllowN("p1", c.lim, s.n)
				if d.Allowed != s.ok || d.RetryAfter != s.retry {
					t.Fatalf("step %d: got %+v, want allowed=%v retry=%s", i, d, s.ok, s.retry)
				}
			}
			// Another key has its own bucket.
			if d := r.AllowN("p2", c.lim, 1); !d.Allowed {
				t.Errorf("another key was refused: %+v", d)
			}
		})
	}
}

func TestRateLimiterBoundedMemory(t *testing.T) {
	clk := newFakeClock(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
	r := NewRateLimiter(rateShards*10, clk.Now)
	lim := Limits{RequestsPerSecond: 1, Burst: 1}
	for i := range 10_000 {
		r.Allow(fmt.Sprintf("ip-%d", i), lim)
	}
	if n := r.Len(); n > rateShards*10 {
		t.Fatalf("%d keys remembered, bound is %d", n, rateShards*10)
	}
	// Keys whose bucket is full again are forgotten first.
	clk.Advance(2 * time.Second)
	for i := range 2000 {
		r.Allow(fmt.Sprintf("new-%d", i), lim)
	}
	if d := r.Allow("new-1999", lim); d.Allowed {
		t.Error("the newest key lost its state")
	}
}

func TestExceededMessage(t *testing.T) {
	reset := time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		e       Exceeded
		want    []string
		seconds int64
		json    []string
	}{
		{"daily", Exceeded{Limit: RequestsPerDay, Scope: ScopeProject, Value: 100000, Used: 100000, ResetAt: reset, RetryAfter: 90 * time.Minute},
			[]string{"requests_per_day", "100000", "resets at 2026-12-06T16:00:00Z"}, 5400,
			[]string{`"limit":"requests_per_day"`, `"scope":"project"`, `"value":100000`, `"used":100000`, `"reset_at":"2026-12-06T16:00:00Z"`, `"retry_after":5400`}},
		{"rate", Exceeded{Limit: RequestsPerSecond, Scope: ScopeIP, Value: 2.5, RetryAfter: 10 * time.Millisecond},
			[]string{"ip limit requests_per_second of 2.5", "retry after 1s"}, 1,
			[]string{`"limit":"requests_per_second"`, `"value":2.5`, `"retry_after":1`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := c.e.Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
			if got := c.e.RetryAfterSeconds(); got != c.seconds {
				t.Errorf("RetryAfterSeconds = %d, want %d", got, c.seconds)
			}
			data, _ := json.Marshal(c.e.Data())
			for _, w := range c.json {
				if !strings.Contains(string(data), w) {
					t.Errorf("data %s lacks %s", data, w)
				}
			}
		})
	}
}

// A key's debt carries over a change of its limits (a plan edited, a
// reload) as the calls it owes, priced at the new rate.
func TestRateLimiterLimitsChange(t *testing.T) {
	cases := []struct {
		name    string
		before  Limits
		calls   int64 // taken under before
		after   Limits
		allowed int // calls then allowed at once under after
	}{
		{"raised: one call owed at 1/s costs 1 ms at 1000/s", Limits{RequestsPerSecond: 1, Burst: 1}, 1, Limits{RequestsPerSecond: 1000, Burst: 1000}, 999},
		{"lowered: three calls owed of a burst of 10 leave 2 of 5", Limits{RequestsPerSecond: 10, Burst: 10}, 3, Limits{RequestsPerSecond: 1, Burst: 5}, 2},
		{"unchanged", Limits{RequestsPerSecond: 5, Burst: 5}, 5, Limits{RequestsPerSecond: 5, Burst: 5}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := newFakeClock(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
			r := NewRateLimiter(0, clk.Now)
			if d := r.AllowN("p", c.before, c.calls); !d.Allowed {
				t.Fatalf("calls under the first limits refused: %+v", d)
			}
			n := 0
			for r.Allow("p", c.after).Allowed {
				n++
				if n > 10000 {
					break
				}
			}
			if n != c.allowed {
				t.Fatalf("allowed %d calls under the new limits, want %d", n, c.allowed)
			}
		})
	}
}

// A step of the wall clock back is not a reading out of order: a key that
// owes nothing goes on at its rate from the new time, instead of waiting
// out the step.
func TestRateLimiterClockSteppedBack(t *testing.T) {
	clk := newFakeClock(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
	r := NewRateLimiter(0, clk.Now)
	lim := Limits{RequestsPerSecond: 1, Burst: 1}
	// b shares a's shard, whose latest reading a sets.
	shard := func(k string) uint64 { return maphash.String(r.seed, k) % rateShards }
	b := "b"
	for i := 0; shard(b) != shard("a"); i++ {
		b = fmt.Sprint("b", i)
	}
	if !r.Allow("a", lim).Allowed {
		t.Fatal("first call refused")
	}
	clk.Advance(-time.Hour)
	for i := range 3 {
		if d := r.Allow(b, lim); !d.Allowed {
			t.Fatalf("call %d of a new key a second apart after the step: %+v", i, d)
		}
		clk.Advance(time.Second)
	}
}
