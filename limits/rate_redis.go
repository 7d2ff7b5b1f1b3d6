package limits

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// SharedRateOptions tune a SharedRateLimiter.
type SharedRateOptions struct {
	// Prefix starts every key; "" means DefaultRedisPrefix.
	Prefix string
	// FailClosed refuses calls while Redis is down; by default each
	// gateway falls back to its own in-memory limit (fail open to local
	// limits).
	FailClosed bool
	// Lease is how much of the rate a gateway takes from Redis at once,
	// as time: 50ms takes rate/20 calls per round trip (at least 1).
	// Leased calls not used within 4 leases lapse. Default 50ms.
	Lease time.Duration
	// Timeout bounds one Redis call; a slow Redis is a down Redis.
	// Default 100ms.
	Timeout time.Duration
	// RetryAfter is how long a failed Redis is left alone before one
	// call probes it again. Default 1s.
	RetryAfter time.Duration
	// MaxKeys bounds the keys remembered. Default DefaultMaxKeys.
	MaxKeys int
	Clock   Clock
	// Logger reports an outage once when it starts and once when it ends.
	Logger *zap.Logger
}

// SharedRateLimiter is a per-second limit per key shared by every gateway
// on one Redis: a GCRA runs in Redis (Lua, on Redis's own clock), and each
// gateway takes a lease of several calls per round trip and spends them
// locally, so the combined rate holds across gateways (leases that lapse
// unused only ever lower it) while most calls cost no round trip. A
// refusal is remembered locally until its retry time.
type SharedRateLimiter struct {
	client redis.UniversalClient
	opts   SharedRateOptions
	local  *RateLimiter
	log    *zap.Logger

	mu   sync.Mutex
	keys map[string]*lease

	bmu       sync.Mutex
	down      bool
	downUntil time.Time
	probing   bool
}

type lease struct {
	mu          sync.Mutex
	tokens      int64
	expires     time.Time
	deniedUntil time.Time
}

// gcraScript takes up to ARGV[3] calls from the GCRA at KEYS[1]:
// ARGV[1] the interval and ARGV[2] the tolerance (interval × burst), in
// microseconds. Returns {taken, retry after in microseconds}.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tol = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
-- limits changed to a smaller tolerance: what was owed is capped by it
if tat > now + tol then tat = now + tol end
local avail = math.floor((now + tol - tat) / interval)
if avail <= 0 then
  return {0, math.ceil(tat + interval - tol - now)}
end
if avail < n then n = avail end
local newtat = tat + n * interval
redis.call('SET', KEYS[1], string.format('%.0f', newtat), 'PX', math.ceil((newtat - now) / 1000) + 1000)
return {n, 0}
`)

// NewSharedRateLimiter uses client, which the caller owns.
func NewSharedRateLimiter(client redis.UniversalClient, opts SharedRateOptions) *SharedRateLimiter {
	if opts.Prefix == "" {
		opts.Prefix = DefaultRedisPrefix
	}
	if opts.Lease <= 0 {
		opts.Lease = 50 * time.Millisecond
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 100 * time.Millisecond
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	return &SharedRateLimiter{client: client, opts: opts, log: opts.Logger,
		local: NewRateLimiter(opts.MaxKeys, opts.Clock), keys: make(map[string]*lease)}
}

// Allow takes one call for key under lim.
func (s *SharedRateLimiter) Allow(ctx context.Context, key string, lim Limits) Decision {
	if lim.RequestsPerSecond <= 0 {
		return Decision{Allowed: true}
	}
	now := s.opts.Clock.now()
	l := s.lease(key, now)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tokens > 0 && now.Before(l.expires) {
		l.tokens--
		return Decision{Allowed: true}
	}
	if now.Before(l.deniedUntil) {
		return Decision{RetryAfter: l.deniedUntil.Sub(now)}
	}
	ok, probe := s.mayCall(now)
	if !ok {
		return s.fallback(key, lim)
	}
	if probe {
		// A probe cut short (the client left) tells nothing: end it, so
		// the next call probes instead of Redis never being asked again.
		defer s.endProbe()
	}
	interval, tolerance := gcraParams(lim)
	want := max(1, int64(float64(s.opts.Lease)/float64(interval)))
	want = min(want, lim.EffectiveBurst())
	cctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	res, err := gcraScript.Run(cctx, s.client, []string{s.opts.Prefix + "rate:{" + key + "}"},
		interval/1000, tolerance/1000, want).Int64Slice()
	cancel()
	if err != nil || len(res) != 2 {
		if ctx.Err() == nil {
			s.failed(now, err)
		}
		return s.fallback(key, lim)
	}
	s.worked()
	if res[0] == 0 {
		retry := time.Duration(math.Max(1, float64(res[1]))) * time.Microsecond
		l.deniedUntil = now.Add(retry)
		return Decision{RetryAfter: retry}
	}
	l.tokens = res[0] - 1
	l.expires = now.Add(4 * s.opts.Lease)
	return Decision{Allowed: true}
}

func (s *SharedRateLimiter) fallback(key string, lim Limits) Decision {
	if s.opts.FailClosed {
		return Decision{RetryAfter: s.opts.RetryAfter}
	}
	return s.local.Allow(key, lim)
}

func (s *SharedRateLimiter) lease(key string, now time.Time) *lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.keys[key]
	if l == nil {
		if len(s.keys) >= s.opts.MaxKeys {
			for k, old := range s.keys {
				if old.mu.TryLock() {
					idle := !now.Before(old.expires) && !now.Before(old.deniedUntil)
					old.mu.Unlock()
					if idle {
						delete(s.keys, k)
					}
				}
			}
			// Still full: drop a tenth, so the next new keys do not each
			// pay for a scan. They start again with a fresh lease.
			for k := range s.keys {
				if len(s.keys) < s.opts.MaxKeys*9/10 {
					break
				}
				delete(s.keys, k)
			}
		}
		l = &lease{}
		s.keys[key] = l
	}
	return l
}

// mayCall is the breaker: after a failure Redis is left alone for
// RetryAfter, then one call probes it. probe says this call is that one;
// it must call endProbe when done.
func (s *SharedRateLimiter) mayCall(now time.Time) (ok, probe bool) {
	s.bmu.Lock()
	defer s.bmu.Unlock()
	if !s.down {
		return true, false
	}
	if s.probing || now.Before(s.downUntil) {
		return false, false
	}
	s.probing = true
	return true, true
}

// endProbe ends a probe whatever its outcome (failed and worked end it
// too).
func (s *SharedRateLimiter) endProbe() {
	s.bmu.Lock()
	s.probing = false
	s.bmu.Unlock()
}

func (s *SharedRateLimiter) failed(now time.Time, err error) {
	s.bmu.Lock()
	was := s.down
	s.down, s.probing, s.downUntil = true, false, now.Add(s.opts.RetryAfter)
	s.bmu.Unlock()
	if !was {
		mode := "each gateway limits on its own"
		if s.opts.FailClosed {
			mode = "refusing calls with a rate limit"
		}
		s.log.Warn("shared rate limits: Redis unavailable; "+mode+" until it is back", zap.Error(err))
	}
}

func (s *SharedRateLimiter) worked() {
	s.bmu.Lock()
	was := s.down
	s.down, s.probing = false, false
	s.bmu.Unlock()
	if was {
		s.log.Info("shared rate limits: Redis available again")
	}
}
