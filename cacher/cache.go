package cacher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/elara-gateway/elara/suber"
)

// Upstream is what a Cache needs from a chain's nodes.
type Upstream interface {
	Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)
	Subscribe(ctx context.Context, method string, params json.RawMessage, unsubMethod string, sink suber.Sink) (Subscription, error)
}

// NodeReporter is an Upstream that also says which node answered a
// call, for the per-call hook (CallInfo.Node).
type NodeReporter interface {
	CallFrom(ctx context.Context, method string, params json.RawMessage) (result json.RawMessage, node string, err error)
}

// Served says how a call was answered: from the cache, or by which node
// (empty when the upstream does not say, or for a runtime constant's
// miss, which may try several nodes).
type Served struct {
	Hit  bool
	Node string
}

// Subscription is an open upstream subscription.
type Subscription interface {
	Unsubscribe(ctx context.Context) (json.RawMessage, error)
}

// Pin chooses the head that calls without a block hash are pinned to.
type Pin uint8

const (
	// PinBest pins to the best block: answers match what a node says.
	PinBest Pin = iota
	// PinFinalized pins to the finalized block: answers never come from a
	// block that may be reverted, but lag the best block by a few blocks.
	PinFinalized
)

// Defaults of the cache's timing.
const (
	DefaultRefresh     = 5 * time.Second
	DefaultCallTimeout = 10 * time.Second
	DefaultPinnedTTL   = time.Minute
	// staleRefreshes is how many refresh periods a latest entry may go
	// without refresh before calls bypass it (the original Elara's rule).
	staleRefreshes = 3
)

// Options configure a Cache.
type Options struct {
	// Name is the chain's name; it starts every key and labels metrics.
	Name     string
	Upstream Upstream
	Store    Store
	Rules    *Rules
	Pin      Pin
	// Refresh is the suducer's period for what subscriptions leave quiet
	// (everything, when subscriptions are unavailable). Default 5s.
	Refresh time.Duration
	// MaxStale bounds the age of a latest answer or of the head a call is
	// pinned to. Default and maximum: 3 refresh periods.
	MaxStale time.Duration
	// PinnedTTL bounds the life of entries filled for calls pinned to the
	// head (and of the suducer's copies of each new head's header and
	// block): once the head moves on few ask for them again, and a shared
	// Redis should not keep one set per block for a day. Default 1m.
	PinnedTTL time.Duration
	// CallTimeout bounds the cache's own upstream calls, and the shared
	// call behind concurrent misses. Default 10s.
	CallTimeout time.Duration
	Clock       Clock
	Logger      *zap.Logger
	Metrics     *Metrics
}

// Cache answers one chain's calls from a Store and the suducer's latest
// entries, and runs the suducer that keeps them fresh.
type Cache struct {
	opts       Options
	up         Upstream
	reporter   NodeReporter // up, when it says which node answered
	store      Store
	rules      *Rules
	clock      Clock
	log        *zap.Logger
	metrics    *Metrics
	staleAfter time.Duration

	life       context.Context
	lifeCancel context.CancelFunc
	flight     flight

	mu sync.RWMutex
	id string // chainID once the genesis hash is known
	// spec is the runtime spec version once known, specN its value. It
	// only goes up (see raiseSpecLocked): a node behind the others may
	// still run the old runtime after a notification announced the new.
	spec  string
	specN uint64
	// anchor is a block known to run spec's runtime: runtime constants
	// are fetched at it, never from whatever a node's best block is.
	anchor runtimeAnchor
	// constSpec and constAt: the spec version whose constants the suducer
	// last fetched, and when.
	constSpec string
	constAt   time.Time
	// constRetry is non-zero while the last fetch of the constants lost
	// calls for want of a node (after a reconnect the calls may race the
	// connections coming back): the wait before the next attempt,
	// doubling; attempts stop before it reaches the refresh period.
	// constRetryTimer is set while an attempt waits.
	constRetry      time.Duration
	constRetryTimer bool
	best            head
	final           head
	latest          map[string]latestEntry
	closed          bool
	runMu           sync.Mutex
	running         int
	stop            context.CancelFunc
	wg              sync.WaitGroup

	kick    chan struct{}
	pending atomic.Uint32
	// seenBest and seenFinal are the newest head numbers clients have been
	// told of (see ObserveHead).
	seenBest, seenFinal atomic.Uint64
	busy                atomic.Bool // the loop is working; lets tests wait for quiet
	subscribed          [len(follows)]atomic.Bool
}

type head struct {
	hash   string
	number uint64
	at     time.Time // when the suducer last confirmed it; zero: unknown
}

type latestEntry struct {
	value json.RawMessage
	at    time.Time
}

