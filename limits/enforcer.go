package limits

import (
	"context"
	"errors"
	"time"
)

// Rater limits calls per second per key.
type Rater interface {
	Allow(ctx context.Context, key string, lim Limits) Decision
}

// Local makes an in-memory RateLimiter a Rater.
func Local(r *RateLimiter) Rater { return localRater{r} }

type localRater struct{ r *RateLimiter }

func (l localRater) Allow(_ context.Context, key string, lim Limits) Decision {
	return l.r.Allow(key, lim)
}

// ErrUnavailable is returned by Admit when the shared store is down and
// the enforcer fails closed.
var ErrUnavailable = errors.New("limits are unavailable")

// Subject is who makes a call: a project (with its owner), or for
// public access a client IP; and the limits that apply.
type Subject struct {
	// Project is the project id; empty for public access.
	Project string
	// Owner is the project's owner; empty skips owner caps.
	Owner string
	// IP is the client IP, the key of public access.
	IP string
	// Limits are the plan's limits with the project's overrides.
	Limits Limits
	// OwnerRequestsPerDay and OwnerBytesPerDay are the plan's caps on
	// the owner's projects together; zero means none.
	OwnerRequestsPerDay, OwnerBytesPerDay int64
}

func (s Subject) scope() (string, string) {
	if s.Project != "" {
		return ScopeProject, s.Project
	}
	return ScopeIP, s.IP
}

// Enforcer checks and counts calls. Its methods do no I/O unless the
// Rater is shared, and then only once per lease.
type Enforcer struct {
	rate     Rater
	counters *Counters
	// FailClosed refuses calls (ErrUnavailable) while the daily counters
	// cannot reach their store; by default calls go on against the
	// counts known in memory.
	FailClosed bool
	// Clock defaults to the counters' clock.
	Clock Clock
}

// NewEnforcer checks rates with rate and days with counters.
func NewEnforcer(rate Rater, counters *Counters) *Enforcer {
	return &Enforcer{rate: rate, counters: counters}
}

// Admit decides whether one call of s may go on, and counts it if so.
// It refuses with an *Exceeded (daily limits first: a project over its
// day is refused even when its rate allows) or ErrUnavailable. A daily
// refusal of a project is the moment to suspend it until ResetAt.
func (e *Enforcer) Admit(ctx context.Context, s Subject) (*Exceeded, error) {
	h := Handle{s: s}
	h.init()
	return e.admit(ctx, &h)
}

// AdmitHandle is Admit for a subject resolved once (Handle): the call
// finds its counters without a map lookup.
func (e *Enforcer) AdmitHandle(ctx context.Context, h *Handle) (*Exceeded, error) {
	return e.admit(ctx, h)
}

func (e *Enforcer) admit(ctx context.Context, h *Handle) (*Exceeded, error) {
	if e.FailClosed && !e.counters.Healthy() {
		return nil, ErrUnavailable
	}
	s := &h.s
	now := e.now()
	cnow := e.countersNow(now)
	scope := h.self.scope
	withOwner := h.owner.id != ""
	checkSelf := s.Limits.RequestsPerDay > 0 || s.Limits.BytesPerDay > 0
	checkOwner := withOwner && (s.OwnerRequestsPerDay > 0 || s.OwnerBytesPerDay > 0)
	// The day's checks and the count are one step under the counters'
	// lock, so concurrent calls cannot all pass a limit they reach
	// together; a call the rate then refuses is uncounted again.
	c := e.counters
	c.mu.Lock()
	if checkSelf || checkOwner {
		var su, ou Usage
		if checkSelf {
			su = c.used(&h.self, cnow)
		}
		if checkOwner {
			ou = c.used(&h.owner, cnow)
		}
		x := e.daily(now, scope, s.Limits.RequestsPerDay, s.Limits.BytesPerDay, su)
		if x == nil {
			x = e.daily(now, ScopeOwner, s.OwnerRequestsPerDay, s.OwnerBytesPerDay, ou)
		}
		if x != nil {
			c.mu.Unlock()
			return x, nil
		}
	}
	c.add(&h.self, cnow, Usage{Requests: 1})
	if withOwner {
		c.add(&h.owner, cnow, Usage{Requests: 1})
	}
	c.mu.Unlock()
	if d := e.allowHandle(ctx, h, now); !d.Allowed {
		c.mu.Lock()
		c.add(&h.self, cnow, Usage{Requests: -1})
		if withOwner {
			c.add(&h.owner, cnow, Usage{Requests: -1})
		}
		c.mu.Unlock()
		return &Exceeded{Limit: RequestsPerSecond, Scope: scope, Value: s.Limits.RequestsPerSecond, RetryAfter: d.RetryAfter}, nil
	}
	return nil, nil
}

// daily is the daily limit (reqs, bytes; zero is none) that u, scope's
// use of today, has reached, or nil.
func (e *Enforcer) daily(now time.Time, scope string, reqs, bytes int64, u Usage) *Exceeded {
	limit, value, used := "", int64(0), int64(0)
	switch {
	case reqs > 0 && u.Requests >= reqs:
		limit, value, used = RequestsPerDay, reqs, u.Requests
	case bytes > 0 && u.Bytes >= bytes:
		limit, value, used = BytesPerDay, bytes, u.Bytes
	default:
		return nil
	}
	if scope == ScopeOwner {
		limit = "owner_" + limit
	}
	reset := e.counters.ResetAt(now)
	return &Exceeded{Limit: limit, Scope: scope, Value: float64(value), Used: used, ResetAt: reset, RetryAfter: reset.Sub(now)}
}

