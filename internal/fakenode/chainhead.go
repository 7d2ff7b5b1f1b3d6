package fakenode

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The new JSON-RPC spec's chainHead_v1_* group, in its simplest form: no
// forks (so nothing is ever pruned), no pin limit, and operations
// (body/call/storage, chainhead_ops.go) that finish at once. A follow subscription's id is only valid on the
// connection that made it, as on a real node.
//
// chainHead_v1_follow([withRuntime]) sends chainHead_v1_followEvent
// notifications:
//
//	{"event":"initialized","finalizedBlockHashes":[fin],"finalizedBlockRuntime":rt}  (runtime only with withRuntime)
//	{"event":"newBlock","blockHash":h,"parentBlockHash":p,"newRuntime":null|rt}    (newRuntime only with withRuntime)
//	{"event":"bestBlockChanged","bestBlockHash":h}
//	{"event":"finalized","finalizedBlockHashes":[...],"prunedBlockHashes":[]}
//	{"event":"stop"}                                                              (StopChainHeadFollows)
//
// After initialized come a newBlock for each block the node knows above the
// finalized one, then bestBlockChanged (only if there were any). Each new
// best block gives newBlock events for the blocks imported since the last
// one (one, unless the node caught up after SetFollow(false)), then one
// bestBlockChanged. finalized lists every newly finalized block, oldest
// first. A runtime upgrade (Chain.SetRuntimeVersion) is reported as
// newRuntime of the next newBlock.

// connCalls are the built-in methods that need the caller's connection.
var connCalls = map[string]func(*Node, *wsConn, params) (any, *Error){
	"chainHead_v1_header": (*Node).rpcChainHeadHeader,
	"chainHead_v1_unpin":  (*Node).rpcChainHeadUnpin,
	// Operations themselves are in chainhead_ops.go.
	"chainHead_v1_continue":      (*Node).rpcChainHeadContinue,
	"chainHead_v1_stopOperation": (*Node).rpcChainHeadStopOperation,
}

// errInvalidFollowSubscription answers chainHead calls naming a follow
// subscription that is not active on the caller's connection. (A real node
// answers chainHead_v1_header with null then; an error is easier to check.)
func errInvalidFollowSubscription() *Error {
	return &Error{Code: CodeInvalidParams, Message: "Invalid followSubscription"}
}

func errInvalidOperationID() *Error {
	return &Error{Code: CodeInvalidParams, Message: "Invalid operation id"}
}

// chainHeadRuntimeJSON is a "valid" runtime of the new spec: apis is an
// object there, not the legacy list.
func chainHeadRuntimeJSON(spec uint32) json.RawMessage {
	return json.RawMessage(`{"type":"valid","spec":{"specName":"fake","implName":"fake","specVersion":` +
		strconv.FormatUint(uint64(spec), 10) +
		`,"implVersion":0,"transactionVersion":1,"apis":{}}}`)
}

// Follow events, fields in the spec's order.
type (
	initializedEvent struct {
		Event                 string          `json:"event"`
		FinalizedBlockHashes  []string        `json:"finalizedBlockHashes"`
		FinalizedBlockRuntime json.RawMessage `json:"finalizedBlockRuntime,omitempty"`
	}
	newBlockEvent struct {
		Event           string           `json:"event"`
		BlockHash       string           `json:"blockHash"`
		ParentBlockHash string           `json:"parentBlockHash"`
		NewRuntime      *json.RawMessage `json:"newRuntime,omitempty"` // nil: absent (withRuntime false)
	}
	finalizedEvent struct {
		Event                string   `json:"event"`
		FinalizedBlockHashes []string `json:"finalizedBlockHashes"`
		PrunedBlockHashes    []string `json:"prunedBlockHashes"`
	}
)

func mustJSON(v any) json.RawMessage {
	js, err := json.Marshal(v)
	if err != nil {
		panic("fakenode: " + err.Error())
	}
	return js
}

// chainHeadInitLocked queues the first events of a new follow subscription.
func (n *Node) chainHeadInitLocked(s *subscription) {
	fin, best := n.viewFinalized.Load(), n.viewBest.Load()
	s.headFin = fin.number()
	s.headSpec = n.chain.specAt(fin.number())
	n.pinLocked(s, fin.hash())
	ev := initializedEvent{Event: "initialized", FinalizedBlockHashes: []string{fin.hash()}}
	if s.withRuntime {
		ev.FinalizedBlockRuntime = chainHeadRuntimeJSON(s.headSpec)
	}
	n.notifyLocked(s, mustJSON(ev))
	if best == fin {
		return
	}
	for _, b := range n.chain.blockRange(fin.number()+1, best.number()) {
		n.notifyLocked(s, n.newBlockEventLocked(s, b))
	}
	n.notifyLocked(s, bestBlockChangedEvent(best))
	n.enforcePinLimitLocked()
}

func (n *Node) newBlockEventLocked(s *subscription, b *block) json.RawMessage {
	n.pinLocked(s, b.hash())
	ev := newBlockEvent{Event: "newBlock", BlockHash: b.hash(), ParentBlockHash: b.header.ParentHash}
	if s.withRuntime {
		rt := json.RawMessage("null") // same runtime as the parent
		if spec := n.chain.specAt(b.number()); spec != s.headSpec {
			s.headSpec = spec
			rt = chainHeadRuntimeJSON(spec)
		}
		ev.NewRuntime = &rt
	}
	return mustJSON(ev)
}

func bestBlockChangedEvent(b *block) json.RawMessage {
	return json.RawMessage(`{"event":"bestBlockChanged","bestBlockHash":"` + b.hash() + `"}`)
}

