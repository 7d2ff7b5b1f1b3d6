package suber

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elara-gateway/elara/methods"
)

// ErrNoReadyNode means every node of the chain is down, syncing, lagging
// or stalled.
var ErrNoReadyNode = errors.New("no ready upstream node (all are down, syncing or behind)")

// Readiness decides when a node may serve users.
type Readiness struct {
	// MaxLag is how many blocks a node's best head may trail the best
	// ready node's.
	MaxLag uint64
	// HeadTimeout is how long a node may go without a new head while
	// another node of the chain keeps seeing them. Zero disables the rule.
	HeadTimeout time.Duration
}

// DefaultReadiness is used for zero fields.
var DefaultReadiness = Readiness{MaxLag: 5, HeadTimeout: time.Minute}

// Group is the set of nodes serving one chain. Calls go round-robin to
// the nodes that are ready.
type Group struct {
	// nodes and rules change on a reload that keeps the chain
	// (group_update.go); readers take one snapshot per decision.
	nodes atomic.Pointer[[]*Node]
	rules atomic.Pointer[Readiness]
	rr    atomic.Uint64
	// sched admits client calls fairly (scheduler.go).
	sched *Scheduler

	mu      sync.Mutex
	changed chan struct{}
	unwatch map[*Node]func()
}

// NewGroup returns a group over nodes (which it does not own).
func NewGroup(nodes []*Node, rules Readiness) *Group {
	g := &Group{changed: make(chan struct{}), sched: NewScheduler(SchedulerLimits{}), unwatch: make(map[*Node]func())}
	g.rules.Store(&rules)
	g.mu.Lock()
	g.setNodesLocked(nodes)
	g.mu.Unlock()
	return g
}

// Close stops watching the nodes.
func (g *Group) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for n, u := range g.unwatch {
		u()
		delete(g.unwatch, n)
	}
}

// Nodes are the group's nodes, in configuration order.
func (g *Group) Nodes() []*Node { return *g.nodes.Load() }

// Changes returns a channel closed at the next change of any node's health.
func (g *Group) Changes() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.changed
}

func (g *Group) signal() {
	g.mu.Lock()
	close(g.changed)
	g.changed = make(chan struct{})
	g.mu.Unlock()
}

// Health reports every node, with the group's verdict on each.
func (g *Group) Health() []Health {
	return g.health(g.Nodes())
}

// NodeHealth is Health with the nodes it is about, taken together.
func (g *Group) NodeHealth() ([]*Node, []Health) {
	nodes := g.Nodes()
	return nodes, g.health(nodes)
}

// health reports nodes, a snapshot of the group's.
func (g *Group) health(nodes []*Node) []Health {
	hs := make([]Health, len(nodes))
	for i, n := range nodes {
		hs[i] = n.Health()
	}
	g.judge(hs)
	return hs
}

// judge fills Ready and NotReadyBecause by comparing the nodes. The head
// timeout is applied first, so the lag is measured against nodes that pass
// it: a node stalled ahead of the others must not make them all "behind".
func (g *Group) judge(hs []Health) {
	rules := *g.rules.Load()
	var newest time.Time
	candidate := make([]bool, len(hs))
	for i, h := range hs {
		switch {
		case !h.Connected:
			hs[i].NotReadyBecause = "not connected"
		case !h.Checked:
			hs[i].NotReadyBecause = "health not checked yet"
		case h.Syncing:
			hs[i].NotReadyBecause = "syncing"
		case h.ShouldHavePeers && h.Peers == 0:
			hs[i].NotReadyBecause = "no peers"
		default:
			candidate[i] = true
			if h.LastHeadAt.After(newest) {
				newest = h.LastHeadAt
			}
		}
	}
	var maxBest uint64
	for i, h := range hs {
		if !candidate[i] {
			continue
		}
		if rules.HeadTimeout > 0 && newest.Sub(h.LastHeadAt) > rules.HeadTimeout {
			hs[i].NotReadyBecause = fmt.Sprintf("no new head for %s while others see them", newest.Sub(h.LastHeadAt).Round(time.Second))
			candidate[i] = false
			continue
		}
		maxBest = max(maxBest, h.Best)
	}
	for i, h := range hs {
		if !candidate[i] {
			continue
		}
		if h.Best+rules.MaxLag < maxBest {
			hs[i].NotReadyBecause = fmt.Sprintf("best head %d is more than %d blocks behind %d", h.Best, rules.MaxLag, maxBest)
			continue
		}
		hs[i].Ready = true
	}
}

