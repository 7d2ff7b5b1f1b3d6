package limits

import (
	"strings"
	"testing"
	"time"
)

// Rates and bursts whose GCRA times would not fit in int64 nanoseconds
// are refused with a clear message; the extremes allowed still work.
func TestLimitsBounds(t *testing.T) {
	cases := []struct {
		name string
		l    Limits
		want string // "" means valid
	}{
		{"slowest rate with the largest burst", Limits{RequestsPerSecond: MinRequestsPerSecond, Burst: MaxBurst}, ""},
		{"fastest rate", Limits{RequestsPerSecond: MaxRequestsPerSecond}, ""},
		{"rate too slow", Limits{RequestsPerSecond: 1e-12, Burst: 1 << 40}, "requests_per_second"},
		{"rate too fast", Limits{RequestsPerSecond: 1e19}, "requests_per_second"},
		{"burst too large", Limits{RequestsPerSecond: 1, Burst: 1 << 40}, "burst"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.l.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error about %s", err, c.want)
			}
			if c.want != "" {
				return
			}
			clk := newFakeClock(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
			r := NewRateLimiter(0, clk.Now)
			if !r.Allow("p", c.l).Allowed {
				t.Fatal("the first call was refused")
			}
		})
	}
}

// Limits that skipped validation never let every call through nor
// refuse every call: the GCRA times saturate instead of overflowing.
func TestRateLimiterExtremeLimits(t *testing.T) {
	cases := []struct {
		name    string
		l       Limits
		allowed int
	}{
		{"tiny rate, small burst", Limits{RequestsPerSecond: 1e-12, Burst: 3}, 3},
		{"tiny rate, huge burst", Limits{RequestsPerSecond: 1e-12, Burst: 1 << 62}, 10},
		{"slow rate, huge burst", Limits{RequestsPerSecond: 0.001, Burst: 1 << 40}, 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := newFakeClock(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
			r := NewRateLimiter(0, clk.Now)
			got := 0
			for range 10 {
				if r.Allow("p", c.l).Allowed {
					got++
				}
			}
			if got != c.allowed {
				t.Errorf("allowed %d of 10 at once, want %d", got, c.allowed)
			}
		})
	}
}
