package fakenode

import (
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
)

type subKind uint8

const (
	subNewHeads subKind = iota
	subAllHeads
	subFinalized
	subRuntime
	subStorage
	subExtrinsic
	subJustifications
	subChainHead
	numSubKinds
)

// subSpec describes one Substrate subscription: its notification method and
// the names (aliases included) of its subscribe and unsubscribe methods.
type subSpec struct {
	kind        subKind
	notif       string
	subscribe   []string
	unsubscribe []string
	unsubNull   bool // unsubscribe answers null (new JSON-RPC spec) instead of true/false
}

var subSpecs = []subSpec{
	{subNewHeads, "chain_newHead",
		[]string{"chain_subscribeNewHeads", "chain_subscribeNewHead", "subscribe_newHead"},
		[]string{"chain_unsubscribeNewHeads", "chain_unsubscribeNewHead", "unsubscribe_newHead"}, false},
	{subAllHeads, "chain_allHead",
		[]string{"chain_subscribeAllHeads"},
		[]string{"chain_unsubscribeAllHeads"}, false},
	{subFinalized, "chain_finalizedHead",
		[]string{"chain_subscribeFinalizedHeads", "chain_subscribeFinalisedHeads"},
		[]string{"chain_unsubscribeFinalizedHeads", "chain_unsubscribeFinalisedHeads"}, false},
	{subRuntime, "state_runtimeVersion",
		[]string{"state_subscribeRuntimeVersion", "chain_subscribeRuntimeVersion"},
		[]string{"state_unsubscribeRuntimeVersion", "chain_unsubscribeRuntimeVersion"}, false},
	{subStorage, "state_storage",
		[]string{"state_subscribeStorage"},
		[]string{"state_unsubscribeStorage"}, false},
	{subExtrinsic, "author_extrinsicUpdate",
		[]string{"author_submitAndWatchExtrinsic"},
		[]string{"author_unwatchExtrinsic"}, false},
	{subJustifications, "grandpa_justifications",
		[]string{"grandpa_subscribeJustifications"},
		[]string{"grandpa_unsubscribeJustifications"}, false},
	{subChainHead, "chainHead_v1_followEvent",
		[]string{"chainHead_v1_follow"},
		[]string{"chainHead_v1_unfollow"}, true},
}

type subscription struct {
	id     string
	spec   *subSpec
	method string // subscribe method as called, for ActiveSubscriptions
	conn   *wsConn

	// Guarded by the registry's mu.
	active  bool     // the subscribe reply has been sent
	pending [][]byte // notifications waiting for the reply
	closed  bool     // unsubscribed or connection gone: drop everything

	keys    map[string]bool // storage: watched keys; nil = all keys
	ext     string          // extrinsic: the watched extrinsic
	inBlock *block          // extrinsic: the block that included it

	withRuntime bool                  // chainHead: report runtimes
	headFin     uint64                // chainHead: number of the last finalized block reported
	headSpec    uint32                // chainHead: specVersion of the last runtime reported
	pinned      map[string]bool       // chainHead: blocks reported and not unpinned
	ops         map[string][][]string // chainHead: storage operations waiting for continue, by id: item chunks left
}

// registry holds a node's subscriptions. Its mutex is taken after the
// chain's emitMu and before any connection's mutex.
type registry struct {
	mu        sync.Mutex
	byID      map[string]*subscription
	byKind    [numSubKinds]map[*subscription]struct{}
	perMethod map[string]int
	following bool
	pinned    int // blocks pinned, summed over follow subscriptions
}

