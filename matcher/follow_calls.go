package matcher

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"

	"go.uber.org/zap"

	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/suber"
)

// Calls naming a shared client follow run on the hub's upstream follow,
// with its id in place of the client's. Pins are checked against the
// client's own, as a node checks a subscription's; unpin only releases
// the client's hold. Each operation gets an id of the client's own in its
// reply and events, mapped to the node's; continue or stopOperation with
// an id the client does not hold never reaches the node.

var (
	errInvalidBlockHash   = jsonrpc.NewError(-32801, "Invalid block hash")
	errInvalidOperationID = jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Invalid operation id")
	limitReached          = json.RawMessage(`{"result":"limitReached"}`)
)

// SharedFollow reports whether s is a client follow served by a shared
// upstream follow; its calls go through FollowCall.
func (s *ClientSub) SharedFollow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.follow != nil
}

// FollowCall runs a chainHead call naming the shared follow s; params are
// the client's, its follow id first. after, when set, runs once the reply
// is queued for the client (it releases the operation's events).
func (s *ClientSub) FollowCall(ctx context.Context, method string, params []json.RawMessage) (result json.RawMessage, node *suber.Node, after func(), err error) {
	s.mu.Lock()
	h, ended := s.follow, s.ended
	s.mu.Unlock()
	_, name, _ := strings.Cut(strings.TrimPrefix(method, "chainHead_"), "_")
	if h == nil || ended {
		// A stopped follow, as a node answers it.
		switch name {
		case "body", "call", "storage":
			return limitReached, nil, nil, nil
		}
		return json.RawMessage("null"), nil, nil, nil
	}
	h.mu.Lock()
	fc, up := h.clients[s], h.up
	dead := h.dead
	h.mu.Unlock()
	if fc == nil || up == nil || dead {
		return json.RawMessage("null"), nil, nil, nil
	}
	param := func(i int) (string, bool) {
		var v string
		return v, i < len(params) && json.Unmarshal(params[i], &v) == nil
	}
	switch name {
	case "unpin":
		return h.clientUnpin(fc, up, params)
	case "continue", "stopOperation":
		op, ok := param(1)
		if !ok {
			return nil, nil, nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Invalid params: expected [followSubscription, operationId]")
		}
		h.mu.Lock()
		upID, owned := fc.ops[op]
		if owned && name == "stopOperation" {
			// No event of a stopped operation follows.
			delete(fc.ops, op)
			delete(h.ops, upID)
			h.releaseSlot()
		}
		h.mu.Unlock()
		if !owned {
			if name == "stopOperation" {
				return json.RawMessage("null"), nil, nil, nil
			}
			return nil, nil, nil, errInvalidOperationID
		}
		params[1], _ = json.Marshal(upID)
	default:
		hash, ok := param(1)
		if !ok {
			return nil, nil, nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Invalid params: expected [followSubscription, hash, ...]")
		}
		h.mu.Lock()
		_, pinned := fc.pinned[strings.ToLower(hash)]
		h.mu.Unlock()
		if !pinned {
			return nil, nil, nil, errInvalidBlockHash
		}
	}
	params = append([]json.RawMessage{up.ID()}, params[1:]...)
	rewritten, merr := json.Marshal(params)
	if merr != nil {
		return nil, nil, nil, jsonrpc.ErrInvalidRequest
	}
	switch name {
	case "body", "call", "storage":
		return h.operation(ctx, s, fc, up, method, rewritten)
	}
	// A stopOperation is not refused for want of a turn: the client's id
	// of the operation is already forgotten, and it frees the node's slot.
	if name != "stopOperation" {
		done, err := h.m.acquire(ctx)
		if err != nil {
			return nil, up.Node(), nil, err
		}
		defer done()
	}
	result, err = up.Call(ctx, method, rewritten)
	return result, up.Node(), nil, err
}

// clientUnpin releases the client's pins (all or none, as a node does)
// and unpins upstream what no client holds any more.
func (h *followHub) clientUnpin(fc *followClient, up *suber.Subscription, params []json.RawMessage) (json.RawMessage, *suber.Node, func(), error) {
	if len(params) < 2 {
		return nil, nil, nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Invalid params: expected [followSubscription, hash or [hashes]]")
	}
	var hashes []string
	var one string
	if json.Unmarshal(params[1], &one) == nil {
		hashes = []string{one}
	} else if json.Unmarshal(params[1], &hashes) != nil {
		return nil, nil, nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Invalid params: expected a block hash or a list of block hashes")
	}
	h.mu.Lock()
	seen := make(map[string]bool, len(hashes))
	for i, hash := range hashes {
		hash = strings.ToLower(hash)
		if _, ok := fc.pinned[hash]; !ok || seen[hash] {
			h.mu.Unlock()
			return nil, nil, nil, errInvalidBlockHash
		}
		seen[hash], hashes[i] = true, hash
	}
	for _, hash := range hashes {
		delete(fc.pinned, hash)
		if b := h.blocks[hash]; b != nil {
			b.refs--
		}
	}
	unpin := h.collectLocked()
	h.mu.Unlock()
	h.unpinUpstream(up, unpin)
	return json.RawMessage("null"), up.Node(), nil, nil
}

