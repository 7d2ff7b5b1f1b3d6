package suber

// PendingCalls is how many calls wait for the node's reply now, on its
// pool's connections: a node leaving its chain is closed once they are
// answered, so they are not cut short.
func (n *Node) PendingCalls() int {
	return n.sumPool(func(s *session) int { return len(s.pending) })
}