// allow asks the rater for one call of scope:id. An in-memory limiter
// whose clock is the real one, as the enforcer's is, takes now instead of
// reading the clock again (a clock reading is not cheap on every virtual
// machine) and the key in its two parts; other raters get the joined key.
func (e *Enforcer) allow(ctx context.Context, scope, id string, lim Limits, now time.Time) Decision {
	if l, ok := e.rate.(localRater); ok && l.r.clock == nil && e.Clock == nil && e.counters.opts.Clock == nil {
		return l.r.allowScoped(scope, id, lim, now)
	}
	return e.rate.Allow(ctx, scope+":"+id, lim)
}

// allowHandle is allow for h's subject, with the GCRA's parameters the
// handle computed once.
func (e *Enforcer) allowHandle(ctx context.Context, h *Handle, now time.Time) Decision {
	if l, ok := e.rate.(localRater); ok && l.r.clock == nil && e.Clock == nil && e.counters.opts.Clock == nil {
		if h.s.Limits.RequestsPerSecond <= 0 {
			return Decision{Allowed: true}
		}
		return l.r.allowAt(rateKey{h.self.scope, h.self.id}, h.interval, h.tolerance, 1, now.UnixNano())
	}
	return e.allow(ctx, h.self.scope, h.self.id, h.s.Limits, now)
}

// countersNow is the counters' time for a call admitted at now: the same
// reading when the enforcer has no clock of its own.
func (e *Enforcer) countersNow(now time.Time) time.Time {
	if e.Clock != nil {
		return e.counters.opts.Clock.now()
	}
	return now
}

func (e *Enforcer) now() time.Time {
	if e.Clock != nil {
		return e.Clock()
	}
	return e.counters.opts.Clock.now()
}

// AddBytes counts response bytes (answers and notifications) sent to s.
// It returns the daily bytes limit s is over, if any: a client that only
// receives notifications makes no call to refuse, so the caller acts. A
// project's limit is returned once, when these bytes reach it (the caller
// suspends the project, which closes all its connections); a client IP's
// or an owner's cap with every addition at or over it (the caller closes
// the connection that sent them, so each of the subject's connections is
// closed by its next frame).
func (e *Enforcer) AddBytes(s Subject, n int64) *Exceeded {
	h := Handle{s: s}
	h.init()
	return e.addBytes(&h, n)
}

// AddBytesHandle is AddBytes for a subject resolved once (Handle).
func (e *Enforcer) AddBytesHandle(h *Handle, n int64) *Exceeded {
	return e.addBytes(h, n)
}

func (e *Enforcer) addBytes(h *Handle, n int64) *Exceeded {
	s := &h.s
	scope := h.self.scope
	withOwner := h.owner.id != ""
	now := e.counters.opts.Clock.now()
	var tot, ot Usage
	c := e.counters
	c.mu.Lock()
	tot = c.add(&h.self, now, Usage{Bytes: n})
	if withOwner {
		ot = c.add(&h.owner, now, Usage{Bytes: n})
	}
	c.mu.Unlock()
	var x *Exceeded
	if lim := s.Limits.BytesPerDay; lim > 0 && tot.Bytes >= lim && (scope != ScopeProject || tot.Bytes-n < lim) {
		x = e.overBytes(BytesPerDay, scope, lim, tot.Bytes)
	}
	if lim := s.OwnerBytesPerDay; withOwner && x == nil && lim > 0 && ot.Bytes >= lim {
		x = e.overBytes(OwnerBytesPerDay, ScopeOwner, lim, ot.Bytes)
	}
	return x
}

func (e *Enforcer) overBytes(limit, scope string, value, used int64) *Exceeded {
	now := e.now()
	reset := e.counters.ResetAt(now)
	return &Exceeded{Limit: limit, Scope: scope, Value: float64(value), Used: used, ResetAt: reset, RetryAfter: reset.Sub(now)}
}

// Report is a subject's use of today against its limits.
type Report struct {
	Project Usage     `json:"project"`
	Owner   *Usage    `json:"owner,omitempty"`
	Limits  Limits    `json:"limits"`
	ResetAt time.Time `json:"reset_at"`
}

// Usage reports today's use of s from the store (GET
// /elara/projects/{id}/usage).
func (e *Enforcer) Usage(ctx context.Context, s Subject) (Report, error) {
	scope, id := s.scope()
	r := Report{Limits: s.Limits, ResetAt: e.counters.ResetAt(e.now())}
	var err error
	if r.Project, err = e.counters.Fetch(ctx, scope, id); err != nil {
		return r, err
	}
	if s.Project != "" && s.Owner != "" {
		o, err := e.counters.Fetch(ctx, ScopeOwner, s.Owner)
		r.Owner = &o
		if err != nil {
			return r, err
		}
	}
	return r, nil
}
