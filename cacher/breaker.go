package cacher

import (
	"sync"
	"time"
)

// breaker keeps a failing remote store out of the request path: after a
// failure it stays open for a backoff, then lets one probe through; the
// probe's success closes it, its failure reopens it. Transitions are
// reported so an outage is logged once, not once per request.
type breaker struct {
	clock   Clock
	backoff time.Duration

	mu      sync.Mutex
	open    bool
	until   time.Time
	probing bool
}

// allow reports whether a call may go to the store now.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return true
	}
	if b.probing || b.clock.Now().Before(b.until) {
		return false
	}
	b.probing = true
	return true
}

// success records a working call; it returns true when that ends an outage.
func (b *breaker) success() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	recovered := b.open
	b.open, b.probing = false, false
	return recovered
}

// failure records a failed call; it returns true when that starts an outage.
func (b *breaker) failure() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	started := !b.open
	b.open, b.probing = true, false
	b.until = b.clock.Now().Add(b.backoff)
	return started
}

// abandon ends a call that proved nothing (the caller gave up first).
func (b *breaker) abandon() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}
