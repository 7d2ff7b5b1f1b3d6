package fakenode

import (
	"encoding/json"
	"sync"
	"sync/atomic"
)

// counters are lock-free on the hot path: after its first call a method's
// counter is a sync.Map hit plus an atomic add.
type counters struct {
	calls sync.Map // method -> *atomic.Int64
	total atomic.Int64
	last  sync.Map // method -> json.RawMessage
}

func (s *counters) record(method string, raw json.RawMessage) {
	v, ok := s.calls.Load(method)
	if !ok {
		v, _ = s.calls.LoadOrStore(method, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
	s.total.Add(1)
	s.last.Store(method, raw) // raw is never modified afterwards
}

// Calls returns how many requests for method the node received, over HTTP
// and WebSocket, counting batch entries individually and including dropped
// or delayed ones. Invalid request objects are not counted.
func (n *Node) Calls(method string) int {
	if v, ok := n.stats.calls.Load(method); ok {
		return int(v.(*atomic.Int64).Load())
	}
	return 0
}

// TotalCalls returns the number of requests received for any method.
func (n *Node) TotalCalls() int { return int(n.stats.total.Load()) }

// LastRequest returns the raw bytes of the last request object received for
// method (nil if none), e.g. to check what a gateway forwarded.
func (n *Node) LastRequest(method string) json.RawMessage {
	if v, ok := n.stats.last.Load(method); ok {
		return append(json.RawMessage(nil), v.(json.RawMessage)...)
	}
	return nil
}

// ResetCounters zeroes the call counters and forgets the last requests.
// Subscription and connection counts reflect live state and are not reset.
func (n *Node) ResetCounters() {
	n.stats.calls.Range(func(_, v any) bool {
		v.(*atomic.Int64).Store(0)
		return true
	})
	n.stats.total.Store(0)
	n.stats.last.Clear()
}

// ActiveSubscriptions returns the number of open subscriptions created by
// the subscribe method with this exact name (aliases count separately:
// "chain_subscribeNewHead" is not "chain_subscribeNewHeads").
func (n *Node) ActiveSubscriptions(method string) int {
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	return n.subs.perMethod[method]
}

// TotalActiveSubscriptions returns the number of open subscriptions.
func (n *Node) TotalActiveSubscriptions() int {
	n.subs.mu.Lock()
	defer n.subs.mu.Unlock()
	return len(n.subs.byID)
}

// Connections returns the number of open WebSocket connections.
func (n *Node) Connections() int {
	n.connMu.Lock()
	defer n.connMu.Unlock()
	return len(n.conns)
}

// ConnectionsAccepted returns how many WebSocket connections the node has
// accepted since it started: a gateway that lost connections and dialled
// again shows more than it keeps open.
func (n *Node) ConnectionsAccepted() int { return int(n.accepted.Load()) }

// InvalidFrames returns how many connections the node closed with 1007
// because a text frame was not valid UTF-8.
func (n *Node) InvalidFrames() int { return int(n.invalidFrames.Load()) }
