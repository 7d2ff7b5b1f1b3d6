package suber

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
)

// ErrTooManyPending is a call refused because the chain already has as
// many calls waiting for or at its nodes as its pending bound allows.
var ErrTooManyPending = errors.New("too many calls pending upstream on this chain")

// Client names whom upstream calls are made for, so that the calls of
// many clients share a chain's nodes fairly. A handler attaches one to
// the context of each call (WithClient): one per WebSocket connection,
// one per HTTP request.
type Client struct {
	// IP groups the client's calls with those of its other connections:
	// the scheduler serves IPs in turn, then connections within an IP.
	IP string
	// MaxInFlight bounds this client's calls at the nodes at once; more
	// wait their turn (within their own deadline). 0: no bound.
	MaxInFlight int
}

type clientKey struct{}

// WithClient returns ctx carrying c, whose calls Group schedules fairly.
func WithClient(ctx context.Context, c *Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientFrom returns the Client ctx carries, or nil.
func ClientFrom(ctx context.Context) *Client {
	c, _ := ctx.Value(clientKey{}).(*Client)
	return c
}

// SchedulerLimits bound a chain's upstream calls.
type SchedulerLimits struct {
	// InFlight is the most client calls at the chain's nodes at once;
	// further calls queue and are admitted round-robin over client IPs,
	// then over each IP's connections. 0: no bound (calls are still
	// counted, and per-client bounds still apply).
	InFlight int
	// Pending is the most client calls queued or in flight at once; a
	// call over it fails with ErrTooManyPending and reaches no node.
	// 0: no bound.
	Pending int
}

// Scheduler admits a chain's upstream calls. Calls of a client under its
// own bound go straight through while the chain is under its in-flight
// bound; otherwise they queue per client and are served in turn, so a
// client with hundreds of calls waiting delays another by at most one
// call of each busy client, not by all of its own. Calls made for no
// client (the gateway's own: health, caches, shared subscriptions) are
// never queued.
type Scheduler struct {
	mu       sync.Mutex
	lim      SchedulerLimits
	inflight int // client calls at the nodes
	waiting  int // client calls queued
	ips      map[string]*ipQueue
	// ring holds the IPs with a call that may be admitted, served in turn
	// from next.
	ring []*ipQueue
	next int
}

type ipQueue struct {
	key   string
	flows map[*Client]*flow
	ring  []*flow
	next  int
}

type flow struct {
	c        *Client
	inflight int
	waiters  []*waiter
	inRing   bool
}

type waiter struct {
	ready    chan struct{}
	admitted bool
}

// NewScheduler returns a scheduler with lim.
func NewScheduler(lim SchedulerLimits) *Scheduler {
	return &Scheduler{lim: lim, ips: make(map[string]*ipQueue)}
}

// SetLimits changes the bounds; calls already admitted stay.
func (s *Scheduler) SetLimits(lim SchedulerLimits) {
	s.mu.Lock()
	s.lim = lim
	s.admitLocked()
	s.mu.Unlock()
}

// Limits returns the bounds in force.
func (s *Scheduler) Limits() SchedulerLimits {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lim
}

// Stats reports the client calls at the nodes and queued.
func (s *Scheduler) Stats() (inflight, waiting int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight, s.waiting
}

// Acquire waits for the turn of a call made with ctx and returns the
// function that ends it. It fails with ctx's error when ctx ends first
// and with ErrTooManyPending when the chain's pending bound is reached.
func (s *Scheduler) Acquire(ctx context.Context) (release func(), err error) {
	c := ClientFrom(ctx)
	if c == nil {
		return func() {}, nil
	}
	s.mu.Lock()
	if s.lim.Pending > 0 && s.inflight+s.waiting >= s.lim.Pending {
		s.mu.Unlock()
		return nil, ErrTooManyPending
	}
	q := s.ips[c.IP]
	if q == nil {
		q = &ipQueue{key: c.IP, flows: make(map[*Client]*flow)}
		s.ips[c.IP] = q
	}
	f := q.flows[c]
	if f == nil {
		f = &flow{c: c}
		q.flows[c] = f
	}
	if len(f.waiters) == 0 && f.open() && (s.lim.InFlight <= 0 || s.inflight < s.lim.InFlight) {
		s.inflight++
		f.inflight++
		s.mu.Unlock()
		return s.releaser(q, f), nil
	}
	w := &waiter{ready: make(chan struct{})}
	f.waiters = append(f.waiters, w)
	s.waiting++
	s.enqueueLocked(q, f)
	s.admitLocked()
	s.mu.Unlock()

	select {
	case <-w.ready:
		return s.releaser(q, f), nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	if w.admitted {
		// Admitted as ctx ended: give the turn back.
		s.releaseLocked(q, f)
	} else {
		if i := slices.Index(f.waiters, w); i >= 0 {
			f.waiters = slices.Delete(f.waiters, i, i+1)
			s.waiting--
		}
		if len(f.waiters) == 0 {
			s.unringLocked(q, f)
		}
		s.forgetLocked(q, f)
	}
	s.mu.Unlock()
	return nil, ctx.Err()
}

// open reports whether the flow may have one more call at the nodes.
func (f *flow) open() bool { return f.c.MaxInFlight <= 0 || f.inflight < f.c.MaxInFlight }

// permit is one admitted call; release ends it once, however often it
// is called.
type permit struct {
	s    *Scheduler
	q    *ipQueue
	f    *flow
	done atomic.Bool
}

func (p *permit) release() {
	if p.done.Swap(true) {
		return
	}
	p.s.mu.Lock()
	p.s.releaseLocked(p.q, p.f)
	p.s.mu.Unlock()
}

func (s *Scheduler) releaser(q *ipQueue, f *flow) func() {
	return (&permit{s: s, q: q, f: f}).release
}

func (s *Scheduler) releaseLocked(q *ipQueue, f *flow) {
	s.inflight--
	f.inflight--
	if len(f.waiters) > 0 {
		s.enqueueLocked(q, f)
	}
	s.admitLocked()
	s.forgetLocked(q, f)
}

// enqueueLocked puts a flow with waiters under its bound in its IP's ring,
// and the IP in the scheduler's.
func (s *Scheduler) enqueueLocked(q *ipQueue, f *flow) {
	if f.inRing || !f.open() {
		return
	}
	f.inRing = true
	q.ring = append(q.ring, f)
	if len(q.ring) == 1 {
		s.ring = append(s.ring, q)
	}
}

// admitLocked admits queued calls while the chain is under its bound: the
// next IP in turn, its next connection in turn, that connection's oldest
// call.
func (s *Scheduler) admitLocked() {
	for len(s.ring) > 0 && (s.lim.InFlight <= 0 || s.inflight < s.lim.InFlight) {
		if s.next >= len(s.ring) {
			s.next = 0
		}
		qi := s.next
		q := s.ring[qi]
		if q.next >= len(q.ring) {
			q.next = 0
		}
		fi := q.next
		f := q.ring[fi]
		w := f.waiters[0]
		f.waiters[0] = nil
		f.waiters = f.waiters[1:]
		s.waiting--
		s.inflight++
		f.inflight++
		w.admitted = true
		close(w.ready)
		if len(f.waiters) == 0 || !f.open() {
			f.inRing = false
			q.ring = slices.Delete(q.ring, fi, fi+1)
		} else {
			q.next = fi + 1
		}
		if len(q.ring) == 0 {
			s.ring = slices.Delete(s.ring, qi, qi+1)
		} else {
			s.next = qi + 1
		}
	}
}

// forgetLocked drops the state of a flow (and IP) with nothing left.
func (s *Scheduler) forgetLocked(q *ipQueue, f *flow) {
	if f.inflight > 0 || len(f.waiters) > 0 {
		return
	}
	s.unringLocked(q, f)
	delete(q.flows, f.c)
	if len(q.flows) == 0 {
		delete(s.ips, q.key)
	}
}

// unringLocked takes a flow out of its IP's ring, and an IP left with none
// out of the scheduler's.
func (s *Scheduler) unringLocked(q *ipQueue, f *flow) {
	if !f.inRing {
		return
	}
	f.inRing = false
	if i := slices.Index(q.ring, f); i >= 0 {
		q.ring = slices.Delete(q.ring, i, i+1)
	}
	if len(q.ring) == 0 {
		if j := slices.Index(s.ring, q); j >= 0 {
			s.ring = slices.Delete(s.ring, j, j+1)
		}
	}
}

// Scheduler is the group's admission of client calls.
func (g *Group) Scheduler() *Scheduler { return g.sched }
