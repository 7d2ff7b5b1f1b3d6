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
	tat map[rateKey]gcraState
	ops int
	// latest is the latest clock reading the shard has seen (within
	// maxReadingInversion). Callers
	// read the clock before taking the lock, so two calls can arrive in
	// the other order; a reading older than latest counts as latest, or
	// the later call would find the earlier one's debt in its future
	// and be refused within its burst.
	latest int64
}

// maxReadingInversion is how far a reading may lag the shard's latest and
// count as read out of order; more is the wall clock stepping back.
const maxReadingInversion = int64(time.Second)

// rateKey is a key in two parts, so the enforcer's scope and id need no
// concatenation per call; Allow's keys have an empty scope.
type rateKey struct{ scope, id string }

// NewRateLimiter returns a limiter remembering at most maxKeys keys (0
// means DefaultMaxKeys); a nil clock is the real one.
func NewRateLimiter(maxKeys int, clock Clock) *RateLimiter {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	r := &RateLimiter{clock: clock, maxKeys: maxKeys, seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].tat = make(map[rateKey]gcraState)
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
	interval, tolerance := gcraParams(lim)
	return r.allowAt(rateKey{id: key}, interval, tolerance, n, r.clock.now().UnixNano())
}

// allowScoped is Allow for the key scope + ":" + id at now, a reading of
// the limiter's clock the caller made.
func (r *RateLimiter) allowScoped(scope, id string, lim Limits, now time.Time) Decision {
	if lim.RequestsPerSecond <= 0 {
		return Decision{Allowed: true}
	}
	interval, tolerance := gcraParams(lim)
	return r.allowAt(rateKey{scope, id}, interval, tolerance, 1, now.UnixNano())
}

// allowAt takes n calls for key at now, with the GCRA's parameters
// (gcraParams) of its limits.
func (r *RateLimiter) allowAt(key rateKey, interval, tolerance, n, now int64) Decision {
	s := &r.shards[maphash.String(r.seed, key.id)%rateShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if now < s.latest && s.latest-now < maxReadingInversion {
		now = s.latest
	} else {
		// Later, or a step of the wall clock back: taken as it is, or
		// every key would wait out the step.
		s.latest = now
	}
	st, ok := s.tat[key]
	tat := st.tat
	if ok && st.interval != interval && tat > now {
		// The limits changed (a plan edited, a reload): what the key
		// owes is a number of calls, which the new interval prices.
		tat = now + (tat-now)/st.interval*interval
	}
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
	s.tat[key] = gcraState{tat: newTat, interval: interval}
	return Decision{Allowed: true}
}

// gcraState is one key's theoretical arrival time and the emission
// interval it was computed with.
type gcraState struct {
	tat, interval int64
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
	for k, st := range s.tat {
		if st.tat <= now {
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
