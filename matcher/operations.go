package matcher

import (
	"encoding/json"

	"go.uber.org/zap"

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
	// operationError after the held ones.
	cut bool
	// dropping is set for an operation the client must hear no more of
	// (cut short, or started after its caller gave up): its entry stays
	// only to drop what the node still sends until it is stopped.
	dropping bool
	ended    bool // its last event was seen
}

// Operation is one chainHead operation call on a follow subscription.
type Operation struct {
	s    *ClientSub
	stop func(operationID json.RawMessage)
	// Guarded by s.mu.
	id       string // the node's operationId, once it answered "started"
	released bool
}

// NewOperation prepares an operation call on the subscription: pass
// Replied to the upstream call (suber.Subscription.CallThen) and call
// Release once the reply is queued for the client, or the call failed.
// stop ends an operation on the node; it is called in the background for
// operations the client must not hear of, after which their events stop
// being dropped and tracked.
func (s *ClientSub) NewOperation(stop func(operationID json.RawMessage)) *Operation {
	return &Operation{s: s, stop: stop}
}

// Replied is given the node's successful reply, on the connection's
// reader: from then on the operation's events are held until Release. A
// reply that comes after Release (the caller gave up waiting, so the
// client was told of a failure) starts an operation nobody will follow:
// its events are dropped and it is stopped.
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
	if s.ended {
		s.mu.Unlock()
		return
	}
	if s.ops == nil {
		s.ops = make(map[string]*heldOperation)
	}
	o.id = r.OperationID
	h := &heldOperation{dropping: o.released}
	s.ops[o.id] = h
	s.opsHeld.Store(int32(len(s.ops)))
	s.mu.Unlock()
	if h.dropping {
		if ce := s.m.log.Check(zap.DebugLevel, "stopping a chainHead operation that started after its caller gave up"); ce != nil {
			ce.Write(zap.String("method", s.method))
		}
		o.stopInBackground()
	}
}

// Release sends the events held so far; later ones go straight to the
// client.
func (o *Operation) Release() {
	s := o.s
	s.mu.Lock()
	o.released = true
	h := s.ops[o.id]
	if o.id == "" || h == nil || h.dropping {
		s.mu.Unlock()
		return
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
	if h.cut {
		s.m.log.Warn("chainHead operation cut short: too many events before its reply reached the client",
			zap.String("method", s.method), zap.Int("held", maxHeldPerOperation))
	}
	stop := h.cut && !h.ended && !s.ended
	if stop {
		h.dropping = true
	} else {
		s.forgetOperationLocked(o.id)
	}
	s.mu.Unlock()
	if stop {
		o.stopInBackground()
	}
}

// stopInBackground stops a dropping operation on the node, then forgets
// it. Called without s.mu, and maybe on the connection's reader, which the
// stop call's reply needs: so never inline, and not once the matcher is
// closed (its connections go with it).
func (o *Operation) stopInBackground() {
	s, m := o.s, o.s.m
	forget := func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if h := s.ops[o.id]; h != nil && h.dropping {
			s.forgetOperationLocked(o.id)
		}
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		forget()
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	id, _ := json.Marshal(o.id)
	go func() {
		defer m.wg.Done()
		defer forget()
		if o.stop != nil {
			o.stop(id)
		}
	}()
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
// event of an operation whose reply the client does not have yet, or
// drops it if the client must hear no more of that operation. It reports
// whether it did either.
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
	case h.dropping:
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
