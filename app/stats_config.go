package app

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// StatsConfig configures statistics: every client call recorded and
// aggregated (totals, per chain, project, day, hour, method, error code,
// country, latency percentiles), read through the admin API
// (/elara/stats/...). On by default, embedded; see UnmarshalCaddyfile
// for the Caddyfile form.
type StatsConfig struct {
	// Disabled turns statistics off: nothing is recorded.
	Disabled bool `json:"disabled,omitempty"`
	// Store is where aggregates live: "bolt", a file in Caddy's data
	// directory aggregated by this instance, or "redis", shared by every
	// gateway on the app's Redis (records go to a stream that the
	// instances running the job aggregate). Default: redis when the app
	// has a redis option, otherwise bolt.
	Store string `json:"store,omitempty"`
	// Dir is the directory of the bolt file (stats.db). Default: Caddy's
	// data directory + "/elara".
	Dir string `json:"dir,omitempty"`
	// Prefix starts every Redis key. Default: "elara:". Every statistics
	// key is under the hash tag {stats} (one Redis Cluster slot).
	Prefix string `json:"prefix,omitempty"`
	// FlushInterval is how often embedded aggregates are written to the
	// bolt file: what a crash can lose. Default: 5s.
	FlushInterval caddy.Duration `json:"flush_interval,omitempty"`
	// HourlyRetention and DailyRetention are how long hourly and daily
	// aggregates are kept after their period ends. Default: 48h, 90 days.
	HourlyRetention caddy.Duration `json:"hourly_retention,omitempty"`
	DailyRetention  caddy.Duration `json:"daily_retention,omitempty"`
	// LatestErrors is how many failed calls each project's list keeps.
	// Default: 100.
	LatestErrors int `json:"latest_errors,omitempty"`
	// Buffer bounds the records waiting to be aggregated or sent; more are
	// dropped and counted (elara_stats_records_dropped_total). Default:
	// 65536.
	Buffer int `json:"buffer,omitempty"`
	// Jobs is whether this instance aggregates the Redis stream (store
	// redis). Any number of instances may. Default: true.
	Jobs *bool `json:"jobs,omitempty"`
	// GeoIP is the path of a MaxMind-format country database (.mmdb).
	// Without it every country is "unknown" (loopback and private
	// addresses "local").
	GeoIP string `json:"geoip,omitempty"`
	// ProjectLabel adds elara_stats_project_calls_total, labelled by
	// project: one series per project, so off by default.
	ProjectLabel bool `json:"project_label,omitempty"`
}

// Statistics stores.
const (
	StatsStoreBolt  = "bolt"
	StatsStoreRedis = "redis"
)

// validate checks the values (Validate only checks; defaults are set in
// provisionStats).
func (sc *StatsConfig) validate() error {
	if sc == nil || sc.Disabled {
		return nil
	}
	switch sc.Store {
	case "", StatsStoreBolt, StatsStoreRedis:
	default:
		return fmt.Errorf("stats: store must be bolt or redis, not %q", sc.Store)
	}
	for name, d := range map[string]caddy.Duration{"flush_interval": sc.FlushInterval,
		"hourly_retention": sc.HourlyRetention, "daily_retention": sc.DailyRetention} {
		if d < 0 {
			return fmt.Errorf("stats: %s must be positive", name)
		}
	}
	if sc.HourlyRetention > 0 && time.Duration(sc.HourlyRetention) < time.Hour {
		return fmt.Errorf("stats: hourly_retention must be at least 1h")
	}
	if sc.DailyRetention > 0 && time.Duration(sc.DailyRetention) < 24*time.Hour {
		return fmt.Errorf("stats: daily_retention must be at least 24h")
	}
	if sc.LatestErrors < 0 || sc.LatestErrors > 10000 {
		return fmt.Errorf("stats: latest_errors must be between 1 and 10000")
	}
	if sc.Buffer < 0 {
		return fmt.Errorf("stats: buffer must be positive")
	}
	return nil
}
