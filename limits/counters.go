package limits

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Usage is one day's use of a project or an owner.
type Usage struct {
	Requests int64 `json:"requests"`
	Bytes    int64 `json:"bytes"`
}

func (u Usage) plus(v Usage) Usage { return Usage{u.Requests + v.Requests, u.Bytes + v.Bytes} }

// CounterBackend stores daily totals: Redis for several gateways, the
// bbolt file for one.
type CounterBackend interface {
	// Add adds each delta to its day's total and returns the totals
	// after adding (a zero delta reads the total), all or nothing.
	Add(ctx context.Context, deltas []Delta) ([]Usage, error)
	// Close releases what the backend holds (not a caller-owned client).
	Close() error
}

// Delta is use to add to one day's total of one scope and id.
type Delta struct {
	Day   string // Days.Key
	Scope string // ScopeProject or ScopeOwner
	ID    string
	Usage Usage
	// ResetAt is when the day ends, for expiries.
	ResetAt time.Time
}

// CountersOptions tune Counters.
type CountersOptions struct {
	// Days sets the day boundary; the zero value is UTC.
	Days Days
	// FlushInterval is how often counts go to the backend and totals
	// come back (other gateways' counts with them). Default 200ms.
	FlushInterval time.Duration
	// IdleAfter forgets a counter not used for this long once flushed.
	// Default 10 minutes.
	IdleAfter time.Duration
	// Timeout bounds one flush. Default 2s.
	Timeout time.Duration
	Clock   Clock
	// Logger reports backend outages, one line each way.
	Logger *zap.Logger
}

// Counters count requests and response bytes per day, per project and
// per owner. Counting is a memory operation; a goroutine adds the counts
// to the backend every FlushInterval and learns the totals, which
// include other gateways' counts. Until a flush a gateway sees its own
// counts at once and the others' up to one interval late: a daily limit
// may be overshot by what all gateways admit in one interval.
//
// When the backend fails, counts stay in memory and are added when it
// is back (catch-up): nothing is lost unless the process ends while the
// backend is down. One line is logged when an outage starts and one when
// it ends. A flush that fails after Redis applied part of it is added
// again later: an outage may count a little twice, never less.
type Counters struct {
	backend CounterBackend
	opts    CountersOptions
	log     *zap.Logger

	mu      sync.Mutex
	entries map[counterKey]*counter
	down    bool
	// day caches today's key and bounds: formatting a date on every call
	// would cost more than the counting.
	day                  string
	dayStart, dayResetAt time.Time
	// dayN counts the changes of day, so a tally knows its entry is of
	// today without comparing keys.
	dayN uint64

	cancel context.CancelFunc
	done   chan struct{}
	// flushMu makes flushes one at a time (the loop, Flush, Close).
	flushMu sync.Mutex
	// pruned is the day whose start last pruned the backend (a Pruner);
	// guarded by flushMu.
	pruned string
}

type counterKey struct {
	day, scope, id string
}

type counter struct {
	base     Usage // the backend's total at the last flush
	inflight Usage // sent in the flush under way
	pending  Usage // counted since
	resetAt  time.Time
	lastUsed time.Time
	// dead is set when Flush forgets the entry: a tally holding it looks
	// it up again.
	dead bool
}

// tally is one scope and id's counter as a caller keeps it between
// calls: the entry found last and the day it is of, so a call does no map
// lookup. Its fields are guarded by Counters.mu.
type tally struct {
	scope, id string
	e         *counter
	dayN      uint64
}

// entry is t's counter of now's day, created if need be; c.mu is held.
func (c *Counters) entry(t *tally, now time.Time) *counter {
	day, reset := c.today(now)
	if e := t.e; e != nil && !e.dead && t.dayN == c.dayN {
		return e
	}
	k := counterKey{day, t.scope, t.id}
	e := c.entries[k]
	if e == nil {
		e = &counter{resetAt: reset}
		c.entries[k] = e
	}
	t.e, t.dayN = e, c.dayN
	return e
}

func (c *counter) total() Usage { return c.base.plus(c.inflight).plus(c.pending) }

// NewCounters starts counting into backend. Close stops the flushing
// goroutine after a last flush.
func NewCounters(backend CounterBackend, opts CountersOptions) *Counters {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 200 * time.Millisecond
	}
	if opts.IdleAfter <= 0 {
		opts.IdleAfter = 10 * time.Minute
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Counters{backend: backend, opts: opts, log: opts.Logger,
		entries: make(map[counterKey]*counter), cancel: cancel, done: make(chan struct{})}
	if l, ok := backend.(Loader); ok {
		now := opts.Clock.now()
		day := opts.Days.Key(now)
		yesterday := opts.Days.Key(opts.Days.Start(now).Add(-time.Hour))
		loaded, err := l.Load(day, yesterday)
		if err != nil {
			opts.Logger.Error("daily counters: loading today's counts", zap.Error(err))
		}
		for _, d := range loaded {
			c.entries[counterKey{d.Day, d.Scope, d.ID}] = &counter{base: d.Usage, resetAt: opts.Days.ResetAt(now), lastUsed: now}
		}
	}
	if _, ok := backend.(Loader); ok {
		c.pruned = opts.Days.Key(opts.Clock.now()) // Load pruned
	}
	go c.loop(ctx)
	return c
}

