package fakenode

import (
	"encoding/json"
	"slices"
)

// The chain calls these with its emitMu held, one change at a time. They
// only queue messages, so a slow client never slows the chain down.

func (n *Node) onNewBlock(b *block) {
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	if n.subs.following {
		n.advanceBestLocked(b, []*block{b})
	}
}

func (n *Node) onFinalized(b *block) {
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	if n.subs.following {
		n.advanceFinalizedLocked(b)
	}
}

// Runtime and storage changes are not tied to block import here, so they
// reach even a lagging node.

func (n *Node) onRuntimeVersion(spec uint32) {
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	rv := runtimeVersionJSON(spec)
	for s := range n.subs.byKind[subRuntime] {
		n.notifyLocked(s, rv)
	}
}

func (n *Node) onStorage(key, value string) {
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	var v any
	if value != "" {
		v = value
	}
	var changes json.RawMessage
	for s := range n.subs.byKind[subStorage] {
		if s.keys != nil && !s.keys[key] {
			continue
		}
		if changes == nil {
			changes = storageChangeSet(n.viewBest.Load().hash(), [][2]any{{key, v}})
		}
		n.notifyLocked(s, changes)
	}
}

// advanceBestLocked moves the node's best block to b; passed are the blocks
// imported since the previous best (b included), searched for watched
// extrinsics. Head subscribers only hear of b, as after a catch-up.
func (n *Node) advanceBestLocked(b *block, passed []*block) {
	n.viewBest.Store(b)
	for s := range n.subs.byKind[subNewHeads] {
		n.notifyLocked(s, b.json)
	}
	for s := range n.subs.byKind[subAllHeads] {
		n.notifyLocked(s, b.json)
	}
	for s := range n.subs.byKind[subChainHead] {
		for _, pb := range passed {
			n.notifyLocked(s, n.newBlockEventLocked(s, pb))
		}
		n.notifyLocked(s, bestBlockChangedEvent(b))
	}
	n.checkLagLocked()
	n.enforcePinLimitLocked()
	for s := range n.subs.byKind[subExtrinsic] {
		if s.inBlock != nil {
			continue
		}
		for _, pb := range passed {
			if slices.Contains(pb.extrinsics, s.ext) {
				s.inBlock = pb
				n.notifyLocked(s, statusJSON("inBlock", pb.hash()))
				break
			}
		}
	}
}

func (n *Node) advanceFinalizedLocked(b *block) {
	n.viewFinalized.Store(b)
	for s := range n.subs.byKind[subFinalized] {
		n.notifyLocked(s, b.json)
	}
	for s := range n.subs.byKind[subChainHead] {
		if ev := n.finalizedEventLocked(s, b); ev != nil {
			n.notifyLocked(s, ev)
		}
	}
	for s := range n.subs.byKind[subJustifications] {
		n.notifyLocked(s, json.RawMessage(`"0x00"`))
	}
	for s := range n.subs.byKind[subExtrinsic] {
		if s.inBlock != nil && s.inBlock.number() <= b.number() {
			n.notifyLocked(s, statusJSON("finalized", s.inBlock.hash()))
			// "finalized" is a final status: Substrate ends the stream.
			n.forgetLocked(s)
		}
	}
}

func statusJSON(status, hash string) json.RawMessage {
	return json.RawMessage(`{"` + status + `":"` + hash + `"}`)
}

// SetFollow(false) makes the node lag: it stops seeing new and finalized
// blocks of its chain, so its chain_getHeader, chain_getBlockHash,
// chain_getFinalizedHead and system_syncState stay where they were, newer
// hashes are unknown to it, and its head subscribers get nothing.
// SetFollow(true) catches up: subscribers get the current best (and the
// current finalized head, if it moved), not every block they missed.
// Runtime-version and storage notifications are not affected.
func (n *Node) SetFollow(follow bool) {
	n.chain.emitMu.Lock()
	defer n.chain.emitMu.Unlock()
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	if n.subs.following == follow {
		return
	}
	n.subs.following = follow
	if !follow {
		return
	}
	if best, old := n.chain.bestBlock(), n.viewBest.Load(); best != old {
		n.advanceBestLocked(best, n.chain.blockRange(old.number()+1, best.number()))
	}
	if fin := n.chain.finalizedBlock(); fin != n.viewFinalized.Load() {
		n.advanceFinalizedLocked(fin)
	}
}

// Following reports whether the node follows its chain (see SetFollow).
func (n *Node) Following() bool {
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	return n.subs.following
}
