package matcher

import "github.com/elara-gateway/elara/suber"

// A reload may take a node out of the chain's config while it still
// works. Shared head subscriptions on it are then moved without a gap:
// the old upstream subscription keeps delivering until one on a ready
// node is open, and heads of both are merged by number (never repeated,
// never going back). Other subscriptions move as off a node that stops
// being ready.

// members is the part of an Upstream that knows its current nodes
// (*suber.Group).
type members interface {
	Has(n *suber.Node) bool
}

// leaving reports whether s is a head subscription on n, a connected
// node that left the upstream's nodes.
func (s *sharedSub) leaving(n *suber.Node) bool {
	if s.fam.Name != "newHeads" && s.fam.Name != "finalizedHeads" {
		return false
	}
	m, ok := s.m.up.(members)
	return ok && !m.Has(n) && n.Connected()
}

// SharedOn is how many shared subscriptions are open on n.
func (m *Matcher) SharedOn(n *suber.Node) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := 0
	for _, s := range m.shared {
		if s.node() == n {
			c++
		}
	}
	return c
}
