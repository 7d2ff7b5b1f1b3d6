package cacher

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/elara-gateway/elara/suber"
)

// The suducer keeps a chain's cache right: it follows new heads, finalized
// heads and runtime versions through upstream subscriptions, refreshes the
// latest entries on every new head, switches constants to the new spec
// version on a runtime upgrade and refreshes them after a reconnect. It
// polls only what no subscription reports (see quiet).

// Events the loop reacts to.
const (
	evBest         uint32 = 1 << iota // a new best head
	evFinalized                       // a new finalized head
	evRuntime                         // a runtime version notification: refresh constants
	evRuntimeCheck                    // no runtime subscription: check the version
	evReconnect                       // the runtime subscription was re-opened: refetch constants
)

type followSpec struct {
	method, unsub string
	event         uint32
}

// follows are the suducer's upstream subscriptions.
var follows = [...]followSpec{
	{"chain_subscribeNewHeads", "chain_unsubscribeNewHeads", evBest},
	{"chain_subscribeFinalizedHeads", "chain_unsubscribeFinalizedHeads", evFinalized},
	{"state_subscribeRuntimeVersion", "state_unsubscribeRuntimeVersion", evRuntime},
}

// constantMethods are fetched again after a runtime upgrade or a
// reconnect, so the first client after either finds them ready.
var constantMethods = []string{
	"state_getRuntimeVersion", "state_getMetadata", "rpc_methods",
	"system_name", "system_version", "system_chain", "system_chainType", "system_properties",
}

// Backoff between attempts to re-open a lost subscription.
const (
	followBackoffMin = 500 * time.Millisecond
	followBackoffMax = 30 * time.Second
)

func (c *Cache) signal(ev uint32) {
	c.pending.Or(ev)
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// run is the suducer's loop: it does the work events ask for, one piece at
// a time, and every refresh period it refreshes whatever went quiet.
func (c *Cache) run(ctx context.Context) {
	defer c.wg.Done()
	c.signal(evBest | evFinalized | evRuntimeCheck)
	tick := c.clock.After(c.opts.Refresh)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
			c.busy.Store(true)
			c.work(ctx, c.pending.Swap(0))
			c.busy.Store(false)
		case <-tick:
			tick = c.clock.After(c.opts.Refresh)
			c.busy.Store(true)
			c.work(ctx, c.quiet())
			c.busy.Store(false)
		}
	}
}

// quiet lists the refreshes a period without notifications calls for.
// A head followed by a working subscription is refreshed when it changes;
// it is polled only once the subscription has been silent for two refresh
// periods (a chain making no blocks, or a subscription that stopped
// delivering), which on a producing chain is never. A poll that finds the
// same head confirms the entries instead of fetching them again, and one
// that cannot reach a node leaves them to go stale after 3 periods.
func (c *Cache) quiet() uint32 {
	now := c.clock.Now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	due := func(sub int, h head) bool {
		limit := c.opts.Refresh
		if c.subscribed[sub].Load() {
			// Ticks come every period at any phase: polling past this age
			// confirms the entries before they go stale.
			limit = min(2*c.opts.Refresh, max(c.staleAfter-c.opts.Refresh, 0))
		}
		return h.at.IsZero() || now.Sub(h.at) >= limit
	}
	var ev uint32
	if due(0, c.best) {
		ev |= evBest
	}
	if due(1, c.final) {
		ev |= evFinalized
	}
	// Also while the constants of the known version wait for a block of
	// its runtime (see refreshRuntime).
	if !c.subscribed[2].Load() || c.spec == "" || (c.id != "" && c.constSpec != c.spec) {
		ev |= evRuntimeCheck
	}
	return ev
}

func (c *Cache) work(ctx context.Context, ev uint32) {
	if ev == 0 || ctx.Err() != nil {
		return
	}
	c.ensureGenesis(ctx)
	if ev&evBest != 0 {
		c.refreshBest(ctx)
	}
	if ev&evFinalized != 0 {
		c.refreshFinalized(ctx)
	}
	if ev&(evRuntime|evRuntimeCheck|evReconnect) != 0 {
		c.refreshRuntime(ctx, ev&evRuntime != 0, ev&evReconnect != 0)
	}
}

// call is one upstream call of the suducer itself.
func (c *Cache) call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.CallTimeout)
	defer cancel()
	v, err := c.up.Call(ctx, method, params)
	if err != nil && ctx.Err() == nil {
		if ce := c.log.Check(zap.DebugLevel, "suducer call failed"); ce != nil {
			ce.Write(zap.String("method", method), zap.Error(err))
		}
	}
	return v, err
}

