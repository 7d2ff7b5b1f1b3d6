package suber

import (
	"context"
	"encoding/json"
	"sync/atomic"
)

// Group is the set of nodes serving one chain. Calls are spread
// round-robin over the nodes that are connected.
type Group struct {
	nodes []*Node
	rr    atomic.Uint64
}

// NewGroup returns a group over nodes (which it does not own).
func NewGroup(nodes []*Node) *Group { return &Group{nodes: nodes} }

// Nodes are the group's nodes, in configuration order.
func (g *Group) Nodes() []*Node { return g.nodes }

// pick returns the next connected node that satisfies want, or, when none
// is connected, the next node that does (its call fails fast or waits for
// its first connection).
func (g *Group) pick(want func(*Node) bool) *Node {
	if len(g.nodes) == 0 {
		return nil
	}
	start := g.rr.Add(1)
	var fallback *Node
	for i := range g.nodes {
		n := g.nodes[(start+uint64(i))%uint64(len(g.nodes))]
		if !want(n) {
			continue
		}
		if n.Connected() {
			return n
		}
		if fallback == nil {
			fallback = n
		}
	}
	return fallback
}

func anyNode(*Node) bool { return true }

// Call sends a request to one node of the group.
func (g *Group) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	n := g.pick(anyNode)
	if n == nil {
		return nil, ErrUnavailable
	}
	return n.Call(ctx, method, params)
}

// Subscribe opens a subscription on one node that has a WebSocket transport.
func (g *Group) Subscribe(ctx context.Context, method string, params json.RawMessage, unsubMethod string, sink Sink) (*Subscription, error) {
	n := g.pick((*Node).SupportsSubscriptions)
	if n == nil {
		return nil, ErrNoSubscriptions
	}
	return n.Subscribe(ctx, method, params, unsubMethod, sink)
}
