package cacher

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// flight makes concurrent identical misses share one upstream call.
type flight struct {
	// base ends every call when the cache closes; wg lets Close wait.
	base context.Context
	wg   sync.WaitGroup

	mu    sync.Mutex
	calls map[string]*flightCall
}

type flightCall struct {
	joined int // callers besides the first; guarded by flight.mu
	done   chan struct{}
	val    json.RawMessage
	err    error
}

// do runs fn once for all concurrent callers with the same key. fn gets a
// context that no single caller can cancel (a client hanging up must not
// fail the others waiting on the same call) but that ends after timeout
// or when the cache closes. Each caller still gives up when its own ctx ends.
func (f *flight) do(ctx context.Context, key string, timeout time.Duration, fn func(context.Context) (json.RawMessage, error)) (json.RawMessage, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = make(map[string]*flightCall)
	}
	if c := f.calls[key]; c != nil {
		c.joined++
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.val, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &flightCall{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()

	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		fctx, cancel := context.WithTimeout(f.base, timeout)
		defer cancel()
		c.val, c.err = fn(fctx)
		f.mu.Lock()
		delete(f.calls, key)
		f.mu.Unlock()
		close(c.done)
	}()
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// waiting reports how many callers wait on the call in flight for key.
func (f *flight) waiting(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.calls[key]; c != nil {
		return c.joined
	}
	return -1
}