func (c *Cache) ensureGenesis(ctx context.Context) {
	c.mu.RLock()
	known := c.id != ""
	c.mu.RUnlock()
	if known {
		return
	}
	v, err := c.call(ctx, "chain_getBlockHash", json.RawMessage("[0]"))
	hash, ok := hashString(v)
	if err != nil || !ok {
		return
	}
	c.mu.Lock()
	c.id = chainID(c.opts.Name, hash)
	c.mu.Unlock()
}

// headEntries are the latest entries that describe the best head itself.
var headEntries = [...]string{"chain_getBlockHash", "chain_getHeader", "chain_getBlock"}

// refreshBest reads the best head and everything about it the latest
// entries hold: hash first, then the header and block of that very hash,
// so the entries agree with each other. When the head has not changed,
// its entries are only confirmed; the node's health and sync state, which
// change without blocks, are read again either way.
func (c *Cache) refreshBest(ctx context.Context) {
	hashRaw, err := c.call(ctx, "chain_getBlockHash", nil)
	hash, ok := hashString(hashRaw)
	if err != nil || !ok {
		return
	}
	c.mu.RLock()
	_, haveBlock := c.latest["chain_getBlock"]
	same := !c.best.at.IsZero() && c.best.hash == hash && haveBlock
	c.mu.RUnlock()

	at := json.RawMessage(`["` + hash + `"]`)
	var header, block, health, syncState json.RawMessage
	type job struct {
		dst    *json.RawMessage
		method string
		params json.RawMessage
	}
	jobs := []job{{&health, "system_health", nil}, {&syncState, "system_syncState", nil}}
	if !same {
		jobs = append(jobs, job{&header, "chain_getHeader", at}, job{&block, "chain_getBlock", at})
	}
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := c.call(ctx, j.method, j.params); err == nil && cacheable(v) {
				*j.dst = v
			}
		}()
	}
	wg.Wait()
	now := c.clock.Now()

	c.mu.Lock()
	if health != nil {
		c.setLatestLocked("system_health", health, now)
	}
	if syncState != nil {
		c.setLatestLocked("system_syncState", syncState, now)
	}
	if same {
		if c.best.hash == hash {
			c.best.at = now
			for _, name := range headEntries {
				if e, ok := c.latest[name]; ok {
					e.at = now
					c.latest[name] = e
				}
			}
		}
		c.mu.Unlock()
		return
	}
	number, numOK := headerNumber(header)
	// A node behind the others may answer with an older head; the latest
	// entries never go backwards.
	advance := numOK && (c.best.at.IsZero() || number >= c.best.number)
	if advance {
		c.best = head{hash: hash, number: number, at: now}
		c.setLatestLocked("chain_getBlockHash", hashRaw, now)
		c.setLatestLocked("chain_getHeader", header, now)
		if block != nil {
			c.setLatestLocked("chain_getBlock", block, now)
		} else {
			// The previous head's block must not pass for this one's.
			c.dropLatestLocked("chain_getBlock")
		}
	}
	id := c.id
	c.mu.Unlock()

	if advance && id != "" {
		// The same answers are immutable under the hash: keep them too.
		c.storeAt(ctx, id, "chain_getHeader", at, header)
		if block != nil {
			c.storeAt(ctx, id, "chain_getBlock", at, block)
		}
	}
}

func (c *Cache) storeAt(ctx context.Context, id, method string, params, v json.RawMessage) {
	_ = c.store.Set(ctx, buildKey(id, scopeBlock, method, params), v, SetOptions{
		TTL: c.pinnedTTL(method), Chain: c.opts.Name, Method: method, Share: c.rules.Share(method),
	})
}