// New returns a cache for one chain. Its suducer runs between Start and
// Stop; Close ends it for good.
func New(opts Options) (*Cache, error) {
	if opts.Upstream == nil || opts.Store == nil || opts.Rules == nil {
		return nil, fmt.Errorf("cache %s: upstream, store and rules are required", opts.Name)
	}
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultRefresh
	}
	if opts.MaxStale <= 0 || opts.MaxStale > staleRefreshes*opts.Refresh {
		opts.MaxStale = staleRefreshes * opts.Refresh
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.PinnedTTL <= 0 {
		opts.PinnedTTL = DefaultPinnedTTL
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	life, cancel := context.WithCancel(context.Background())
	c := &Cache{
		opts:       opts,
		up:         opts.Upstream,
		store:      opts.Store,
		rules:      opts.Rules,
		clock:      opts.Clock,
		log:        opts.Logger,
		metrics:    opts.Metrics,
		staleAfter: opts.MaxStale,
		life:       life,
		lifeCancel: cancel,
		latest:     make(map[string]latestEntry),
		kick:       make(chan struct{}, 1),
	}
	c.reporter, _ = opts.Upstream.(NodeReporter)
	c.flight.base = life
	return c, nil
}

// fresh reports whether something confirmed at t may still be served.
func (c *Cache) fresh(t time.Time) bool {
	return !t.IsZero() && c.clock.Now().Sub(t) < c.staleAfter
}

// Call answers one client call: from the cache when the method's rule
// allows and the entry is there and fresh, otherwise from a node (storing
// what may be stored). Store failures are misses; they never reach the
// caller.
func (c *Cache) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	v, _, err := c.Serve(ctx, method, params)
	return v, err
}

// Serve is Call that also says how the call was answered.
func (c *Cache) Serve(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, Served, error) {
	p := c.plan(method, params)
	switch p.kind {
	case planLatest:
		if v, ok := c.latestValue(p.latest); ok {
			c.metrics.hit(c.opts.Name, p.label, len(v))
			return v, Served{Hit: true}, nil
		}
		c.metrics.miss(c.opts.Name, p.label)
		return c.uncached(ctx, method, params)
	case planKeyed:
		return c.keyed(ctx, method, params, p)
	case planMiss:
		c.metrics.miss(c.opts.Name, p.label)
		return c.uncached(ctx, method, params)
	}
	return c.upCall(ctx, method, params)
}

// upCall is a call to a node on a client's behalf.
func (c *Cache) upCall(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, Served, error) {
	if c.reporter != nil {
		v, node, err := c.reporter.CallFrom(ctx, method, params)
		return v, Served{Node: node}, err
	}
	v, err := c.up.Call(ctx, method, params)
	return v, Served{}, err
}

// passFlightKey starts the flight keys of misses answered but not stored.
const passFlightKey = "\x00pass:"

// uncached answers a cacheable call that cannot be cached now (no fresh
// latest entry, head or runtime not known yet) from a node, once for all
// concurrent identical calls: after a stall every client asks at once.
func (c *Cache) uncached(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, Served, error) {
	// Callers told of different heads do not share a call: one told of
	// block N must not get an answer asked for before N.
	key := passFlightKey + strconv.FormatUint(c.seenBest.Load(), 10) + ":" + strconv.FormatUint(c.seenFinal.Load(), 10) +
		"\x00" + method + "\x00" + string(params)
	v, node, err := c.flight.do(ctx, key, c.opts.CallTimeout, func(fctx context.Context) (json.RawMessage, string, error) {
		v, s, err := c.upCall(fctx, method, params)
		return v, s.Node, err
	})
	if errors.Is(err, errClosed) {
		return c.upCall(ctx, method, params)
	}
	return v, Served{Node: node}, err
}

func (c *Cache) keyed(ctx context.Context, method string, params json.RawMessage, p plan) (json.RawMessage, Served, error) {
	if v, err := c.store.Get(ctx, p.key); err == nil {
		c.metrics.hit(c.opts.Name, p.label, len(v))
		return v, Served{Hit: true}, nil
	}
	c.metrics.miss(c.opts.Name, p.label)
	var v json.RawMessage
	var node string
	var err error
	if p.runtime != "" {
		v, node, err = c.fillRuntime(ctx, method, p)
	} else {
		v, node, err = c.fill(ctx, method, p)
	}
	switch {
	case err == nil:
	case errors.Is(err, errClosed):
		// The cache is closing (a config reload): a node answers.
		return c.upCall(ctx, method, params)
	case p.runtime != "" && (errors.Is(err, errNoAnchor) || unknownBlock(err)):
		// No node could name a block of the runtime, or none knows it
		// any more: the node's answer, stored nowhere.
		return c.upCall(ctx, method, params)
	case p.pinned && unknownBlock(err):
		// A node behind the others may not know the pinned head yet; the
		// client asked for "latest", which that node can still answer.
		return c.upCall(ctx, method, params)
	}
	return v, Served{Node: node}, err
}

// unknownBlock reports whether err is a node's "unknown block" answer:
// Substrate's client error (4003) naming the block.
func unknownBlock(err error) bool {
	e, ok := suber.IsUpstreamError(err)
	return ok && (e.Code == codeClientError || strings.Contains(e.Message, "UnknownBlock"))
}

// codeClientError is Substrate's state RPC error code for client errors
// such as an unknown block.
const codeClientError = 4003