// finalizedEventLocked reports every block from the last one s heard of as
// finalized up to b; nil if b is not newer.
func (n *Node) finalizedEventLocked(s *subscription, b *block) json.RawMessage {
	if b.number() <= s.headFin {
		return nil
	}
	blocks := n.chain.blockRange(s.headFin+1, b.number())
	s.headFin = b.number()
	hashes := make([]string, len(blocks))
	for i, fb := range blocks {
		hashes[i] = fb.hash()
	}
	return mustJSON(finalizedEvent{Event: "finalized", FinalizedBlockHashes: hashes, PrunedBlockHashes: []string{}})
}

// followParam checks that parameter 0 names a chainHead_v1_follow
// subscription active on connection c (nil over HTTP: never).
func (n *Node) followParam(c *wsConn, p params) *Error {
	id, err := p.str(0)
	if err != nil {
		return err
	}
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	if s := n.subs.byID[id]; c == nil || s == nil || s.conn != c || s.spec.kind != subChainHead {
		return errInvalidFollowSubscription()
	}
	return nil
}

// rpcChainHeadHeader returns "0x" + hex of the header's JSON (a real node
// sends the SCALE-encoded header), or null for a block the node does not
// know.
func (n *Node) rpcChainHeadHeader(c *wsConn, p params) (any, *Error) {
	if _, err := p.str(0); err != nil {
		return nil, err
	}
	h, err := p.str(1)
	if err != nil {
		return nil, err
	}
	if err := n.followParam(c, p); err != nil {
		return nil, err
	}
	if !hashRE.MatchString(h) {
		return nil, errInvalidParams(fmt.Sprintf("invalid block hash %q", h))
	}
	if err := n.checkPinned(c, p, h); err != nil {
		return nil, err
	}
	b := n.chain.blockByHash(h)
	if b == nil || b.number() > n.viewBest.Load().number() {
		return nil, nil
	}
	return "0x" + hex.EncodeToString(b.json), nil
}

// rpcChainHeadUnpin accepts a hash or a list of hashes.
func (n *Node) rpcChainHeadUnpin(c *wsConn, p params) (any, *Error) {
	if _, err := p.str(0); err != nil {
		return nil, err
	}
	if !p.has(1) {
		return nil, errInvalidParams("missing parameter 1")
	}
	var one string
	var many []string
	if json.Unmarshal(p[1], &one) != nil && json.Unmarshal(p[1], &many) != nil {
		return nil, errInvalidParams("expected a block hash or a list of block hashes")
	}
	if err := n.followParam(c, p); err != nil {
		return nil, err
	}
	if many == nil {
		many = []string{one}
	}
	return nil, n.unpin(c, p, many)
}

// checkPinned fails with -32801 unless the follow subscription named by
// parameter 0 holds every hash pinned.
func (n *Node) checkPinned(c *wsConn, p params, hashes ...string) *Error {
	id, _ := p.str(0)
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	s := n.subs.byID[id]
	if s == nil || s.conn != c {
		return errInvalidFollowSubscription()
	}
	for _, h := range hashes {
		if !s.pinned[strings.ToLower(h)] {
			return errInvalidBlockHash()
		}
	}
	return nil
}

// unpin releases hashes, all or none: one that is not pinned (or repeated)
// fails the call, as in polkadot-sdk.
func (n *Node) unpin(c *wsConn, p params, hashes []string) *Error {
	id, _ := p.str(0)
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	s := n.subs.byID[id]
	if s == nil || s.conn != c {
		return errInvalidFollowSubscription()
	}
	seen := make(map[string]bool, len(hashes))
	for i, h := range hashes {
		h = strings.ToLower(h)
		if seen[h] || !s.pinned[h] {
			return errInvalidBlockHash()
		}
		seen[h], hashes[i] = true, h
	}
	for _, h := range hashes {
		delete(s.pinned, h)
		n.subs.pinned--
	}
	return nil
}

// StopChainHeadFollows sends {"event":"stop"} on every chainHead_v1_follow
// subscription of the node and ends them, as a node does when it cannot keep
// up. It returns how many were stopped.
func (n *Node) StopChainHeadFollows() int {
	n.chain.emitMu.Lock()
	defer n.chain.emitMu.Unlock()
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	count := 0
	for s := range n.subs.byKind[subChainHead] {
		n.stopFollowLocked(s)
		count++
	}
	return count
}

// rpcTransactionBroadcast puts the transaction into the chain's pool (a
// duplicate is silently ignored, as the spec asks) and returns a new
// operation id, valid on any connection to this node until
// transaction_v1_stop.
func (n *Node) rpcTransactionBroadcast(p params) (any, *Error) {
	ext, err := hexParam(p, 0)
	if err != nil {
		return nil, err
	}
	n.chain.submit(ext)
	n.broadcastMu.Lock()
	defer n.broadcastMu.Unlock()
	for {
		if id := randomID(); n.broadcasts[id] == "" {
			n.broadcasts[id] = ext
			return id, nil
		}
	}
}

func (n *Node) rpcTransactionStop(p params) (any, *Error) {
	id, err := p.str(0)
	if err != nil {
		return nil, err
	}
	n.broadcastMu.Lock()
	defer n.broadcastMu.Unlock()
	if _, ok := n.broadcasts[id]; !ok {
		return nil, errInvalidOperationID()
	}
	delete(n.broadcasts, id)
	return nil, nil
}

// ActiveBroadcasts returns the transaction_v1_broadcast operations of this
// node that have not been stopped.
func (n *Node) ActiveBroadcasts() int {
	n.broadcastMu.Lock()
	defer n.broadcastMu.Unlock()
	return len(n.broadcasts)
}
