package cacher

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

type planKind uint8

const (
	planPass   planKind = iota // not cacheable: straight to a node, not counted
	planMiss                   // cacheable, but not now (head or runtime unknown or stale)
	planLatest                 // a latest entry of the suducer
	planKeyed                  // a store entry
)

// plan is how one call is served.
type plan struct {
	kind     planKind
	label    string
	latest   string          // planLatest: the entry
	key      string          // planKeyed: the store key
	upParams json.RawMessage // planKeyed: params of the upstream call
	pinned   bool            // planKeyed: upParams carry a head hash the client did not give
	// runtime, for a runtime constant (metadata, runtime version): the
	// spec version of the key. The upstream call is made at a block known
	// to run it, with the hash at hashPos, never with upParams.
	runtime string
	hashPos int
	ttl     time.Duration
}

func (c *Cache) plan(method string, params json.RawMessage) plan {
	rule := c.rules.Rule(method)
	if rule.Class == ClassNone {
		return plan{kind: planPass}
	}
	elems, ok := splitParams(params)
	if !ok {
		return plan{kind: planPass}
	}
	label := c.rules.Label(method)
	miss := plan{kind: planMiss, label: label}
	c.mu.RLock()
	id, spec, best, final := c.id, c.spec, c.best, c.final
	c.mu.RUnlock()

	class := rule.Class
	if class == ClassAtBlock && len(elems) == 0 && rule.Bare != ClassNone {
		class = rule.Bare
	}
	if class == ClassBlockHash && len(elems) == 0 {
		class = ClassLatest
	}
	switch class {
	case ClassLatest:
		if len(elems) > 0 {
			return plan{kind: planPass}
		}
		return plan{kind: planLatest, label: label, latest: rule.Latest}

	case ClassConstant:
		if len(elems) > 0 {
			return plan{kind: planPass}
		}
		if id == "" || spec == "" {
			return miss
		}
		p := c.keyedPlan(label, buildKey(id, scopeRuntime+spec, method, emptyArray), emptyArray, false, c.rules.TTL(method, ClassConstant))
		if rule.Class == ClassAtBlock {
			// A constant of the runtime (it takes a block hash): a node
			// still on an older block would answer the old runtime's.
			p.runtime, p.hashPos = spec, rule.HashPos
		}
		return p

	case ClassAtBlock:
		if id == "" {
			return miss
		}
		if len(elems) > rule.HashPos {
			if !isBlockHash(elems[rule.HashPos]) {
				return plan{kind: planPass}
			}
			canon := joinParams(elems)
			return c.keyedPlan(label, buildKey(id, scopeBlock, method, canon), canon, false, c.rules.TTL(method, ClassAtBlock))
		}
		h := best
		if c.opts.Pin == PinFinalized {
			h = final
		}
		if !c.fresh(h.at) || c.behind(h.number, c.opts.Pin == PinFinalized) {
			return miss
		}
		canon := joinParams(withHash(elems, rule.HashPos, h.hash))
		return c.keyedPlan(label, buildKey(id, scopeBlock, method, canon), canon, true, c.pinnedTTL(method))

	case ClassBlockHash:
		if id == "" || len(elems) != 1 {
			return plan{kind: planPass}
		}
		top, ok := maxBlockNumber(elems[0])
		// Only finalized numbers are immutable: above, a fork may still
		// change the hash. Genesis is always final.
		if !ok || (top > 0 && (final.at.IsZero() || top > final.number)) {
			return plan{kind: planPass}
		}
		canon := joinParams(elems)
		return c.keyedPlan(label, buildKey(id, scopeBlock, method, canon), canon, false, c.rules.TTL(method, ClassBlockHash))

	case ClassTTL:
		if id == "" {
			return miss
		}
		canon := joinParams(elems)
		return c.keyedPlan(label, buildKey(id, scopeTTL, method, canon), canon, false, c.rules.TTL(method, ClassTTL))
	}
	return plan{kind: planPass}
}

var emptyArray = json.RawMessage("[]")

// pinnedTTL is the TTL of an entry filled for a pinned call.
func (c *Cache) pinnedTTL(method string) time.Duration {
	return min(c.rules.TTL(method, ClassAtBlock), c.opts.PinnedTTL)
}

func (c *Cache) keyedPlan(label, key string, up json.RawMessage, pinned bool, ttl time.Duration) plan {
	return plan{kind: planKeyed, label: label, key: key, upParams: up, pinned: pinned, ttl: ttl}
}

// maxBlockNumber reads chain_getBlockHash's parameter: a number, a hex
// number string, or a list of those; it returns the highest.
func maxBlockNumber(raw json.RawMessage) (uint64, bool) {
	if len(raw) > 0 && raw[0] == '[' {
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil || len(list) == 0 {
			return 0, false
		}
		var top uint64
		for _, e := range list {
			n, ok := blockNumber(e)
			if !ok {
				return 0, false
			}
			top = max(top, n)
		}
		return top, true
	}
	return blockNumber(raw)
}

func blockNumber(raw json.RawMessage) (uint64, bool) {
	s := string(raw)
	if len(s) >= 2 && s[0] == '"' {
		var str string
		if err := json.Unmarshal(raw, &str); err != nil || !strings.HasPrefix(str, "0x") || len(str) < 3 {
			return 0, false
		}
		n, err := strconv.ParseUint(str[2:], 16, 64)
		return n, err == nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}