// fill makes the upstream call behind a miss, once for all concurrent
// identical misses, and stores a cacheable result.
func (c *Cache) fill(ctx context.Context, method string, p plan) (json.RawMessage, string, error) {
	return c.flight.do(ctx, p.key, c.opts.CallTimeout, func(fctx context.Context) (json.RawMessage, string, error) {
		return c.fetch(fctx, method, p)
	})
}

// fetch makes one upstream call for p and stores a cacheable result. A
// store error is a miss for the next caller, nothing more.
func (c *Cache) fetch(ctx context.Context, method string, p plan) (json.RawMessage, string, error) {
	v, s, err := c.upCall(ctx, method, p.upParams)
	if err == nil && cacheable(v) {
		_ = c.store.Set(ctx, p.key, v, SetOptions{TTL: p.ttl, Chain: c.opts.Name, Method: p.label, Share: c.rules.Share(method)})
	}
	return v, s.Node, err
}

// cacheable excludes null: the data may appear later (a block not yet
// imported, a storage key not yet set).
func cacheable(v json.RawMessage) bool {
	return len(v) > 0 && string(v) != "null"
}

func (c *Cache) latestValue(name string) (json.RawMessage, bool) {
	c.mu.RLock()
	e, ok := c.latest[name]
	best, final := c.best.number, c.final.number
	c.mu.RUnlock()
	if !ok || !c.fresh(e.at) {
		return nil, false
	}
	switch name {
	case "chain_getHeader", "chain_getBlock", "chain_getBlockHash":
		if c.behind(best, false) {
			return nil, false
		}
	case "chain_getFinalizedHead":
		if c.behind(final, true) {
			return nil, false
		}
	}
	return e.value, true
}

// ObserveHead is told of every head the gateway sends its clients. A
// client that hears of block N and asks for the latest state at once must
// not get block N-1's from the cache: until the suducer has caught up,
// latest and pinned calls go to a node.
func (c *Cache) ObserveHead(number uint64, finalized bool) {
	seen, ev := &c.seenBest, uint32(evBest)
	if finalized {
		seen, ev = &c.seenFinal, evFinalized
	}
	for {
		old := seen.Load()
		if number <= old {
			return
		}
		if seen.CompareAndSwap(old, number) {
			break
		}
	}
	c.signal(ev)
}

// behind reports whether clients were told of a newer head than known.
func (c *Cache) behind(known uint64, finalized bool) bool {
	if finalized {
		return c.seenFinal.Load() > known
	}
	return c.seenBest.Load() > known
}

// setLatest replaces a latest entry. Called with c.mu held.
func (c *Cache) setLatestLocked(name string, v json.RawMessage, at time.Time) {
	old, had := c.latest[name]
	c.latest[name] = latestEntry{value: v, at: at}
	if had {
		c.metrics.stored(c.opts.Name, name, 0, int64(len(v)-len(old.value)))
	} else {
		c.metrics.stored(c.opts.Name, name, 1, int64(len(v)))
	}
}

// dropLatestLocked forgets a latest entry. Called with c.mu held.
func (c *Cache) dropLatestLocked(name string) {
	if old, had := c.latest[name]; had {
		delete(c.latest, name)
		c.metrics.stored(c.opts.Name, name, -1, -int64(len(old.value)))
	}
}

// Head describes what the suducer knows of the chain, for tests and
// diagnostics.
type Head struct {
	Best, Finalized       uint64
	BestHash, FinalHash   string
	SpecVersion, Genesis  string
	BestFresh, FinalFresh bool
}

// Head returns the suducer's view of the chain.
func (c *Cache) Head() Head {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return Head{
		Best: c.best.number, BestHash: c.best.hash, BestFresh: c.fresh(c.best.at),
		Finalized: c.final.number, FinalHash: c.final.hash, FinalFresh: c.fresh(c.final.at),
		SpecVersion: c.spec, Genesis: c.id,
	}
}

// Start runs the suducer. Every Start needs a Stop; the loops run while
// at least one Start is not matched, so a config reload (new Start before
// old Stop) keeps them running.
func (c *Cache) Start() {
	c.runMu.Lock()
	defer c.runMu.Unlock()
	c.running++
	if c.running > 1 || c.life.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(c.life)
	c.stop = cancel
	c.wg.Add(1 + len(follows))
	go c.run(ctx)
	for i := range follows {
		go c.follow(ctx, i)
	}
}

// Stop matches one Start; the last one stops the loops and waits for
// them to return.
func (c *Cache) Stop() {
	c.runMu.Lock()
	defer c.runMu.Unlock()
	if c.running == 0 {
		return
	}
	c.running--
	if c.running > 0 {
		return
	}
	c.stop()
	c.wg.Wait()
}

// Close stops the suducer whatever the Starts, ends the calls it shares
// between clients, and forgets the latest entries. It does not close the
// store, which may serve other chains.
func (c *Cache) Close() error {
	c.runMu.Lock()
	if c.running > 0 {
		c.running = 0
		c.stop()
		c.wg.Wait()
	}
	c.runMu.Unlock()
	c.lifeCancel()
	c.flight.close()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		for name := range c.latest {
			c.dropLatestLocked(name)
		}
	}
	return nil
}
