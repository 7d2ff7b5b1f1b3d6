// Package limits holds plans (named sets of limits) and the arithmetic
// that enforces them: a per-second rate per key (GCRA, in memory or
// shared through Redis), and per-day request and byte counters per
// project and per owner with a day boundary in a configurable time zone.
//
// It knows nothing of HTTP. The handler asks it whether a call may go on
// and, when it may not, gets an *Exceeded naming the limit, its value,
// what was used and when it resets or may be retried: everything needed
// for an HTTP 429 with Retry-After and a JSON-RPC -32029 error.
//
// In every Limits value zero means "no limit".
package limits