// operation starts body, call or storage upstream for a client, within
// the client's and the upstream follow's operation limits.
func (h *followHub) operation(ctx context.Context, s *ClientSub, fc *followClient, up *suber.Subscription, method string, params json.RawMessage) (json.RawMessage, *suber.Node, func(), error) {
	h.mu.Lock()
	full := len(fc.ops) >= h.m.followOps()
	h.mu.Unlock()
	if full {
		return limitReached, up.Node(), nil, nil
	}
	// The upstream follow runs a bounded number of operations for all
	// clients: wait for a slot while the call may.
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return limitReached, up.Node(), nil, nil
	}
	// Then the client's turn on the chain's nodes, as for any other call.
	done, err := h.m.acquire(ctx)
	if err != nil {
		h.mu.Lock()
		h.releaseSlot()
		h.mu.Unlock()
		if ctx.Err() != nil {
			return limitReached, up.Node(), nil, nil
		}
		return nil, up.Node(), nil, err
	}
	defer done()
	// stop gets the client's id of an operation the client must not hear
	// of, or the node's for one the client was never given.
	op := s.NewOperation(func(id json.RawMessage) {
		var opID string
		_ = json.Unmarshal(id, &opID)
		h.stopOperation(up, h.forgetOperation(fc, opID))
	})
	// The slot passes to the operation if the node starts it while the
	// call is still waited for; otherwise it is freed here.
	var slotTaken, gaveUp bool // guarded by h.mu
	var upID, clientID string
	result, err := up.CallThen(ctx, method, params, func(result json.RawMessage) {
		// On the reader, before any event of the operation.
		var r struct {
			Result      string `json:"result"`
			OperationID string `json:"operationId"`
		}
		if json.Unmarshal(result, &r) == nil && r.Result == "started" && r.OperationID != "" {
			h.mu.Lock()
			if !gaveUp && h.clients[s] == fc && !h.dead {
				upID, clientID = r.OperationID, h.newOperationIDLocked(fc)
				fc.ops[clientID] = upID
				h.ops[upID] = followOp{fc: fc, id: clientID}
				slotTaken = true
				result = renameOperation(result, upID, clientID)
			}
			h.mu.Unlock()
		}
		op.Replied(result)
	})
	h.mu.Lock()
	gaveUp = true
	if !slotTaken {
		h.releaseSlot()
	}
	h.mu.Unlock()
	if err == nil && clientID != "" {
		result = renameOperation(result, upID, clientID)
	}
	return result, up.Node(), op.Release, err
}

// followOp is an operation running on the upstream follow: its client and
// the id that client knows it by.
type followOp struct {
	fc *followClient
	id string
}

// newOperationIDLocked returns an operation id the client does not hold.
func (h *followHub) newOperationIDLocked(fc *followClient) string {
	for {
		id := string(newSubscriptionID())
		id = id[1 : len(id)-1]
		if _, taken := fc.ops[id]; !taken {
			return id
		}
	}
}

// renameOperation gives a reply or event the operation id the client
// knows; a node's compact JSON is edited in place, anything else re-encoded.
func renameOperation(result json.RawMessage, from, to string) json.RawMessage {
	old := []byte(`"operationId":"` + from + `"`)
	if bytes.Contains(result, old) {
		return bytes.Replace(result, old, []byte(`"operationId":"`+to+`"`), 1)
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(result, &m) != nil {
		return result
	}
	m["operationId"], _ = json.Marshal(to)
	out, err := json.Marshal(m)
	if err != nil {
		return result
	}
	return out
}

// operationEvent sends an operation's event to the client that started
// it, under the client's id for it, held until that client has the
// operation's reply.
func (h *followHub) operationEvent(ev followEvent, result json.RawMessage) {
	h.mu.Lock()
	op, ok := h.ops[ev.OperationID]
	if !ok {
		h.mu.Unlock()
		return // stopped, or its client left
	}
	if isLastOperationEvent(ev.Event) {
		delete(h.ops, ev.OperationID)
		delete(op.fc.ops, op.id)
		h.releaseSlot()
	}
	h.mu.Unlock()
	result = renameOperation(result, ev.OperationID, op.id)
	cs := op.fc.cs
	frame := jsonrpc.AppendNotification(nil, followNotif, cs.id, result)
	if !cs.holdOperationEvent(result, frame) {
		cs.deliver(frame)
	}
}

// forgetOperation drops the client's operation id, freeing its slot, and
// returns the node's id for it (id itself when the client never had it).
func (h *followHub) forgetOperation(fc *followClient, id string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	upID, ok := fc.ops[id]
	if !ok {
		return id
	}
	delete(fc.ops, id)
	if h.ops[upID].fc == fc {
		delete(h.ops, upID)
		h.releaseSlot()
	}
	return upID
}

// releaseSlot frees an upstream operation slot.
func (h *followHub) releaseSlot() {
	select {
	case <-h.slots:
	default:
	}
}

func (h *followHub) stopOperation(up *suber.Subscription, id string) {
	params, _ := json.Marshal([]any{up.ID(), id})
	ctx, cancel := context.WithTimeout(h.m.ctx, h.m.callTimeout())
	defer cancel()
	if _, err := up.Call(ctx, "chainHead_v1_stopOperation", params); err != nil {
		if ce := h.m.log.Check(zap.DebugLevel, "stopping a chainHead operation failed"); ce != nil {
			ce.Write(zap.Error(err))
		}
	}
}
