package handler

import (
	"time"

	"go.uber.org/zap"

	"github.com/elara-gateway/elara/limits"
)

// overBytes acts on a frame over a daily bytes limit. A client that only
// receives notifications makes no call a limit could refuse: a project
// that reached its limit is suspended until the reset (the project
// watcher then closes its WebSockets, on every gateway, with 1008); over
// a public client IP's limit or an owner's cap (which suspends no
// project), the connection is closed with 1008.
func (s *wsSession) overBytes(ex *limits.Exceeded) {
	g := s.route().acc
	if ex.Scope == limits.ScopeProject {
		if p, ok := g.x.Store().Lookup(g.project); ok {
			g.x.Suspend(p, ex)
		}
		return
	}
	if ce := s.logger().Check(zap.InfoLevel, "closing websocket client: over a daily bytes limit"); ce != nil {
		ce.Write(zap.String("limit", ex.Limit), zap.String("scope", ex.Scope), zap.Int64("value", int64(ex.Value)))
	}
	s.closeWith(closeSlowConsumer, "daily limit "+ex.Limit+" reached; resets at "+ex.ResetAt.UTC().Format(time.RFC3339))
}
