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
// descendantsHashes are served (closestDescendantMerkleValue yields none).
// Operations finish at once, so chainHead_v1_continue always fails and
// chainHead_v1_stopOperation has nothing to stop. A block the node does not
// know fails with -32801, as polkadot-sdk answers a hash that is not pinned.
// LimitOperations makes some answer {"result":"limitReached"} instead.

var operationCalls = map[string]func(*Node, *wsConn, params) (any, func(), *Error){
	"chainHead_v1_body":    (*Node).rpcChainHeadBody,
	"chainHead_v1_call":    (*Node).rpcChainHeadCall,
	"chainHead_v1_storage": (*Node).rpcChainHeadStorage,
}

// rpcChainHeadContinue fails: operations finish at once, so none waits.
func (n *Node) rpcChainHeadContinue(c *wsConn, p params) (any, *Error) {
	if err := n.followParam(c, p); err != nil {
		return nil, err
	}
	return nil, errInvalidOperationID()
}

// rpcChainHeadStopOperation has nothing to stop: it only checks params.
func (n *Node) rpcChainHeadStopOperation(c *wsConn, p params) (any, *Error) {
	if _, err := p.str(1); err != nil {
		return nil, err
	}
	return nil, n.followParam(c, p)
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
	var events []func(string) any
	if len(items) > 0 {
		events = append(events, func(id string) any {
			return struct {
				operationEvent
				Items []storageResultItem `json:"items"`
			}{operationEvent{"operationStorageItems", id}, items}
		})
	}
	return n.operation(c, sub, append(events, done("operationStorageDone"))...)
}
