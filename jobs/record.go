package jobs

import "time"

// Kind is what a Record tells.
type Kind uint8

// Record kinds.
const (
	// KindCall is one client call (an HTTP call, a batch entry, a
	// WebSocket frame, a subscribe or unsubscribe).
	KindCall Kind = iota
	// KindConnect and KindDisconnect are a client WebSocket opened and
	// closed.
	KindConnect
	KindDisconnect
	// KindSubOpen and KindSubClose are a client subscription opened and
	// closed (Count of them).
	KindSubOpen
	KindSubClose
	// KindNotify is Count notifications of BytesOut bytes delivered on one
	// WebSocket since its last such record.
	KindNotify
)

// Outcomes of a call, the values of Record.Outcome besides a JSON-RPC
// error code ("-32601"...): a fixed set.
const (
	OutcomeOK       = "ok"
	OutcomeError    = "error" // a JSON-RPC error answer; Code says which
	OutcomeDenied   = "denied"
	OutcomeLimited  = "limited"
	OutcomeRefused  = "refused"
	OutcomeTimeout  = "timeout"
	OutcomeNoNode   = "no_node"
	OutcomeCanceled = "canceled"
)

// Public is the project of the calls made without one.
const Public = "public"

// Record is one event of the gateway. Its strings are the caller's (a
// chain name, a catalogue method, a constant): recording copies the
// value, never allocates.
type Record struct {
	Time time.Time
	Kind Kind
	// Chain and Project ("public" without one) of the call or connection.
	Chain   string
	Project string
	// Method is a catalogue method or "other".
	Method    string
	Transport string
	// Outcome is one of the Outcome constants; Code is the JSON-RPC error
	// code of a failed call, 0 for a success.
	Outcome string
	Code    int
	// BytesIn and BytesOut are the call's request and response bytes
	// (notifications: BytesOut).
	BytesIn  int64
	BytesOut int64
	Latency  time.Duration
	CacheHit bool
	Node     string
	// ClientIP is resolved to Country by the recorder, off the call's
	// goroutine, and not kept.
	ClientIP string
	Country  string
	// Count is how many subscriptions, notifications or calls (0 means
	// 1): a call record may stand for Count successful calls alike,
	// their bytes summed (see coalesce.go).
	Count int64
}

// failed reports whether the record is a call that did not succeed.
func (r *Record) failed() bool { return r.Kind == KindCall && r.Outcome != OutcomeOK }

// errorName names a failure in the errors-by-code aggregate: the JSON-RPC
// code, else the outcome.
func (r *Record) errorName() string {
	if r.Code != 0 {
		return itoa(int64(r.Code))
	}
	return r.Outcome
}

func (r *Record) count() int64 {
	if r.Count <= 0 {
		return 1
	}
	return r.Count
}
