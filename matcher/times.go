package matcher

import "time"

// SetTimes changes the grace of shared subscriptions and the bound of the
// matcher's own upstream calls, for a chain kept across a config reload.
// A grace already running and calls already made keep the old values.
func (m *Matcher) SetTimes(grace, callTimeout time.Duration) {
	if callTimeout <= 0 {
		callTimeout = 10 * time.Second
	}
	m.graceNs.Store(int64(grace))
	m.callTimeoutNs.Store(int64(callTimeout))
}

// grace is how long a shared subscription outlives its last client.
func (m *Matcher) grace() time.Duration { return time.Duration(m.graceNs.Load()) }

// callTimeout bounds each upstream call the matcher makes itself.
func (m *Matcher) callTimeout() time.Duration { return time.Duration(m.callTimeoutNs.Load()) }