func (r *registry) init() {
	r.byID = map[string]*subscription{}
	for i := range r.byKind {
		r.byKind[i] = map[*subscription]struct{}{}
	}
	r.perMethod = map[string]int{}
	r.following = true
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randomID returns a random 16-character alphanumeric id, the form of
// Substrate's RandomStringSubscriptionId.
func randomID() string {
	var b [16]byte
	for i := range b {
		b[i] = idAlphabet[rand.IntN(len(idAlphabet))]
	}
	return string(b[:])
}

// newSubIDLocked returns a fresh subscription id.
func (r *registry) newSubIDLocked() string {
	for {
		if id := randomID(); r.byID[id] == nil {
			return id
		}
	}
}

// subscribe creates a subscription for connection c. It is held (pending)
// until activate, which the caller runs once the reply is queued, so no
// notification can overtake the reply unless early notifications are on.
func (n *Node) subscribe(c *wsConn, spec *subSpec, method string, p params) (json.RawMessage, *subscription, *Error) {
	var keys []string
	var ext string
	var withRuntime bool
	switch spec.kind {
	case subStorage:
		if p.has(0) {
			if err := p.decode(0, &keys); err != nil {
				return nil, nil, err
			}
			if keys == nil {
				keys = []string{}
			}
		}
	case subExtrinsic:
		var err *Error
		if ext, err = hexParam(p, 0); err != nil {
			return nil, nil, err
		}
	case subChainHead:
		if err := p.decode(0, &withRuntime); err != nil {
			return nil, nil, err
		}
	}

	// emitMu orders the first notification against concurrent chain changes.
	n.chain.emitMu.Lock()
	defer n.chain.emitMu.Unlock()
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	if c.gone {
		return nil, nil, errInternal()
	}
	if err := n.checkConnLimitsLocked(c, spec.kind); err != nil {
		return nil, nil, err
	}
	if ext != "" {
		if _, ok := n.chain.submit(ext); !ok {
			return nil, nil, errAlreadyImported()
		}
	}
	s := &subscription{id: n.subs.newSubIDLocked(), spec: spec, method: method, conn: c, ext: ext, withRuntime: withRuntime}
	best := n.viewBest.Load()
	switch spec.kind {
	case subNewHeads, subAllHeads:
		n.notifyLocked(s, best.json)
	case subFinalized:
		n.notifyLocked(s, n.viewFinalized.Load().json)
	case subRuntime:
		n.notifyLocked(s, runtimeVersionJSON(n.chain.specAt(best.number())))
	case subStorage:
		// Substrate sends current values only when keys were given.
		if keys != nil {
			s.keys = map[string]bool{}
			changes := make([][2]any, len(keys))
			for i, k := range keys {
				k = strings.ToLower(k)
				s.keys[k] = true
				changes[i] = [2]any{k, n.storageValue(k, best)}
			}
			n.notifyLocked(s, storageChangeSet(best.hash(), changes))
		}
	case subExtrinsic:
		n.notifyLocked(s, json.RawMessage(`"ready"`))
	case subChainHead:
		n.chainHeadInitLocked(s)
	}
	n.subs.byID[s.id] = s
	n.subs.byKind[spec.kind][s] = struct{}{}
	n.subs.perMethod[method]++
	c.subs[s.id] = s
	return json.RawMessage(strconv.Quote(s.id)), s, nil
}

// unsubscribe answers like jsonrpsee: true if the id was a live
// subscription of this kind on this connection, false otherwise; new-spec
// unsubscribes (chainHead_v1_unfollow) answer null either way.
func (n *Node) unsubscribe(c *wsConn, spec *subSpec, p params) (json.RawMessage, *Error) {
	if !p.has(0) {
		return nil, errInvalidParams("missing subscription id")
	}
	id := string(p[0])
	if p[0][0] == '"' {
		if err := json.Unmarshal(p[0], &id); err != nil {
			return nil, errInvalidParams(err.Error())
		}
	}
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	s := n.subs.byID[id]
	found := s != nil && s.conn == c && s.spec.kind == spec.kind
	if found {
		n.removeLocked(s)
	}
	switch {
	case spec.unsubNull:
		return json.RawMessage("null"), nil
	case found:
		return json.RawMessage("true"), nil
	}
	return json.RawMessage("false"), nil
}

// activate releases the notifications held for subs since they were made.
func (n *Node) activate(subs []*subscription) {
	if len(subs) == 0 {
		return
	}
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	for _, s := range subs {
		if s.closed {
			continue
		}
		s.active = true
		for _, m := range s.pending {
			s.conn.send(outMsg{data: m})
		}
		s.pending = nil
	}
}

func (n *Node) notifyLocked(s *subscription, result json.RawMessage) {
	msg := encodeNotification(s.spec.notif, s.id, result)
	if s.active {
		s.conn.send(outMsg{data: msg})
	} else {
		s.pending = append(s.pending, msg)
	}
}

// removeLocked unregisters s; with closed set, anything still held is lost.
func (n *Node) removeLocked(s *subscription) {
	s.closed = true
	s.pending = nil
	n.forgetLocked(s)
}

// forgetLocked unregisters s but lets held notifications still go out once
// it is activated (an extrinsic can finalize before a delayed reply is sent).
func (n *Node) forgetLocked(s *subscription) {
	if n.subs.byID[s.id] != s {
		return
	}
	delete(n.subs.byID, s.id)
	delete(n.subs.byKind[s.spec.kind], s)
	if n.subs.perMethod[s.method]--; n.subs.perMethod[s.method] == 0 {
		delete(n.subs.perMethod, s.method)
	}
	delete(s.conn.subs, s.id)
	if s.spec.kind == subChainHead {
		n.releaseFollowLocked(s)
	}
}

// dropConnSubs ends every subscription of a closing connection.
func (n *Node) dropConnSubs(c *wsConn) {
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	c.gone = true
	for _, s := range c.subs {
		n.removeLocked(s)
	}
}

// storageValue is the JSON value of key at block b: a hex string or null.
func (n *Node) storageValue(key string, b *block) any {
	if v, ok := n.chain.storageAt(key, b.number()); ok {
		return v
	}
	return nil
}

func storageChangeSet(blockHash string, changes [][2]any) json.RawMessage {
	js, _ := json.Marshal(struct {
		Block   string   `json:"block"`
		Changes [][2]any `json:"changes"`
	}{blockHash, changes})
	return js
}

// hexParam reads parameter i as 0x-prefixed hex bytes, lower-cased.
func hexParam(p params, i int) (string, *Error) {
	s, err := p.str(i)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(s, "0x") {
		return "", errInvalidParams("invalid hex: missing 0x prefix")
	}
	if _, derr := hex.DecodeString(s[2:]); derr != nil {
		return "", errInvalidParams("invalid hex: " + derr.Error())
	}
	return strings.ToLower(s), nil
}

// errAlreadyImported is Substrate's transaction pool error for a duplicate.
func errAlreadyImported() *Error {
	return &Error{Code: 1013, Message: "Transaction Already Imported"}
}
