package cacher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/elara-gateway/elara/suber"
)

// Runtime constants (metadata, runtime version) are keyed by spec version.
// Nodes of one chain do not switch runtimes together: a node a few blocks
// behind the others (within the group's max_lag, so still serving) keeps
// answering the old runtime's metadata and version for `[]` after another
// node announced the new one. So the cache
//
//   - never lowers its spec version (versions only go up, except when the
//     chain itself changes: a new genesis);
//   - fetches every constant stored under rt<spec> at an anchor: a block
//     hash for which a node answered state_getRuntimeVersion(hash) with
//     that very spec version, trying the other nodes when one does not
//     know the block yet;
//   - checks that a runtime version it stores has the key's spec version.

// CallFunc is one upstream call.
type CallFunc func(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)

// NodeUpstream is an Upstream that can also address its nodes one by one.
// The cache uses it to find a node that knows a given block: the group's
// round robin may keep choosing the one that does not.
type NodeUpstream interface {
	Upstream
	// NodeCalls returns a call function for each node that may serve now.
	NodeCalls() []CallFunc
}

// blindTries is how many times a call that must reach a node knowing a
// block is made through an Upstream that cannot choose its node.
const blindTries = 3

// errNoAnchor means no node could name a block running the spec version
// asked for (none has imported it yet, or they run a newer one already).
var errNoAnchor = errors.New("no block of the runtime's spec version found")

// anchorFlightKey starts the flight keys of anchor searches; store keys
// start with the chain's name, never with a NUL.
const anchorFlightKey = "\x00anchor:"

type runtimeAnchor struct {
	spec, hash string
	at         time.Time
}

// raiseSpecLocked sets the spec version if it is newer than the known one.
// Called with c.mu held.
func (c *Cache) raiseSpecLocked(spec string) bool {
	n, err := strconv.ParseUint(spec, 10, 64)
	if err != nil || (c.spec != "" && n <= c.specN) {
		return false
	}
	c.spec, c.specN = spec, n
	return true
}

// setSpecLocked sets the spec version to what the node announced, even an
// older one. Called with c.mu held.
func (c *Cache) setSpecLocked(spec string) {
	n, err := strconv.ParseUint(spec, 10, 64)
	if err != nil || spec == c.spec {
		return
	}
	c.spec, c.specN = spec, n
}

// nodeCalls lists the calls to try, one per node when the upstream can
// address them.
func (c *Cache) nodeCalls() []CallFunc {
	if nu, ok := c.up.(NodeUpstream); ok {
		if calls := nu.NodeCalls(); len(calls) > 0 {
			return calls
		}
	}
	calls := make([]CallFunc, blindTries)
	for i := range calls {
		calls[i] = c.up.Call
	}
	return calls
}

// callKnown makes a call naming a block hash on one node after another
// until one answers with something other than "unknown block" or a
// transport failure.
func (c *Cache) callKnown(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	var v json.RawMessage
	var err error
	for _, call := range c.nodeCalls() {
		v, err = call(ctx, method, params)
		if err == nil || ctx.Err() != nil {
			return v, err
		}
		if _, ok := suber.IsUpstreamError(err); ok && !unknownBlock(err) {
			return v, err
		}
	}
	return v, err
}

// anchorFor returns a block hash known to run spec's runtime, searching
// the nodes' best blocks when none is known or the known one is old (a
// node may prune its state). Concurrent searches share one.
func (c *Cache) anchorFor(ctx context.Context, spec string) (string, error) {
	if hash, ok := c.knownAnchor(spec); ok {
		return hash, nil
	}
	v, _, err := c.flight.do(ctx, anchorFlightKey+spec, c.opts.CallTimeout, func(fctx context.Context) (json.RawMessage, string, error) {
		hash, err := c.findAnchor(fctx, spec)
		return json.RawMessage(hash), "", err
	})
	return string(v), err
}

func (c *Cache) knownAnchor(spec string) (string, bool) {
	c.mu.RLock()
	a := c.anchor
	c.mu.RUnlock()
	return a.hash, a.spec == spec && c.fresh(a.at)
}

