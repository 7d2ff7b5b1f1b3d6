package limits

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/elara-gateway/elara/cacher/cachertest"
)

// Two gateways hammering one project through one Redis admit together
// the project's rate, within 20%.
func TestSharedRateAcrossInstances(t *testing.T) {
	r := cachertest.StartRedis(t)
	cases := []struct {
		name string
		lim  Limits
	}{
		{"original gold plan", Limits{RequestsPerSecond: 20}},
		{"fast with a burst", Limits{RequestsPerSecond: 200, Burst: 50}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			limiters := []*SharedRateLimiter{
				NewSharedRateLimiter(redisClient(t, r.Addr), SharedRateOptions{}),
				NewSharedRateLimiter(redisClient(t, r.Addr), SharedRateOptions{}),
			}
			const run = 2 * time.Second
			var admitted atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			for _, l := range limiters {
				for range 2 { // two clients per gateway
					wg.Add(1)
					go func() {
						defer wg.Done()
						for time.Since(start) < run {
							if l.Allow(context.Background(), "project:"+c.name, c.lim).Allowed {
								admitted.Add(1)
							}
						}
					}()
				}
			}
			wg.Wait()
			elapsed := time.Since(start).Seconds()
			want := c.lim.RequestsPerSecond*elapsed + float64(c.lim.EffectiveBurst())
			got := float64(admitted.Load())
			t.Logf("admitted %.0f in %.2fs, limit allows %.0f", got, elapsed, want)
			if got > want*1.2 || got < want*0.8 {
				t.Errorf("admitted %.0f, want %.0f ± 20%%", got, want)
			}
		})
	}
}

// With Redis down a gateway limits on its own (fail open to local
// limits) or refuses (fail closed); one log line each way.
func TestSharedRateOutage(t *testing.T) {
	for _, closed := range []bool{false, true} {
		name := map[bool]string{false: "fail open to local limits", true: "fail closed"}[closed]
		t.Run(name, func(t *testing.T) {
			r := cachertest.StartRedis(t)
			core, logs := observer.New(zap.InfoLevel)
			l := NewSharedRateLimiter(redisClient(t, r.Addr), SharedRateOptions{FailClosed: closed,
				RetryAfter: 100 * time.Millisecond, Logger: zap.New(core)})
			ctx := context.Background()
			lim := Limits{RequestsPerSecond: 1, Burst: 2}
			if !l.Allow(ctx, "p", lim).Allowed {
				t.Fatal("the first call was refused")
			}
			r.Stop()
			time.Sleep(time.Second) // past the first lease
			var allowed int
			var last Decision
			for range 10 {
				if last = l.Allow(ctx, "p", lim); last.Allowed {
					allowed++
				}
			}
			if closed && allowed != 0 {
				t.Errorf("fail closed allowed %d calls", allowed)
			}
			if !closed && allowed != 2 {
				t.Errorf("fail open allowed %d calls, want the local burst of 2", allowed)
			}
			if last.RetryAfter <= 0 {
				t.Errorf("a refusal without a retry time: %+v", last)
			}
			r.Restart(t)
			time.Sleep(200 * time.Millisecond) // past RetryAfter
			if d := l.Allow(ctx, "q", lim); !d.Allowed {
				t.Errorf("after Redis came back: %+v", d)
			}
			if n := logs.FilterMessageSnippet("unavailable").Len(); n != 1 {
				t.Errorf("%d outage lines, want 1", n)
			}
			if n := logs.FilterMessageSnippet("available again").Len(); n != 1 {
				t.Errorf("%d recovery lines, want 1", n)
			}
		})
	}
}
