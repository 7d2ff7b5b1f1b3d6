package handler

import (
	"net/http"
	"time"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/limits"
)

// planSubscriptions is the subject of the session's calls as its project
// is now, and the plan's subscriptions per connection (0: no limit).
func (s *wsSession) planSubscriptions() (limits.Subject, int64) {
	g := s.route().acc
	if g == nil {
		return limits.Subject{}, 0
	}
	subject := g.subject
	if g.project != "" {
		if p, ok := g.x.Store().Lookup(g.project); ok {
			subject = g.x.Subject(&p, subject.IP)
		}
	}
	return subject, subject.Limits.Subscriptions
}

// overSubscriptions refuses a subscribe of a client holding n
// subscriptions, the plan's limit.
func (s *wsSession) overSubscriptions(req *jsonrpc.Request, subject limits.Subject, n int) answer {
	lim := subject.Limits.Subscriptions
	ex := &limits.Exceeded{Limit: limits.Subscriptions, Scope: scopeOf(subject), Value: float64(lim),
		Used: int64(n), RetryAfter: time.Second}
	s.route().acc.x.Refused(app.RefusedSubscriptions, subject, ex)
	return refusal(req, http.StatusTooManyRequests, ex.RetryAfterSeconds(), overLimitError(ex))
}
