package matcher

import (
	"context"

	"github.com/elara-gateway/elara/suber"
)

// scheduled is an Upstream that admits client calls in turn (a
// *suber.Group): calls on a follow wait for it as any client call does, so
// max_calls_in_flight, max_upstream_calls and max_pending_calls bound them
// and one follower cannot hold up the others on the shared connection.
type scheduled interface {
	Scheduler() *suber.Scheduler
}

// acquire waits for the turn of a client's call made with ctx and returns
// the function that ends it. Calls made for no client, or on an upstream
// without a scheduler, go straight through.
func (m *Matcher) acquire(ctx context.Context) (release func(), err error) {
	if s, ok := m.up.(scheduled); ok {
		if sched := s.Scheduler(); sched != nil {
			return sched.Acquire(ctx)
		}
	}
	return func() {}, nil
}