func (c *Cache) refreshFinalized(ctx context.Context) {
	hashRaw, err := c.call(ctx, "chain_getFinalizedHead", nil)
	hash, ok := hashString(hashRaw)
	if err != nil || !ok {
		return
	}
	c.mu.Lock()
	if !c.final.at.IsZero() && c.final.hash == hash {
		// Unchanged: confirmed.
		now := c.clock.Now()
		c.final.at = now
		if e, ok := c.latest["chain_getFinalizedHead"]; ok {
			e.at = now
			c.latest["chain_getFinalizedHead"] = e
		}
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	header, err := c.call(ctx, "chain_getHeader", json.RawMessage(`["`+hash+`"]`))
	number, numOK := headerNumber(header)
	if err != nil || !numOK {
		return
	}
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.final.at.IsZero() || number >= c.final.number {
		c.final = head{hash: hash, number: number, at: now}
		c.setLatestLocked("chain_getFinalizedHead", hashRaw, now)
	}
}

// refreshRuntime reads the runtime version. On a new version the
// constants move to new keys; they are fetched at once, and also after a
// reconnect (the node may have been restarted or upgraded). The version
// only goes up: a node behind the others may still answer the old one
// after a notification announced the new one.
func (c *Cache) refreshRuntime(ctx context.Context, notified, reconnected bool) {
	var read string
	readOK := false
	if v, err := c.call(ctx, "state_getRuntimeVersion", nil); err == nil {
		read, readOK = specVersion(v)
	}
	if readOK {
		c.checkGenesis(ctx, read)
	}
	now := c.clock.Now()
	c.mu.Lock()
	if readOK {
		c.raiseSpecLocked(read)
	}
	spec, id := c.spec, c.id
	// The first notification of a subscription repeats what a check just
	// read (at start-up both happen): fetch the constants once.
	due := spec != "" && id != "" && (spec != c.constSpec || reconnected || c.constRetry != 0 || (notified && now.Sub(c.constAt) >= c.opts.Refresh))
	prevSpec, prevAt := c.constSpec, c.constAt
	if due {
		c.constSpec, c.constAt = spec, now
	}
	c.mu.Unlock()
	if !due {
		return
	}
	if ce := c.log.Check(zap.InfoLevel, "refreshing runtime constants"); ce != nil {
		ce.Write(zap.String("spec_version", spec), zap.Bool("notified", notified), zap.Bool("reconnected", reconnected))
	}
	anchored, complete := c.refreshConstants(ctx, id, spec)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !anchored {
		// No block of the new runtime found yet: the next period retries
		// (see quiet).
		if c.constSpec == spec && c.constAt.Equal(now) {
			c.constSpec, c.constAt = prevSpec, prevAt
		}
	}
	if complete || ctx.Err() != nil {
		c.constRetry = 0
		return
	}
	// Try again soon rather than serve the old node's answers until the
	// next runtime change or reconnect; a node still missing after a few
	// attempts is the health checks' business.
	c.constRetry = max(2*c.constRetry, followBackoffMin)
	if c.constRetry >= c.opts.Refresh {
		c.constRetry = 0
		c.log.Warn("runtime constants not refreshed: no node answered", zap.String("spec_version", spec))
		return
	}
	if c.constRetryTimer {
		return
	}
	c.constRetryTimer = true
	wait := c.constRetry
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		var due bool
		select {
		case <-ctx.Done():
		case <-c.clock.After(wait):
			due = true
		}
		c.mu.Lock()
		c.constRetryTimer = false
		c.mu.Unlock()
		if due {
			c.signal(evRuntimeCheck)
		}
	}()
}

// refreshConstants fetches the constants of spec's runtime into the store.
// The runtime's own (metadata, version) are fetched at a block known to
// run it; anchored is false when no such block was found, complete is
// false when a call failed for want of a node (a node's error reply, or
// a node too slow, is an answer asking again soon would not change). The
// calls are the loop's own, not shared with clients' misses, so none
// outlives Stop.
func (c *Cache) refreshConstants(ctx context.Context, id, spec string) (anchored, complete bool) {
	complete = true
	anchor, anchored := c.knownAnchor(spec)
	if !anchored {
		actx, cancel := context.WithTimeout(ctx, c.opts.CallTimeout)
		var err error
		anchor, err = c.findAnchor(actx, spec)
		cancel()
		anchored = err == nil
		if noNode(err) {
			complete = false
		}
	}
	for _, m := range constantMethods {
		rule := c.rules.Rule(m)
		if rule.Class == ClassNone || ctx.Err() != nil {
			continue
		}
		p := c.keyedPlan(c.rules.Label(m), buildKey(id, scopeRuntime+spec, m, emptyArray), emptyArray, false, c.rules.TTL(m, ClassConstant))
		cctx, cancel := context.WithTimeout(ctx, c.opts.CallTimeout)
		var err error
		switch {
		case rule.Class != ClassAtBlock:
			_, _, err = c.fetch(cctx, m, p) // the node's constants
		case anchored:
			p.runtime, p.hashPos = spec, rule.HashPos
			_, err = c.fetchRuntime(cctx, m, p, anchor)
		}
		cancel()
		if errors.Is(err, errNoAnchor) {
			// The anchor turned out to run another runtime: nothing more
			// is fetched at it, and the next period looks for another.
			return false, complete
		}
		if noNode(err) {
			complete = false
		}
	}
	return anchored, complete
}

