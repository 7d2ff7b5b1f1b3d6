package suber

// Subscriptions is how many subscriptions the node holds for the gateway
// now, on every connection: clients' (shared or not) and the gateway's own
// head subscriptions.
func (n *Node) Subscriptions() int {
	total := 0
	for _, s := range n.slots {
		sess := s.cur.Load()
		if sess == nil {
			continue
		}
		sess.mu.Lock()
		total += len(sess.subs)
		sess.mu.Unlock()
	}
	return total
}