func (c *Cache) findAnchor(ctx context.Context, spec string) (string, error) {
	want, err := strconv.ParseUint(spec, 10, 64)
	if err != nil {
		return "", errNoAnchor
	}
	// reached: some node answered (the suducer tries again soon when
	// none could, see refreshRuntime).
	reached := false
	for _, call := range c.nodeCalls() {
		hashRaw, err := call(ctx, "chain_getBlockHash", nil)
		hash, ok := hashString(hashRaw)
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		reached = reached || !noNode(err)
		if err != nil || !ok {
			continue
		}
		rv, err := call(ctx, "state_getRuntimeVersion", json.RawMessage(`["`+hash+`"]`))
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		s, ok := specVersion(rv)
		if err != nil || !ok {
			continue
		}
		got, _ := strconv.ParseUint(s, 10, 64)
		switch {
		case got == want:
			c.mu.Lock()
			c.anchor = runtimeAnchor{spec: spec, hash: hash, at: c.clock.Now()}
			c.mu.Unlock()
			return hash, nil
		case got > want:
			// A newer runtime still: the loop will fetch its constants.
			c.mu.Lock()
			raised := c.raiseSpecLocked(s)
			c.mu.Unlock()
			if raised {
				c.signal(evRuntimeCheck)
			}
		}
	}
	if !reached {
		return "", fmt.Errorf("%w: %w", errNoAnchor, suber.ErrUnavailable)
	}
	return "", errNoAnchor
}

// fillRuntime fills a runtime constant's miss: the upstream call is made
// at an anchor of the key's spec version, once for all concurrent misses.
func (c *Cache) fillRuntime(ctx context.Context, method string, p plan) (json.RawMessage, string, error) {
	return c.flight.do(ctx, p.key, c.opts.CallTimeout, func(fctx context.Context) (json.RawMessage, string, error) {
		hash, err := c.anchorFor(fctx, p.runtime)
		if err != nil {
			return nil, "", err
		}
		v, err := c.fetchRuntime(fctx, method, p, hash)
		return v, "", err
	})
}

// fetchRuntime makes a runtime constant's call at anchor, a block running
// the key's spec version, and stores the answer; a runtime version is
// stored only if it has that spec version.
func (c *Cache) fetchRuntime(ctx context.Context, method string, p plan, anchor string) (json.RawMessage, error) {
	v, err := c.callKnown(ctx, method, joinParams(withHash(nil, p.hashPos, anchor)))
	if err != nil || !cacheable(v) {
		return v, err
	}
	if s, ok := specVersion(v); isRuntimeVersionMethod(method) && (!ok || s != p.runtime) {
		// A reorg put the anchor under another runtime: find another.
		c.mu.Lock()
		if c.anchor.hash == anchor {
			c.anchor = runtimeAnchor{}
		}
		c.mu.Unlock()
		return nil, errNoAnchor
	}
	_ = c.store.Set(ctx, p.key, v, SetOptions{TTL: p.ttl, Chain: c.opts.Name, Method: p.label, Share: c.rules.Share(method)})
	return v, nil
}

func isRuntimeVersionMethod(method string) bool {
	return method == "state_getRuntimeVersion" || method == "chain_getRuntimeVersion"
}

// checkGenesis is called when a node reports an older runtime than the
// known one. That is a node behind the others, unless the chain itself
// changed (a new genesis: a development chain started afresh), the one
// case where the spec version may go down.
func (c *Cache) checkGenesis(ctx context.Context, spec string) {
	n, err := strconv.ParseUint(spec, 10, 64)
	c.mu.RLock()
	lower := err == nil && c.spec != "" && n < c.specN
	id := c.id
	c.mu.RUnlock()
	if !lower || id == "" {
		return
	}
	v, err := c.call(ctx, "chain_getBlockHash", json.RawMessage("[0]"))
	hash, ok := hashString(v)
	if err != nil || !ok || chainID(c.opts.Name, hash) == id {
		return
	}
	c.mu.Lock()
	if c.id == id {
		c.id = chainID(c.opts.Name, hash)
		c.spec, c.specN = spec, n
		c.anchor = runtimeAnchor{}
		c.constSpec = ""
		c.best, c.final = head{}, head{}
		// The old chain's latest answers and heads are not this chain's.
		for name := range c.latest {
			c.dropLatestLocked(name)
		}
		c.seenBest.Store(0)
		c.seenFinal.Store(0)
	}
	c.mu.Unlock()
	if ce := c.log.Check(zap.WarnLevel, "chain genesis changed"); ce != nil {
		ce.Write(zap.String("genesis", hash), zap.String("spec_version", spec))
	}
}

// ObserveRuntime is told of every runtime version the gateway sends its
// clients, before they get it: from then on constants are those of the
// new runtime (fetched at a block known to run it), never the old ones.
func (c *Cache) ObserveRuntime(version json.RawMessage) {
	spec, ok := specVersion(version)
	if !ok {
		return
	}
	c.mu.Lock()
	raised := c.raiseSpecLocked(spec)
	c.mu.Unlock()
	if raised {
		c.signal(evRuntime)
	}
}
