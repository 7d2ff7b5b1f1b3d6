package limits

import (
	"fmt"
	"strconv"
	"time"
)

// Scopes of a limit: whose use was counted.
const (
	ScopeProject = "project"
	ScopeOwner   = "owner"
	ScopeIP      = "ip"
)

// Exceeded is a refusal a client can act on: which limit, its value, the
// use counted against it, and when to come back. The handler turns it
// into HTTP 429 with Retry-After and a JSON-RPC -32029 error.
type Exceeded struct {
	// Limit is the name of the limit (RequestsPerSecond, RequestsPerDay, ...).
	Limit string
	// Scope says whose use is counted: ScopeProject, ScopeOwner or ScopeIP.
	Scope string
	// Value is the limit.
	Value float64
	// Used is the use counted when refused (0 for a rate).
	Used int64
	// ResetAt is when a daily limit resets; zero for a rate.
	ResetAt time.Time
	// RetryAfter is how long the client should wait.
	RetryAfter time.Duration
}

// Daily reports whether the limit is a daily one, which suspends a
// project until ResetAt.
func (e *Exceeded) Daily() bool { return !e.ResetAt.IsZero() }

// RetryAfterSeconds is RetryAfter rounded up to whole seconds (at least
// 1), for the Retry-After header.
func (e *Exceeded) RetryAfterSeconds() int64 {
	s := int64((e.RetryAfter + time.Second - 1) / time.Second)
	return max(1, s)
}

func (e *Exceeded) Error() string {
	v := strconv.FormatFloat(e.Value, 'f', -1, 64)
	if e.Daily() {
		return fmt.Sprintf("%s limit %s of %s reached (%d used); resets at %s",
			e.Scope, e.Limit, v, e.Used, e.ResetAt.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("%s limit %s of %s exceeded; retry after %ds",
		e.Scope, e.Limit, v, e.RetryAfterSeconds())
}

// ExceededData is the JSON-RPC error data of a refusal.
type ExceededData struct {
	Limit string  `json:"limit"`
	Scope string  `json:"scope"`
	Value float64 `json:"value"`
	Used  int64   `json:"used,omitempty"`
	// ResetAt is set for daily limits.
	ResetAt *time.Time `json:"reset_at,omitempty"`
	// RetryAfter is in whole seconds, as in the Retry-After header.
	RetryAfter int64 `json:"retry_after"`
}

// Data is the refusal as JSON-RPC error data.
func (e *Exceeded) Data() ExceededData {
	d := ExceededData{Limit: e.Limit, Scope: e.Scope, Value: e.Value, Used: e.Used, RetryAfter: e.RetryAfterSeconds()}
	if e.Daily() {
		r := e.ResetAt.UTC()
		d.ResetAt = &r
	}
	return d
}
