package suber

// Subscriptions is how many subscriptions the node holds for the gateway
// now, on every connection: clients' (shared or not) and the gateway's own
// head subscriptions.
func (n *Node) Subscriptions() int {
	return n.sumPool(func(s *session) int { return len(s.subs) })
}

// sumPool adds count up over the pool's connections, each under its lock.
func (n *Node) sumPool(count func(*session) int) int {
	total := 0
	for _, s := range n.slots {
		sess := s.cur.Load()
		if sess == nil {
			continue
		}
		sess.mu.Lock()
		total += count(sess)
		sess.mu.Unlock()
	}
	return total
}
