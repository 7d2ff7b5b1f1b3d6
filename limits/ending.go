package limits

import "context"

// AdmitEnding decides whether a call of s that ends something s holds (a
// subscription, a broadcast, an operation) may go on, and counts it if
// so. Daily limits do not refuse it: a client may always end what it
// started, and ending frees the node's resources. The rate still applies,
// so ending cannot be used to flood the nodes.
func (e *Enforcer) AdmitEnding(ctx context.Context, s Subject) *Exceeded {
	scope, id := s.scope()
	if d := e.allow(ctx, scope, id, s.Limits, e.now()); !d.Allowed {
		return &Exceeded{Limit: RequestsPerSecond, Scope: scope, Value: s.Limits.RequestsPerSecond, RetryAfter: d.RetryAfter}
	}
	e.counters.Add(scope, id, Usage{Requests: 1})
	if s.Project != "" && s.Owner != "" {
		e.counters.Add(ScopeOwner, s.Owner, Usage{Requests: 1})
	}
	return nil
}
