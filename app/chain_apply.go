package app

import (
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/elara-gateway/elara/cacher"
	"github.com/elara-gateway/elara/suber"
)

// A reload keeps every chain whose name it keeps, and with it the chain's
// clients and their shared subscriptions. What the new config says of the
// chain is applied to it when the config starts:
//
//   - options (request timeout, readiness rules, subscription grace,
//     bounds) are changed in place; a call or a grace already running
//     keeps the value it started with;
//   - nodes: the group gets the new set; subscriptions on a node that
//     left move to a ready node as when a node stops being ready, head
//     subscriptions without a gap (matcher/leave.go). The chain holds its
//     own reference on each node it uses, and lets go of a node that left
//     once no shared subscription or call is on it (or a request timeout
//     later), so the old config's cleanup does not close it under them. A node
//     whose options changed (the chain's health interval among them) is a
//     new node: nothing of a node changes in place;
//   - cache: a cache config change (or a request timeout change, which
//     bounds the cache's calls) gives the chain another cache, built for
//     the new config; the old one's loops stop with the old config.
//
// Caddy starts the new config before it stops the old one, and cleans up
// a config that failed to start: the chain remembers the settings of
// every started config, and when the one in force is cleaned up first,
// the previous one's come back.

// chainSettings are the options a config applies to a chain in place.
type chainSettings struct {
	RequestTimeout time.Duration   `json:"request_timeout"`
	Readiness      suber.Readiness `json:"readiness"`
	Grace          time.Duration   `json:"subscription_grace"`
	Bounds         ChainBounds     `json:"bounds"`
}

// chainApply is what one config sets on one chain.
type chainApply struct {
	settings chainSettings
	nodes    []*suber.Node
	// nodeKeys are the nodes' nodePool keys.
	nodeKeys []string
	// cache is nil when the cache is off.
	cache *cacher.Cache
}

// apply puts x in force.
func (c *Chain) apply(x *chainApply) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inForce = slices.DeleteFunc(c.inForce, func(y *chainApply) bool { return y == x })
	c.inForce = append(c.inForce, x)
	c.set(x)
}

// release forgets x; when it was in force, the previous started config's
// settings come back.
func (c *Chain) release(x *chainApply) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.inForce, x)
	if i < 0 {
		return
	}
	c.inForce = slices.Delete(c.inForce, i, i+1)
	if i == len(c.inForce) && i > 0 {
		c.set(c.inForce[i-1])
	}
}

// set applies x. c.mu is held.
func (c *Chain) set(x *chainApply) {
	s := x.settings
	c.timeout.Store(int64(s.RequestTimeout))
	c.setBounds(s.Bounds)
	c.Matcher.SetTimes(s.Grace, s.RequestTimeout)
	c.Upstream.SetReadiness(s.Readiness)
	c.setCache(x.cache)
	for i, n := range x.nodes {
		c.hold(n, x.nodeKeys[i])
	}
	old := c.Upstream.Nodes()
	c.Upstream.SetNodes(x.nodes)
	for _, n := range old {
		if !slices.Contains(x.nodes, n) {
			c.drain(n)
		}
	}
}

// errNodeGone is never returned: a config holds the nodes it applies.
var errNodeGone = errors.New("node released before its chain took it")

// hold takes the chain's own reference on n. c.mu is held.
func (c *Chain) hold(n *suber.Node, key string) {
	if _, ok := c.held[n]; ok || c.held == nil { // nil: destroyed
		return
	}
	if _, _, err := nodePool.LoadOrNew(key, func() (caddy.Destructor, error) { return nil, errNodeGone }); err == nil {
		c.held[n] = key
	}
}

// drain lets go of n, which left the chain, once the matcher has moved
// its shared subscriptions off it and the calls at it are answered,
// bounded by the request timeout (no ready node to move to, a node that
// does not answer). c.mu is held.
func (c *Chain) drain(n *suber.Node) {
	if _, ok := c.held[n]; !ok {
		return
	}
	c.drains.Add(1)
	go func() {
		defer c.drains.Done()
		deadline := time.NewTimer(c.RequestTimeout())
		defer deadline.Stop()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
	wait:
		for c.Matcher.SharedOn(n) > 0 || n.PendingCalls() > 0 {
			select {
			case <-tick.C:
			case <-deadline.C:
				break wait
			case <-c.closing:
				break wait
			}
		}
		c.mu.Lock()
		key, ok := c.held[n]
		if ok && !c.Upstream.Has(n) { // a reverted config may use it again
			delete(c.held, n)
		} else {
			ok = false
		}
		c.mu.Unlock()
		if ok {
			_, _ = nodePool.Delete(key) // the last reference closes it
		}
	}()
}

// releaseNodes runs when the chain is destroyed: it ends the drains and
// lets go of every node.
func (c *Chain) releaseNodes() {
	close(c.closing)
	c.drains.Wait()
	c.mu.Lock()
	held := c.held
	c.held = nil
	c.mu.Unlock()
	for _, key := range held {
		_, _ = nodePool.Delete(key)
	}
}

// setCache makes cache (nil: none) answer the chain's calls and hear of
// the heads and runtime versions its shared subscriptions deliver.
func (c *Chain) setCache(cache *cacher.Cache) {
	if c.cache.Swap(cache) == cache {
		return
	}
	if cache == nil {
		c.Matcher.ObserveHeads(func(uint64, bool) {})
		c.Matcher.ObserveRuntime(func(json.RawMessage) {})
		return
	}
	c.Matcher.ObserveHeads(cache.ObserveHead)
	c.Matcher.ObserveRuntime(cache.ObserveRuntime)
}
