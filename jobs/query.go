package jobs

import (
	"context"
	"time"
)

// Query selects the calls a statistics read covers. An empty Chain or
// Project covers every chain or every project; Project "public" is the
// calls made without a project id.
type Query struct {
	Chain   string
	Project string
}

// Totals are the counts of a set of calls.
type Totals struct {
	Calls     int64 `json:"calls"`
	Errors    int64 `json:"errors"`
	BytesIn   int64 `json:"bytes_in"`
	BytesOut  int64 `json:"bytes_out"`
	CacheHits int64 `json:"cache_hits"`
	// Latency percentiles in milliseconds, read from the latency
	// histogram (0 with no calls).
	P50Ms float64 `json:"p50_ms"`
	P95Ms float64 `json:"p95_ms"`
	P99Ms float64 `json:"p99_ms"`
	// CacheHitRatio is CacheHits / Calls (0 with no calls).
	CacheHitRatio float64 `json:"cache_hit_ratio"`
	// Notifications and NotificationBytes are the subscription
	// notifications delivered (not in Calls); not kept per hour.
	Notifications     int64 `json:"notifications"`
	NotificationBytes int64 `json:"notification_bytes"`
}

// Gauge is a value now and its peak over the current day.
type Gauge struct {
	Current int64 `json:"current"`
	Peak    int64 `json:"peak"`
}

// Summary is today's and the all-time totals of a Query.
type Summary struct {
	// Day is today in the statistics time zone, as 2006-01-02.
	Day           string `json:"day"`
	TimeZone      string `json:"time_zone"`
	Today         Totals `json:"today"`
	Total         Totals `json:"total"`
	Connections   Gauge  `json:"connections"`
	Subscriptions Gauge  `json:"subscriptions"`
	// ErrorsByCode counts today's failed calls by JSON-RPC code, or by
	// outcome (denied, limited, ...) when there is none.
	ErrorsByCode map[string]int64 `json:"errors_by_code,omitempty"`
}

// Point is one hour or one day of a Series.
type Point struct {
	Time time.Time `json:"time"`
	Totals
}

// Series is a Query's totals per hour or per day, one point per
// period from the first to the last asked for, periods without calls
// included as zeros.
type Series struct {
	// By is "hour" or "day".
	By     string  `json:"by"`
	Points []Point `json:"points"`
}

// MethodUse is one method's use on one day.
type MethodUse struct {
	Method string `json:"method"`
	Calls  int64  `json:"calls"`
	Bytes  int64  `json:"bytes"`
	Errors int64  `json:"errors"`
}

// ErrorRecord is one failed call (never its params).
type ErrorRecord struct {
	Time   time.Time `json:"time"`
	Chain  string    `json:"chain"`
	Method string    `json:"method"`
	Code   int       `json:"code"`
	// Outcome is "error" for a JSON-RPC error answer (Code says which),
	// else what happened: denied, limited, refused, timeout, no_node,
	// canceled.
	Outcome string `json:"outcome,omitempty"`
}

// CountryUse is the calls from one country on one day; Country is an
// ISO 3166 code, "local" or "unknown".
type CountryUse struct {
	Country string `json:"country"`
	Calls   int64  `json:"calls"`
}

// Reader reads the aggregates. The admin API and the dashboard read
// statistics through it only.
type Reader interface {
	Summary(ctx context.Context, q Query) (Summary, error)
	// Series covers [from, to], by "hour" or "day".
	Series(ctx context.Context, q Query, by string, from, to time.Time) (Series, error)
	// Methods ranks the methods of the day that holds day, by calls.
	Methods(ctx context.Context, q Query, day time.Time) ([]MethodUse, error)
	// Errors is a project's latest errors, newest first.
	Errors(ctx context.Context, project string) ([]ErrorRecord, error)
	// Countries ranks the countries of the day that holds day, by calls.
	Countries(ctx context.Context, project string, day time.Time) ([]CountryUse, error)
}
