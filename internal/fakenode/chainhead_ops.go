package fakenode

import (
	"encoding/json"
	"fmt"
	"strings"
)

// chainHead_v1_body, _call and _storage answer {"result":"started",
// "operationId":id} and send the operation's events on the follow
// subscription right behind the reply, as a real node may:
//
//	body:    {"event":"operationBodyDone","operationId":id,"value":[extrinsics]}
//	call:    {"event":"operationCallDone","operationId":id,"output":"0x"}
//	storage: {"event":"operationStorageItems","operationId":id,"items":[...]} (if any)
//	         {"event":"operationStorageDone","operationId":id}
//
// Storage items of type value, hash, descendantsValues and
// descendantsHashes are served (closestDescendantMerkleValue yields none),
// a few at a time (chainhead_limits.go): a storage operation with more
// waits for chainHead_v1_continue between chunks. Body and call finish at
// once. A block the node does not
// know fails with -32801, as polkadot-sdk answers a hash that is not pinned.
// LimitOperations makes some answer {"result":"limitReached"} instead.

var operationCalls = map[string]func(*Node, *wsConn, params) (any, func(), *Error){
	"chainHead_v1_body":    (*Node).rpcChainHeadBody,
	"chainHead_v1_call":    (*Node).rpcChainHeadCall,
	"chainHead_v1_storage": (*Node).rpcChainHeadStorage,
}

// rpcChainHeadContinue resumes a storage operation waiting for it; any
// other operation id fails.
func (n *Node) rpcChainHeadContinue(c *wsConn, p params) (any, *Error) {
	if err := n.followParam(c, p); err != nil {
		return nil, err
	}
	sub, _ := p.str(0)
	op, err := p.str(1)
	if err != nil {
		return nil, err
	}
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	s := n.subs.byID[sub]
	if s == nil || s.conn != c || s.ops[op] == nil {
		return nil, errInvalidOperationID()
	}
	n.sendStorageChunkLocked(s, op, s.ops[op])
	return nil, nil
}

// rpcChainHeadStopOperation ends a storage operation waiting for continue;
// others have finished already.
func (n *Node) rpcChainHeadStopOperation(c *wsConn, p params) (any, *Error) {
	op, err := p.str(1)
	if err != nil {
		return nil, err
	}
	if err := n.followParam(c, p); err != nil {
		return nil, err
	}
	sub, _ := p.str(0)
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	if s := n.subs.byID[sub]; s != nil && s.conn == c {
		delete(s.ops, op)
	}
	return nil, nil
}

// opsRunning is how many operations the subscription named by parameter 0
// has waiting for continue (the others finish at once).
func (n *Node) opsRunning(c *wsConn, p params) int {
	id, _ := p.str(0)
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	if s := n.subs.byID[id]; s != nil && s.conn == c {
		return len(s.ops)
	}
	return 0
}

// sendStorageChunkLocked reports the next chunk of a storage operation's
// items, then operationWaitingForContinue if more are left, or
// operationStorageDone.
func (n *Node) sendStorageChunkLocked(s *subscription, id string, chunks [][]string) {
	if len(chunks) > 0 {
		items := make([]json.RawMessage, len(chunks[0]))
		for i, it := range chunks[0] {
			items[i] = json.RawMessage(it)
		}
		n.notifyLocked(s, mustJSON(struct {
			operationEvent
			Items []json.RawMessage `json:"items"`
		}{operationEvent{"operationStorageItems", id}, items}))
		chunks = chunks[1:]
	}
	if len(chunks) > 0 {
		if s.ops == nil {
			s.ops = map[string][][]string{}
		}
		s.ops[id] = chunks
		n.notifyLocked(s, mustJSON(operationEvent{"operationWaitingForContinue", id}))
		return
	}
	delete(s.ops, id)
	n.notifyLocked(s, mustJSON(operationEvent{"operationStorageDone", id}))
}

// LimitOperations makes every n-th chainHead operation (body, call,
// storage) answer {"result":"limitReached"}, as a node does when a follow
// subscription has too many operations running, counting from this call;
// 0 turns it off.
func (n *Node) LimitOperations(every int) {
	n.opCount.Store(0)
	n.opLimitEvery.Store(int64(every))
}

func errInvalidBlockHash() *Error {
	return &Error{Code: -32801, Message: "Invalid block hash"}
}

// startOperation checks the follow subscription and block of an operation
// call and returns the block, or the limitReached answer.
func (n *Node) startOperation(c *wsConn, p params) (b *block, limited bool, err *Error) {
	h, err := p.str(1)
	if err != nil {
		return nil, false, err
	}
	if err := n.followParam(c, p); err != nil {
		return nil, false, err
	}
	if !hashRE.MatchString(h) {
		return nil, false, errInvalidParams(fmt.Sprintf("invalid block hash %q", h))
	}
	if b = n.chain.blockByHash(h); b == nil || b.number() > n.viewBest.Load().number() {
		return nil, false, errInvalidBlockHash()
	}
	if err := n.checkPinned(c, p, h); err != nil {
		return nil, false, err
	}
	if n.opsRunning(c, p) >= n.limits.Operations {
		return nil, true, nil
	}
	count := n.opCount.Add(1)
	if every := n.opLimitEvery.Load(); every > 0 && count%every == 0 {
		return nil, true, nil
	}
	return b, false, nil
}

