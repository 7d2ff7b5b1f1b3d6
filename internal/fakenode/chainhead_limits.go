package fakenode

import (
	"encoding/json"
	"strconv"
)

// A polkadot-sdk node bounds what one RPC connection and one chainHead
// follow subscription may hold (rpc-spec-v2 chain_head.rs, ChainHeadConfig
// defaults, and jsonrpsee's per-connection subscription limit). The fake
// node enforces the same bounds with the same answers, so a gateway that
// funnels many clients into few upstream connections meets them in tests:
//
//   - a 5th chainHead_v1_follow on one connection is refused with -32800;
//   - a 1025th subscription of any kind on one connection is refused with
//     jsonrpsee's -32006;
//   - every block reported to a follow subscription is pinned until
//     chainHead_v1_unpin; header and operations on a block the
//     subscription has not pinned fail with -32801, as does unpinning one;
//     more than 512 pinned blocks in total stop the subscription that holds
//     the most (polkadot-sdk stops the one holding a block longest; with
//     blocks reported in order that is the same subscription here);
//   - a subscription runs at most 16 operations at once (limitReached);
//   - chainHead_v1_storage reports at most 5 items before pausing with
//     operationWaitingForContinue until chainHead_v1_continue;
//   - when the best block is more than 128 blocks past the finalized one,
//     every follow subscription is stopped.

// ChainHeadLimits are the bounds above; zero fields take the defaults.
type ChainHeadLimits struct {
	// FollowsPerConnection bounds chainHead_v1_follow per connection (4).
	FollowsPerConnection int
	// SubscriptionsPerConnection bounds subscriptions of any kind per
	// connection (1024, polkadot-sdk's --rpc-max-subscriptions-per-connection).
	SubscriptionsPerConnection int
	// PinnedBlocks bounds blocks pinned by all follow subscriptions (512).
	PinnedBlocks int
	// Operations bounds operations running on one subscription (16).
	Operations int
	// StorageItems is how many items a storage operation reports before
	// it waits for chainHead_v1_continue (5).
	StorageItems int
	// LaggingDistance is how far the best block may run ahead of the
	// finalized one before every follow subscription is stopped (128).
	LaggingDistance int
}

// DefaultChainHeadLimits are polkadot-sdk's defaults.
var DefaultChainHeadLimits = ChainHeadLimits{
	FollowsPerConnection:       4,
	SubscriptionsPerConnection: 1024,
	PinnedBlocks:               512,
	Operations:                 16,
	StorageItems:               5,
	LaggingDistance:            128,
}

func (l ChainHeadLimits) withDefaults() ChainHeadLimits {
	d := DefaultChainHeadLimits
	for _, f := range []struct{ v, def *int }{
		{&l.FollowsPerConnection, &d.FollowsPerConnection},
		{&l.SubscriptionsPerConnection, &d.SubscriptionsPerConnection},
		{&l.PinnedBlocks, &d.PinnedBlocks},
		{&l.Operations, &d.Operations},
		{&l.StorageItems, &d.StorageItems},
		{&l.LaggingDistance, &d.LaggingDistance},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return l
}

// WithChainHeadLimits sets the node's bounds (see ChainHeadLimits).
func WithChainHeadLimits(l ChainHeadLimits) Option {
	return func(cfg *config) { cfg.limits = l }
}

// CodeFollowLimit is polkadot-sdk's error for a follow subscription beyond
// the per-connection limit.
const CodeFollowLimit = -32800

// CodeTooManySubscriptions is jsonrpsee's error for a subscription beyond
// the per-connection limit.
const CodeTooManySubscriptions = -32006

func errFollowLimit() *Error {
	return &Error{Code: CodeFollowLimit, Message: "Maximum number of chainHead_follow has been reached"}
}

func errTooManySubscriptions(limit int) *Error {
	return &Error{Code: CodeTooManySubscriptions, Message: "Too many subscriptions on the connection",
		Data: "Exceeded max limit of " + strconv.Itoa(limit)}
}

// checkConnLimitsLocked refuses a new subscription of kind on c when c is
// at its limits.
func (n *Node) checkConnLimitsLocked(c *wsConn, kind subKind) *Error {
	if len(c.subs) >= n.limits.SubscriptionsPerConnection {
		return errTooManySubscriptions(n.limits.SubscriptionsPerConnection)
	}
	if kind != subChainHead {
		return nil
	}
	follows := 0
	for _, s := range c.subs {
		if s.spec.kind == subChainHead {
			follows++
		}
	}
	if follows >= n.limits.FollowsPerConnection {
		return errFollowLimit()
	}
	return nil
}

// pinLocked pins hash for s; reported blocks are always pinned.
func (n *Node) pinLocked(s *subscription, hash string) {
	if s.pinned == nil {
		s.pinned = map[string]bool{}
	}
	if !s.pinned[hash] {
		s.pinned[hash] = true
		n.subs.pinned++
	}
}

// enforcePinLimitLocked stops the follow subscriptions holding the most
// pins while the node holds more than it may.
func (n *Node) enforcePinLimitLocked() {
	for n.subs.pinned > n.limits.PinnedBlocks {
		var worst *subscription
		for s := range n.subs.byKind[subChainHead] {
			if worst == nil || len(s.pinned) > len(worst.pinned) {
				worst = s
			}
		}
		if worst == nil {
			return
		}
		n.stopFollowLocked(worst)
	}
}

// stopFollowLocked sends stop on s and ends it, releasing its pins.
func (n *Node) stopFollowLocked(s *subscription) {
	n.notifyLocked(s, json.RawMessage(`{"event":"stop"}`))
	n.forgetLocked(s) // a reply not sent yet still gets its events, stop included; pins go
}

// releaseFollowLocked drops the pins and operations of an ended follow.
func (n *Node) releaseFollowLocked(s *subscription) {
	n.subs.pinned -= len(s.pinned)
	s.pinned = nil
	s.ops = nil
}

// checkLagLocked stops every follow subscription when the best block is
// too far past the finalized one, as polkadot-sdk does.
func (n *Node) checkLagLocked() {
	best, fin := n.viewBest.Load(), n.viewFinalized.Load()
	if best == nil || fin == nil || best.number() <= fin.number()+uint64(n.limits.LaggingDistance) {
		return
	}
	for s := range n.subs.byKind[subChainHead] {
		n.stopFollowLocked(s)
	}
}

// PinnedBlocks returns how many blocks follow subscriptions hold pinned,
// counted once per subscription.
func (n *Node) PinnedBlocks() int {
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	return n.subs.pinned
}

// ActiveFollows returns how many chainHead_v1_follow subscriptions are open.
func (n *Node) ActiveFollows() int {
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	return len(n.subs.byKind[subChainHead])
}
