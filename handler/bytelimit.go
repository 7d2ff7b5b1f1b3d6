package handler

import (
	"time"

	"go.uber.org/zap"

	"github.com/elara-gateway/elara/limits"
)

// overBytes acts on a frame that reached the daily bytes limit. A client
// that only receives notifications makes no call a limit could refuse:
// its project is suspended until the reset (the project watcher then
// closes its WebSockets, on every gateway, with 1008); a public client's
// connection is closed with 1008.
func (s *wsSession) overBytes(ex *limits.Exceeded) {
	g := s.rt.acc
	if g.project != "" {
		if p, ok := g.x.Store().Lookup(g.project); ok {
			g.x.Suspend(p, ex)
		}
		return
	}
	if ce := s.log.Check(zap.InfoLevel, "closing websocket client: daily bytes limit reached"); ce != nil {
		ce.Write(zap.Int64("bytes_per_day", int64(ex.Value)))
	}
	s.closeWith(closeSlowConsumer, "daily limit bytes_per_day reached; resets at "+ex.ResetAt.UTC().Format(time.RFC3339))
}