// Ready reports whether n may serve users now.
func (g *Group) Ready(n *Node) bool {
	nodes, hs := g.NodeHealth()
	for i, h := range hs {
		if nodes[i] == n {
			return h.Ready
		}
	}
	return false
}

// ReadyCount is how many nodes may serve users now.
func (g *Group) ReadyCount() int {
	c := 0
	for _, h := range g.Health() {
		if h.Ready {
			c++
		}
	}
	return c
}

// pending reports whether some node may become ready any moment: still
// making its first connection, or connected and not yet checked.
func (g *Group) pending(nodes []*Node, hs []Health) bool {
	for i, h := range hs {
		n := nodes[i]
		select {
		case <-n.tried:
		default:
			return true
		}
		if h.Connected && !h.Checked && h.FailedChecks < failuresToUnready {
			return true
		}
	}
	return false
}

// pick returns the next ready node that satisfies want and is not skip.
// While no node is ready but one may soon be, it waits, bounded by ctx.
func (g *Group) pick(ctx context.Context, want func(*Node) bool, skip *Node) (*Node, error) {
	for {
		changes := g.Changes()
		nodes, hs := g.NodeHealth()
		start := g.rr.Add(1)
		for i := range nodes {
			j := int((start + uint64(i)) % uint64(len(nodes)))
			if hs[j].Ready && nodes[j] != skip && want(nodes[j]) {
				return nodes[j], nil
			}
		}
		if !g.pending(nodes, hs) {
			return nil, ErrNoReadyNode
		}
		select {
		case <-changes:
		case <-ctx.Done():
			return nil, ErrNoReadyNode
		}
	}
}

func anyNode(*Node) bool { return true }

// Call sends a request to a ready node. A read that loses its connection
// mid-flight is retried once on another ready node, or, with none, on
// another connection of the same node: a connection dropped because of
// someone else's call must not cost this one. Writes are never retried,
// as the first node may have acted on them.
func (g *Group) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	result, _, err := g.CallFrom(ctx, method, params)
	return result, err
}

// CallFrom is Call that also reports the node that answered (or last
// failed; nil when none was picked).
func (g *Group) CallFrom(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, *Node, error) {
	done, err := g.sched.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer done()
	n, err := g.pick(ctx, anyNode, nil)
	if err != nil {
		return nil, nil, err
	}
	result, err := n.Call(ctx, method, params)
	if err != nil && g.lost(n, err) && ctx.Err() == nil && !IsWrite(method) {
		other, perr := g.pick(ctx, anyNode, n)
		if perr != nil {
			if !n.Connected() {
				return result, n, err
			}
			other = n
		}
		result, err = other.Call(ctx, method, params)
		return result, other, err
	}
	return result, n, err
}

// CallNode sends a request to a ready node, never retried, and reports
// which node answered, for calls whose follow-ups must go to the same node.
func (g *Group) CallNode(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, *Node, error) {
	done, err := g.sched.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer done()
	n, err := g.pick(ctx, anyNode, nil)
	if err != nil {
		return nil, nil, err
	}
	result, err := n.Call(ctx, method, params)
	return result, n, err
}

// Subscribe opens a subscription on a ready node with a WebSocket transport.
func (g *Group) Subscribe(ctx context.Context, method string, params json.RawMessage, unsubMethod string, sink Sink) (*Subscription, error) {
	n, err := g.pick(ctx, (*Node).SupportsSubscriptions, nil)
	if err != nil {
		if len(g.Nodes()) > 0 && !g.anySubscriptions() {
			return nil, ErrNoSubscriptions
		}
		return nil, err
	}
	return n.Subscribe(ctx, method, params, unsubMethod, sink)
}

func (g *Group) anySubscriptions() bool {
	for _, n := range g.Nodes() {
		if n.SupportsSubscriptions() {
			return true
		}
	}
	return false
}

// IsWrite reports whether method may change state on the node (submit
// a transaction, say): such calls are never retried on another node.
func IsWrite(method string) bool { return methods.IsWrite(method) }
