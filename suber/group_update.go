package suber

import (
	"errors"
	"slices"
)

// A chain kept across a config reload keeps its group: the reload
// changes the group's nodes and readiness rules in place, so what depends
// on the group (shared subscriptions, the cache, queued calls) carries on.

// SetNodes makes nodes the group's nodes. Subscriptions on a node that
// leaves are moved by their owners as on a node that stops being ready
// (the change is signalled, and Ready is false for a node not in the
// group); calls in flight on it finish there or, when it closes, are
// retried on another node like calls on a lost connection.
func (g *Group) SetNodes(nodes []*Node) {
	g.mu.Lock()
	changed := !slices.Equal(nodes, g.Nodes())
	if changed {
		g.setNodesLocked(nodes)
	}
	g.mu.Unlock()
	if changed {
		g.signal()
	}
}

// setNodesLocked stores nodes and watches exactly them. g.mu is held.
func (g *Group) setNodesLocked(nodes []*Node) {
	nodes = slices.Clone(nodes)
	for n, u := range g.unwatch {
		if !slices.Contains(nodes, n) {
			u()
			delete(g.unwatch, n)
		}
	}
	for _, n := range nodes {
		if g.unwatch[n] == nil {
			g.unwatch[n] = n.onChange(g.signal)
		}
	}
	g.nodes.Store(&nodes)
}

// SetReadiness replaces the rules that decide when a node may serve.
func (g *Group) SetReadiness(rules Readiness) {
	if old := g.rules.Load(); *old == rules {
		return
	}
	g.rules.Store(&rules)
	g.signal()
}

// Readiness returns the rules in force.
func (g *Group) Readiness() Readiness { return *g.rules.Load() }

// lost reports whether a call that failed on n with err never reached
// an answer because of n's connection: it was lost, or n was closed after
// leaving the group.
func (g *Group) lost(n *Node, err error) bool {
	if errors.Is(err, ErrConnectionLost) {
		return true
	}
	return errors.Is(err, ErrClosed) && !slices.Contains(g.Nodes(), n)
}

// Has reports whether n is one of the group's nodes.
func (g *Group) Has(n *Node) bool { return slices.Contains(g.Nodes(), n) }
