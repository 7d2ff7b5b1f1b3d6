package jobs

import (
	"context"
	"time"
)

// Store keeps the aggregates: the embedded bolt file or Redis.
type Store interface {
	// Apply adds a delta, at once: all of it or nothing.
	Apply(ctx context.Context, d *Delta) error
	// Hashes reads one hash in each of periods (nil maps for none).
	Hashes(ctx context.Context, periods []string, hash string) ([]map[string]int64, error)
	// Latest is a project's latest errors ("*": every project's),
	// newest first.
	Latest(ctx context.Context, project string) ([]ErrorRecord, error)
}

// Retention is how long the aggregates of a period are kept after it
// ends.
type Retention struct {
	Hourly time.Duration
	Daily  time.Duration
}

// Default retention.
const (
	DefaultHourlyRetention = 48 * time.Hour
	DefaultDailyRetention  = 90 * 24 * time.Hour
	// DefaultLatestErrors is how many errors each project's list keeps.
	DefaultLatestErrors = 100
)

func (r Retention) withDefaults() Retention {
	if r.Hourly <= 0 {
		r.Hourly = DefaultHourlyRetention
	}
	if r.Daily <= 0 {
		r.Daily = DefaultDailyRetention
	}
	return r
}

// keep is how long after its end period p is kept (0: forever).
func (r Retention) keep(p string) time.Duration {
	switch {
	case len(p) > 2 && p[:2] == "h/":
		return r.Hourly
	case len(p) > 2 && p[:2] == "d/":
		return r.Daily
	}
	return 0
}