// Days is the day boundary used.
func (c *Counters) Days() Days { return c.opts.Days }

// ResetAt is when today's counts start again.
func (c *Counters) ResetAt(now time.Time) time.Time { return c.opts.Days.ResetAt(now) }

// today returns the key and end of now's day; c.mu is held.
func (c *Counters) today(now time.Time) (string, time.Time) {
	if c.day == "" || now.Before(c.dayStart) || !now.Before(c.dayResetAt) {
		day := c.opts.Days.Key(now)
		if day != c.day {
			c.dayN++
		}
		c.day, c.dayStart, c.dayResetAt = day, c.opts.Days.Start(now), c.opts.Days.ResetAt(now)
	}
	return c.day, c.dayResetAt
}

// Add counts use for scope and id today and returns today's total with
// it. It does no I/O.
func (c *Counters) Add(scope, id string, u Usage) Usage {
	return c.addAt(c.opts.Clock.now(), scope, id, u)
}

// addAt is Add at now, read from the counters' clock by the caller: a
// call that counts several things reads the clock once (time.Now is not
// cheap on every virtual machine).
func (c *Counters) addAt(now time.Time, scope, id string, u Usage) Usage {
	t := tally{scope: scope, id: id}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.add(&t, now, u)
}

// add counts u on t at now and returns the total; c.mu is held.
func (c *Counters) add(t *tally, now time.Time, u Usage) Usage {
	e := c.entry(t, now)
	e.pending = e.pending.plus(u)
	e.lastUsed = now
	return e.total()
}

// Used is today's total for scope and id as this gateway knows it (at
// most one flush behind the others).
func (c *Counters) Used(scope, id string) Usage {
	return c.usedAt(c.opts.Clock.now(), scope, id)
}

// usedAt is Used at now (see addAt).
func (c *Counters) usedAt(now time.Time, scope, id string) Usage {
	t := tally{scope: scope, id: id}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used(&t, now)
}

// used is t's total at now; an entry it creates is learnt at the next
// flush. c.mu is held.
func (c *Counters) used(t *tally, now time.Time) Usage {
	e := c.entry(t, now)
	e.lastUsed = now
	return e.total()
}

// Fetch reads today's total from the backend (with what is not flushed
// yet), for a usage report.
func (c *Counters) Fetch(ctx context.Context, scope, id string) (Usage, error) {
	now := c.opts.Clock.now()
	day := c.opts.Days.Key(now)
	tot, err := c.backend.Add(ctx, []Delta{{Day: day, Scope: scope, ID: id, ResetAt: c.opts.Days.ResetAt(now)}})
	if err != nil {
		return c.Used(scope, id), err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := counterKey{day, scope, id}
	if e := c.entries[k]; e != nil {
		return tot[0].plus(e.inflight).plus(e.pending), nil
	}
	return tot[0], nil
}

func (c *Counters) loop(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(c.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = c.Flush(ctx)
		}
	}
}

// Flush adds what was counted to the backend and learns the totals.
func (c *Counters) Flush(ctx context.Context) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	now := c.opts.Clock.now()
	today := c.opts.Days.Key(now)
	if p, ok := c.backend.(Pruner); ok && c.pruned != today {
		// Once a day, so a long-running gateway's file stops growing.
		c.pruned = today
		yesterday := c.opts.Days.Key(c.opts.Days.Start(now).Add(-time.Hour))
		if err := p.Prune(yesterday); err != nil {
			c.log.Error("daily counters: pruning old days", zap.Error(err))
		}
	}

	c.mu.Lock()
	var keys []counterKey
	var deltas []Delta
	for k, e := range c.entries {
		idle := now.Sub(e.lastUsed) > c.opts.IdleAfter
		if e.pending == (Usage{}) && (k.day != today || idle) {
			delete(c.entries, k) // nothing to say, and no one asking
			e.dead = true
			continue
		}
		e.inflight, e.pending = e.pending, Usage{}
		keys = append(keys, k)
		deltas = append(deltas, Delta{Day: k.day, Scope: k.scope, ID: k.id, Usage: e.inflight, ResetAt: e.resetAt})
	}
	c.mu.Unlock()
	if len(deltas) == 0 {
		return nil
	}

	fctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	totals, err := c.backend.Add(fctx, deltas)
	cancel()

	c.mu.Lock()
	wasDown := c.down
	c.down = err != nil
	for i, k := range keys {
		e := c.entries[k]
		if e == nil {
			continue // cannot happen: only Flush deletes
		}
		if err != nil {
			e.pending = e.pending.plus(e.inflight) // catch up later
		} else {
			e.base = totals[i]
		}
		e.inflight = Usage{}
	}
	c.mu.Unlock()
	switch {
	case err != nil && !wasDown && ctx.Err() == nil:
		c.log.Warn("daily counters: store unavailable; counting in memory until it is back", zap.Error(err))
	case err == nil && wasDown:
		c.log.Info("daily counters: store available again; counts made meanwhile added")
	}
	return err
}

// Healthy reports whether the last flush worked: false during an outage.
func (c *Counters) Healthy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.down
}

// Close stops the flushing goroutine, flushes one last time and closes
// the backend.
func (c *Counters) Close() error {
	c.cancel()
	<-c.done
	err := c.Flush(context.Background())
	if cerr := c.backend.Close(); err == nil {
		err = cerr
	}
	return err
}
