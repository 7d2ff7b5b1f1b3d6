package cacher

import (
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	clock := newFakeClock()
	b := &breaker{clock: clock, backoff: time.Second}
	calls := map[string]ticket{}
	// allow lets the named call through, if the breaker does.
	allow := func(name string) func() bool {
		return func() bool {
			tk, ok := b.allow()
			if ok {
				calls[name] = tk
			}
			return ok
		}
	}
	after := func(d time.Duration, do func() bool) func() bool {
		return func() bool { clock.Advance(d); return do() }
	}
	success := func(name string) func() bool { return func() bool { return b.success(calls[name]) } }
	failure := func(name string) func() bool { return func() bool { return b.failure(calls[name]) } }
	steps := []struct {
		name string
		do   func() bool
		want bool
	}{
		{"closed allows", allow("slow ok"), true},
		{"closed allows more", allow("slow failing"), true},
		{"closed allows a third", allow("slow failing after recovery"), true},
		{"closed allows a fourth", allow("first"), true},
		{"first failure starts an outage", failure("first"), true},
		{"open refuses", allow("refused"), false},
		{"a call sent before the outage succeeding late does not end it", success("slow ok"), false},
		{"still open", allow("refused"), false},
		{"a call sent before the outage failing late is no new outage", failure("slow failing"), false},
		{"still open just before the backoff ends", after(999*time.Millisecond, allow("refused")), false},
		{"one probe after the backoff", after(time.Millisecond, allow("probe 1")), true},
		{"no second probe meanwhile", allow("refused"), false},
		{"failed probe is not a new outage", failure("probe 1"), false},
		{"reopened for another backoff", after(999*time.Millisecond, allow("refused")), false},
		{"probe again", after(time.Millisecond, allow("probe 2")), true},
		{"an abandoned probe lets another one through", func() bool { b.abandon(calls["probe 2"]); return allow("probe 3")() }, true},
		{"the probe's success ends the outage", success("probe 3"), true},
		{"the abandoned probe's late success is no news", success("probe 2"), false},
		{"closed again", allow("after"), true},
		{"a call sent before the outage failing after the recovery is no new outage", failure("slow failing after recovery"), false},
		{"still closed", allow("after"), true},
		{"success while closed is no news", success("after"), false},
		{"a failure after the recovery starts a new outage", failure("after"), true},
		{"open again", allow("refused"), false},
	}
	for _, s := range steps {
		if got := s.do(); got != s.want {
			t.Fatalf("%s: got %v, want %v", s.name, got, s.want)
		}
	}
}
