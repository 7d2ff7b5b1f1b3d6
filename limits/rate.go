package limits

import (
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// DefaultMaxKeys bounds the keys a RateLimiter remembers.
const DefaultMaxKeys = 100_000

const rateShards = 32

// Decision is the answer of a rate limiter.
type Decision struct {
	Allowed bool
	// RetryAfter is how long until the call would be allowed; zero when
	// allowed.
	RetryAfter time.Duration
}

// RateLimiter limits calls per second per key (a project id or a client
// IP) in process memory with GCRA: a key may send Burst calls at once,
// then one every 1/rate seconds. Its state is one time per key; a key
// whose bucket is full again carries no information and is evicted, so
// memory stays bounded by the keys active within the last burst/rate
// seconds, and by MaxKeys in any case.
type RateLimiter struct {
	clock   Clock
	maxKeys int
	seed    maphash.Seed
	shards  [rateShards]rateShard
}

type rateShard struct {
	mu sync.Mutex
	// tat is each key's theoretical arrival time in Unix nanoseconds:
	// the key is refused while now < tat - burst*interval.
	tat map[string]int64
	ops int
}

// NewRateLimiter returns a limiter remembering at most maxKeys keys (0
// means DefaultMaxKeys); a nil clock is the real one.
func NewRateLimiter(maxKeys int, clock Clock) *RateLimiter {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	r := &RateLimiter{clock: clock, maxKeys: maxKeys, seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].tat = make(map[string]int64)
	}
	return r
}

// Allow takes one call for key under lim (RequestsPerSecond and burst);
// a zero rate always allows.
func (r *RateLimiter) Allow(key string, lim Limits) Decision {
	return r.AllowN(key, lim, 1)
}

// AllowN takes n calls at once, all or none.
func (r *RateLimiter) AllowN(key string, lim Limits, n int64) Decision {
	if lim.RequestsPerSecond <= 0 {
		return Decision{Allowed: true}
	}
	now := r.clock.now().UnixNano()
	interval, tolerance := gcraParams(lim)
	s := &r.shards[maphash.String(r.seed, key)%rateShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	tat, ok := s.tat[key]
	if !ok || tat < now {
		tat = now
	}
	newTat := tat + interval*n
	if allowAt := newTat - tolerance; allowAt > now {
		return Decision{RetryAfter: time.Duration(allowAt - now)}
	}
	if !ok {
		s.evict(now, r.maxKeys/rateShards)
	}
	s.tat[key] = newTat
	return Decision{Allowed: true}
}

// gcraParams returns the emission interval and the burst tolerance in
// nanoseconds. Both are clamped to what Limits.Validate allows, so limits
// that skipped it cannot overflow int64 (and allow or refuse everything).
func gcraParams(lim Limits) (interval, tolerance int64) {
	iv := math.Min(math.Max(1, float64(time.Second)/lim.RequestsPerSecond), float64(time.Second)/MinRequestsPerSecond)
	interval = int64(iv)
	// The slowest rate times the largest burst: about 31 years.
	tol := math.Min(iv*float64(lim.EffectiveBurst()), float64(time.Second)/MinRequestsPerSecond*MaxBurst)
	return interval, int64(tol)
}

// evict makes room for a new key: every so often, or when the shard is
// full, keys whose bucket is full again (tat ≤ now) are dropped; if the
// shard is still full, arbitrary keys go (they start again with a full
// burst, which errs on the side of the client).
func (s *rateShard) evict(now int64, limit int) {
	s.ops++
	if len(s.tat) < max(1, limit) && s.ops < 1024 {
		return
	}
	s.ops = 0
	for k, t := range s.tat {
		if t <= now {
			delete(s.tat, k)
		}
	}
	for k := range s.tat {
		if len(s.tat) < max(1, limit) {
			break
		}
		delete(s.tat, k)
	}
}

// Len is the number of keys remembered.
func (r *RateLimiter) Len() int {
	n := 0
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		n += len(s.tat)
		s.mu.Unlock()
	}
	return n
}