// noNode reports a call that failed for want of a node to answer it:
// none up or ready, the connection lost, or the upstream too busy to
// take it.
func noNode(err error) bool {
	return errors.Is(err, suber.ErrUnavailable) || errors.Is(err, suber.ErrNoReadyNode) ||
		errors.Is(err, suber.ErrConnectionLost) || errors.Is(err, suber.ErrTooManyPending)
}

// follow holds one upstream subscription, re-opening it with backoff when
// it is lost. While it is down, the loop's periodic refresh covers for it.
func (c *Cache) follow(ctx context.Context, i int) {
	defer c.wg.Done()
	f := follows[i]
	backoff := followBackoffMin
	for opened := false; ctx.Err() == nil; {
		sink := &followSink{c: c, ev: f.event, lost: make(chan struct{}), reopened: opened}
		sctx, cancel := context.WithTimeout(ctx, c.opts.CallTimeout)
		sub, err := c.up.Subscribe(sctx, f.method, nil, f.unsub, sink)
		cancel()
		if errors.Is(err, suber.ErrNoSubscriptions) {
			return // HTTP-only nodes: the periodic refresh does it all
		}
		if err != nil {
			if ce := c.log.Check(zap.DebugLevel, "suducer subscription failed"); ce != nil {
				ce.Write(zap.String("method", f.method), zap.Error(err))
			}
			select {
			case <-ctx.Done():
				return
			case <-c.clock.After(backoff/2 + rand.N(backoff/2)):
			}
			backoff = min(2*backoff, followBackoffMax)
			continue
		}
		backoff = followBackoffMin
		opened = true
		c.subscribed[i].Store(true)
		select {
		case <-sink.lost:
			c.subscribed[i].Store(false)
		case <-ctx.Done():
			c.subscribed[i].Store(false)
			uctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = sub.Unsubscribe(uctx)
			cancel()
			return
		}
	}
}

// followSink turns notifications into loop events. It runs on the
// connection's reader, so it only records and signals.
type followSink struct {
	c    *Cache
	ev   uint32
	once sync.Once
	lost chan struct{}
	// notified is set after the first notification; guarded by c.mu.
	notified bool
	// reopened: the subscription replaces a lost one, so its node's
	// connection was lost meanwhile.
	reopened bool
}

func (s *followSink) Notify(_ string, result json.RawMessage) {
	ev := s.ev
	if s.ev == evRuntime {
		// Switch keys at once: no constant of the old runtime is served
		// from here on, even before the loop refetches them.
		// A subscription's first notification only ever raises the
		// version (a node behind the others may repeat an older one);
		// later ones are the node's runtime changing, downgrades
		// (setCodeWithoutChecks) included.
		if spec, ok := specVersion(result); ok {
			s.c.mu.Lock()
			if s.notified {
				s.c.setSpecLocked(spec)
			} else {
				s.c.raiseSpecLocked(spec)
				if s.reopened {
					ev |= evReconnect
				}
			}
			s.notified = true
			s.c.mu.Unlock()
		}
	}
	s.c.signal(ev)
}

func (s *followSink) Lost(error) { s.once.Do(func() { close(s.lost) }) }

func hashString(v json.RawMessage) (string, bool) {
	if !isBlockHash(v) {
		return "", false
	}
	return string(v[1 : len(v)-1]), true
}

// headerNumber reads a header's number, a hex string in Substrate.
func headerNumber(header json.RawMessage) (uint64, bool) {
	if header == nil {
		return 0, false
	}
	var h struct {
		Number string `json:"number"`
	}
	if err := json.Unmarshal(header, &h); err != nil || !strings.HasPrefix(h.Number, "0x") {
		return 0, false
	}
	n, err := strconv.ParseUint(h.Number[2:], 16, 64)
	return n, err == nil
}

// specVersion reads a RuntimeVersion's specVersion.
func specVersion(v json.RawMessage) (string, bool) {
	var rv struct {
		SpecVersion *uint64 `json:"specVersion"`
	}
	if err := json.Unmarshal(v, &rv); err != nil || rv.SpecVersion == nil {
		return "", false
	}
	return strconv.FormatUint(*rv.SpecVersion, 10), true
}