var limitReached = json.RawMessage(`{"result":"limitReached"}`)

// operation answers "started" with a new id; the returned func sends
// events (each given the id) on follow subscription sub of c.
func (n *Node) operation(c *wsConn, sub string, events ...func(id string) any) (any, func(), *Error) {
	id := randomID()
	send := func() {
		n.subs.mu.Lock()
		defer n.subs.mu.Unlock()
		s := n.subs.byID[sub]
		if s == nil || s.conn != c {
			return // unfollowed meanwhile: its operations end with it
		}
		for _, ev := range events {
			n.notifyLocked(s, mustJSON(ev(id)))
		}
	}
	return json.RawMessage(`{"result":"started","operationId":"` + id + `"}`), send, nil
}

type operationEvent struct {
	Event       string `json:"event"`
	OperationID string `json:"operationId"`
}

func done(event string) func(string) any {
	return func(id string) any { return operationEvent{event, id} }
}

func (n *Node) rpcChainHeadBody(c *wsConn, p params) (any, func(), *Error) {
	b, limited, err := n.startOperation(c, p)
	if err != nil {
		return nil, nil, err
	}
	if limited {
		return limitReached, nil, nil
	}
	sub, _ := p.str(0)
	ext := append([]string{}, b.extrinsics...)
	return n.operation(c, sub, func(id string) any {
		return struct {
			operationEvent
			Value []string `json:"value"`
		}{operationEvent{"operationBodyDone", id}, ext}
	})
}

func (n *Node) rpcChainHeadCall(c *wsConn, p params) (any, func(), *Error) {
	if _, err := p.str(2); err != nil {
		return nil, nil, err
	}
	if _, err := hexParam(p, 3); err != nil {
		return nil, nil, err
	}
	_, limited, err := n.startOperation(c, p)
	if err != nil {
		return nil, nil, err
	}
	if limited {
		return limitReached, nil, nil
	}
	sub, _ := p.str(0)
	return n.operation(c, sub, func(id string) any {
		return struct {
			operationEvent
			Output string `json:"output"`
		}{operationEvent{"operationCallDone", id}, "0x"}
	})
}

type storageQueryItem struct {
	Key  string `json:"key"`
	Type string `json:"type"`
}

type storageResultItem struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
	Hash  string `json:"hash,omitempty"`
}

func (n *Node) rpcChainHeadStorage(c *wsConn, p params) (any, func(), *Error) {
	var query []storageQueryItem
	if err := p.decode(2, &query); err != nil {
		return nil, nil, err
	}
	for _, q := range query {
		if !strings.HasPrefix(q.Key, "0x") {
			return nil, nil, errInvalidParams(fmt.Sprintf("invalid storage key %q", q.Key))
		}
	}
	b, limited, err := n.startOperation(c, p)
	if err != nil {
		return nil, nil, err
	}
	if limited {
		return limitReached, nil, nil
	}
	var items []storageResultItem
	add := func(key, typ string) {
		v, ok := n.chain.storageAt(key, b.number())
		switch {
		case !ok:
		case typ == "value" || typ == "descendantsValues":
			items = append(items, storageResultItem{Key: key, Value: v})
		default:
			items = append(items, storageResultItem{Key: key, Hash: hashHex(v)})
		}
	}
	for _, q := range query {
		switch q.Type {
		case "value", "hash":
			add(strings.ToLower(q.Key), q.Type)
		case "descendantsValues", "descendantsHashes":
			for _, k := range n.chain.keysAt(strings.ToLower(q.Key), b.number()) {
				add(k, q.Type)
			}
		}
	}
	sub, _ := p.str(0)
	// Items go out StorageItems at a time, each chunk after the first
	// only on chainHead_v1_continue.
	var chunks [][]string
	for i := 0; i < len(items); i += n.limits.StorageItems {
		chunk := make([]string, 0, n.limits.StorageItems)
		for _, it := range items[i:min(i+n.limits.StorageItems, len(items))] {
			chunk = append(chunk, string(mustJSON(it)))
		}
		chunks = append(chunks, chunk)
	}
	id := randomID()
	send := func() {
		n.subs.mu.Lock()
		defer n.subs.mu.Unlock()
		if s := n.subs.byID[sub]; s != nil && s.conn == c {
			n.sendStorageChunkLocked(s, id, chunks)
		}
	}
	return json.RawMessage(`{"result":"started","operationId":"` + id + `"}`), send, nil
}
