package app

import (
	"errors"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/elara-gateway/elara/jobs"
	"github.com/elara-gateway/elara/limits"
)

// redisStats is the Redis pipeline of statistics: the stream writer, the
// job (when this instance runs it) and the store the reader reads.
type redisStats struct {
	writer jobs.Sink
	store  jobs.Store
	start  func()
	close  func()
}

func (a *App) newRedisStats(sc *StatsConfig, days limits.Days, retention jobs.Retention, log *zap.Logger) (*redisStats, error) {
	m := statsMetrics()
	keys := jobs.NewRedisKeys(sc.Prefix)
	store := &jobs.RedisStore{Client: a.redis, Keys: keys, Retention: retention, LatestErrors: sc.LatestErrors}
	rs := &redisStats{
		writer: &jobs.RedisWriter{Client: a.redis, Keys: keys, MaxLen: jobs.DefaultStreamMaxLen, Dropped: m.dropped, Logger: log},
		store:  store,
		start:  func() {},
		close:  func() {},
	}
	// The pipeline may outlive this config (HoldStats): it keeps the
	// client open for its last writes.
	redisKey := a.redisKey
	if _, _, err := redisPool.LoadOrNew(redisKey, func() (caddy.Destructor, error) {
		return nil, errors.New("the app's redis client is closed")
	}); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	releaseRedis := func() { _, _ = redisPool.Delete(redisKey) }
	rs.close = releaseRedis
	if sc.Jobs == nil || *sc.Jobs {
		id, err := caddy.InstanceID()
		if err != nil {
			releaseRedis()
			return nil, fmt.Errorf("instance id for the job's consumer name: %w", err)
		}
		var job *jobs.RedisJob
		rs.start = func() {
			job = jobs.StartRedisJob(store, jobs.Aggregator{Days: days, LatestErrors: sc.LatestErrors}, jobs.JobOptions{
				Consumer: id.String(), Backlog: m.backlog, Lag: m.lag, Counted: m.aggregated, Logger: log})
		}
		rs.close = func() {
			if job != nil {
				job.Stop()
			}
			releaseRedis()
		}
	}
	return rs, nil
}
