package cacher

import (
	"sync"
	"time"
)

// breaker keeps a failing remote store out of the request path: after a
// failure it stays open for a backoff, then lets one probe through; the
// probe's success closes it, its failure reopens it. Transitions are
// reported so an outage is logged once, not once per request.
//
// Only what a call learned after the last transition counts: every call
// carries the breaker's generation from when it was allowed, and a call
// that started before the breaker last opened or closed is ignored when it
// ends. Otherwise a partly slow store flaps: a call sent before an outage
// that succeeds late would close the breaker ("available again"), and the
// next timeout would open it again, logging twice per request.
type breaker struct {
	clock   Clock
	backoff time.Duration

	mu      sync.Mutex
	open    bool
	until   time.Time
	probing bool
	// gen counts transitions (opened, closed).
	gen uint64
}

// ticket is a call let through by allow; it is handed back to success,
// failure or abandon.
type ticket struct {
	gen   uint64
	probe bool
}

// allow reports whether a call may go to the store now, and returns the
// call's ticket when it may.
func (b *breaker) allow() (ticket, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return ticket{gen: b.gen}, true
	}
	if b.probing || b.clock.Now().Before(b.until) {
		return ticket{}, false
	}
	b.probing = true
	return ticket{gen: b.gen, probe: true}, true
}

// success records a working call; it returns true when that ends an
// outage, which only the probe of the current outage can do.
func (b *breaker) success(t ticket) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.gen != b.gen || !b.open || !t.probe {
		return false
	}
	b.open, b.probing = false, false
	b.gen++
	return true
}

// failure records a failed call; it returns true when that starts an
// outage. The failure of a call that started before the last transition
// is old news and changes nothing.
func (b *breaker) failure(t ticket) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.gen != b.gen {
		return false
	}
	b.until = b.clock.Now().Add(b.backoff)
	if b.open {
		// The probe failed: the store stays down for another backoff.
		if t.probe {
			b.probing = false
		}
		return false
	}
	b.open, b.probing = true, false
	b.gen++
	return true
}

// abandon ends a call that proved nothing (the caller gave up first); a
// probe abandoned so lets the next call probe.
func (b *breaker) abandon(t ticket) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.probe && t.gen == b.gen {
		b.probing = false
	}
}
