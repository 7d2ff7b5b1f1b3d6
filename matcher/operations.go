package matcher

import (
	"encoding/json"

	"github.com/elara-gateway/elara/jsonrpc"
)

// The chainHead spec has a node answer chainHead_v1_body, _call and
// _storage with {"result":"started","operationId":id} before any event of
// that operation. The node keeps that order on the wire, but the gateway
// relays the reply from the calling goroutine and the events from the
// connection's reader, so an event could overtake its reply. An Operation
// holds its events from the moment the reader sees the reply until the
// reply is queued for the client.

// maxHeldPerOperation bounds events held for one operation. A node pauses
// an operation after a few events (operationWaitingForContinue) and its
// reply is queued a moment after it arrived, so only a misbehaving node
// reaches it; the operation is then cut short with operationError and
// stopped on the node rather than held without limit.
const maxHeldPerOperation = 256

// heldOperation is the state of an operation whose events are held.
type heldOperation struct {
	frames [][]byte
	// cut is set once events were dropped at the bound; the client gets
	// operationError after the held ones, and the rest is dropped.
	cut bool
	// released is set when a cut operation's reply went out: its entry
	// stays only to drop what the node still sends.
	released bool
	ended    bool // its last event was seen
}

// Operation is one chainHead operation call on a follow subscription.
type Operation struct {
	s  *ClientSub
	id string // the node's operationId, once it answered "started"
}

// NewOperation prepares an operation call on the subscription: pass
// Replied to the upstream call (suber.Subscription.CallThen) and call
// Release once the reply is queued for the client, or the call failed.
func (s *ClientSub) NewOperation() *Operation { return &Operation{s: s} }

// Replied is given the node's successful reply, on the connection's
// reader: from then on the operation's events are held until Release.
func (o *Operation) Replied(result json.RawMessage) {
	var r struct {
		Result      string `json:"result"`
		OperationID string `json:"operationId"`
	}
	if json.Unmarshal(result, &r) != nil || r.Result != "started" || r.OperationID == "" {
		// limitReached and errors start nothing: no event follows.
		return
	}
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	if s.ops == nil {
		s.ops = make(map[string]*heldOperation)
	}
	o.id = r.OperationID
	s.ops[o.id] = &heldOperation{}
	s.opsHeld.Store(int32(len(s.ops)))
}

// Release sends the events held so far; later ones go straight to the
// client. It reports whether the operation was cut short, in which case
// the caller stops it on the node (with ID) and then calls Forget.
func (o *Operation) Release() (cut bool) {
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.ops[o.id]
	if o.id == "" || h == nil || h.released {
		return false
	}
	if !s.ended {
		for _, f := range h.frames {
			s.client.Send(f)
		}
		if h.cut {
			s.client.Send(s.operationErrorFrame(o.id, "too many events before the operation's reply"))
		}
	}
	h.frames = nil
	if h.cut && !h.ended && !s.ended {
		h.released = true
		return true
	}
	s.forgetOperationLocked(o.id)
	return false
}

// ID is the node's operation id as JSON, or nil if none was started.
func (o *Operation) ID() json.RawMessage {
	if o.id == "" {
		return nil
	}
	id, _ := json.Marshal(o.id)
	return id
}

// Forget drops what is left of a cut operation once it was stopped.
func (o *Operation) Forget() {
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.ops[o.id]; h != nil && h.released {
		s.forgetOperationLocked(o.id)
	}
}

func (s *ClientSub) forgetOperationLocked(id string) {
	delete(s.ops, id)
	s.opsHeld.Store(int32(len(s.ops)))
}

func (s *ClientSub) operationErrorFrame(id, msg string) []byte {
	ev, _ := json.Marshal(struct {
		Event       string `json:"event"`
		OperationID string `json:"operationId"`
		Error       string `json:"error"`
	}{"operationError", id, msg})
	return jsonrpc.AppendNotification(nil, s.notificationMethod(), s.id, ev)
}

// holdOperationEvent holds frame, the notification of result, if it is an
// event of an operation whose reply the client does not have yet (or
// drops it if that operation was cut short). It reports whether it did.
func (s *ClientSub) holdOperationEvent(result json.RawMessage, frame []byte) bool {
	if s.opsHeld.Load() == 0 {
		// Entries are only added on this reader, so none can appear now.
		return false
	}
	var ev struct {
		Event       string `json:"event"`
		OperationID string `json:"operationId"`
	}
	if json.Unmarshal(result, &ev) != nil || ev.OperationID == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.ops[ev.OperationID]
	if h == nil {
		return false
	}
	last := isLastOperationEvent(ev.Event)
	switch {
	case h.released:
		if last {
			s.forgetOperationLocked(ev.OperationID)
		}
		return true
	case h.cut:
	case len(h.frames) < maxHeldPerOperation:
		h.frames = append(h.frames, frame)
	default:
		h.cut = true
	}
	h.ended = h.ended || last
	return true
}

// isLastOperationEvent reports whether no event of the operation follows.
func isLastOperationEvent(event string) bool {
	switch event {
	case "operationBodyDone", "operationCallDone", "operationStorageDone",
		"operationError", "operationInaccessible":
		return true
	}
	return false
}
