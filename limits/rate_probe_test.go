package limits

import (
	"context"
	"testing"
	"time"

	"github.com/elara-gateway/elara/cacher/cachertest"
)

// A probe whose client went away (cancelled context) does not leave the
// breaker probing: once Redis is back the limiter uses it again, in both
// modes.
func TestSharedRateProbeCancelled(t *testing.T) {
	for _, c := range []struct {
		name   string
		closed bool
	}{{"fail open to local limits", false}, {"fail closed", true}} {
		t.Run(c.name, func(t *testing.T) {
			r := cachertest.StartRedis(t)
			l := NewSharedRateLimiter(redisClient(t, r.Addr), SharedRateOptions{FailClosed: c.closed,
				RetryAfter: 50 * time.Millisecond})
			lim := Limits{RequestsPerSecond: 1, Burst: 1}
			ctx := context.Background()

			r.Stop()
			l.Allow(ctx, "outage", lim) // marks Redis down
			r.Restart(t)
			time.Sleep(100 * time.Millisecond) // past RetryAfter: the next call probes
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			l.Allow(cancelled, "probe", lim)
			time.Sleep(100 * time.Millisecond)

			// Another gateway spends the shared limit of "spent".
			other := NewSharedRateLimiter(redisClient(t, r.Addr), SharedRateOptions{})
			if !other.Allow(ctx, "spent", lim).Allowed {
				t.Fatal("the other gateway was refused its first call")
			}
			if d := l.Allow(ctx, "fresh", lim); !d.Allowed {
				t.Errorf("a fresh key was refused after Redis came back: %+v", d)
			}
			if d := l.Allow(ctx, "spent", lim); d.Allowed {
				t.Error("a key spent in Redis was allowed: the limiter is not asking Redis")
			}
		})
	}
}
