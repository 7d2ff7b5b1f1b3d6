package cacher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/elara-gateway/elara/suber"
)

// errClosed is what the flight returns once the cache is closed: callers
// then go straight to a node (the handler would map it to "upstream
// unavailable" should it ever reach a client).
var errClosed = fmt.Errorf("cache closed: %w", suber.ErrClosed)

// flight makes concurrent identical misses share one upstream call.
type flight struct {
	// base ends every call when the cache closes; wg lets close wait.
	base context.Context
	wg   sync.WaitGroup

	mu     sync.Mutex
	closed bool // no call starts any more; guarded by mu, like wg.Add
	calls  map[string]*flightCall
}

type flightCall struct {
	joined int // callers besides the first; guarded by flight.mu
	done   chan struct{}
	val    json.RawMessage
	node   string // the node that answered, when known
	err    error
}

// do runs fn once for all concurrent callers with the same key. fn gets a
// context that no single caller can cancel (a client hanging up must not
// fail the others waiting on the same call) but that ends after timeout
// or when the cache closes. Each caller still gives up when its own ctx
// ends. Once the cache closes (base ends), do returns errClosed at once.
func (f *flight) do(ctx context.Context, key string, timeout time.Duration, fn func(context.Context) (json.RawMessage, string, error)) (json.RawMessage, string, error) {
	f.mu.Lock()
	if f.closed || f.base.Err() != nil {
		f.mu.Unlock()
		return nil, "", errClosed
	}
	if f.calls == nil {
		f.calls = make(map[string]*flightCall)
	}
	if c := f.calls[key]; c != nil {
		c.joined++
		f.mu.Unlock()
		return c.wait(ctx)
	}
	c := &flightCall{done: make(chan struct{})}
	f.calls[key] = c
	// Added under mu after checking closed: close sets closed under mu
	// before it waits, so no Add can race its Wait.
	f.wg.Add(1)
	f.mu.Unlock()

	go func() {
		defer f.wg.Done()
		// The shared call is scheduled as the first caller's (fair share).
		base := f.base
		if cl := suber.ClientFrom(ctx); cl != nil {
			base = suber.WithClient(base, cl)
		}
		fctx, cancel := context.WithTimeout(base, timeout)
		defer cancel()
		v, node, err := fn(fctx)
		c.val, c.node, c.err = v, node, sharedError(fctx, f.base, err)
		f.mu.Lock()
		delete(f.calls, key)
		f.mu.Unlock()
		close(c.done)
	}()
	return c.wait(ctx)
}

func (c *flightCall) wait(ctx context.Context) (json.RawMessage, string, error) {
	select {
	case <-c.done:
		return c.val, c.node, c.err
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
}

// sharedError says why the shared call failed in terms every caller can
// act on, whatever its own context: the shared context's deadline is a
// timeout (errors.Is(err, context.DeadlineExceeded), even when the
// upstream reported it otherwise), and the cache closing is errClosed.
// A node's own JSON-RPC error is its answer and is kept as it is.
func sharedError(fctx, base context.Context, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := suber.IsUpstreamError(err); ok {
		return err
	}
	switch {
	case base.Err() != nil:
		return errClosed
	case errors.Is(fctx.Err(), context.DeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("shared upstream call: %w (%w)", context.DeadlineExceeded, err)
	}
	return err
}

// close makes every later do return errClosed and waits for the calls in
// flight, which the caller has cancelled through base.
func (f *flight) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.wg.Wait()
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
