package cacher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/suber"
)

// stubUp answers calls with fn; it has no subscriptions.
type stubUp struct {
	fn func(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)
}

func (s stubUp) Call(ctx context.Context, m string, p json.RawMessage) (json.RawMessage, error) {
	return s.fn(ctx, m, p)
}

func (stubUp) Subscribe(context.Context, string, json.RawMessage, string, suber.Sink) (Subscription, error) {
	return nil, suber.ErrNoSubscriptions
}

// stubCache is a cache over fn whose genesis is known, so calls naming a
// block hash are keyed; its suducer is not started.
func stubCache(t *testing.T, timeout time.Duration, fn func(context.Context, string, json.RawMessage) (json.RawMessage, error)) *Cache {
	t.Helper()
	rules, err := NewRules(nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Name: "dev", Upstream: stubUp{fn}, Store: NewMemoryStore(16<<20, nil, nil), Rules: rules, CallTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.id = chainID("dev", "0x"+fmt.Sprintf("%064x", 1))
	c.mu.Unlock()
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func hashParams(i int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`["0x01","0x%064x"]`, i))
}

// A caller that joined a shared call whose own context is still alive
// gets a timeout when the shared call times out, whatever error the
// upstream reported it with, not an unknown failure.
func TestJoinerOfTimedOutSharedCallGetsATimeout(t *testing.T) {
	cases := []struct {
		name string
		err  func(ctx context.Context) error
	}{
		{"transport error", func(ctx context.Context) error { return fmt.Errorf("read frame: %v", ctx.Err()) }},
		{"no ready node", func(context.Context) error { return suber.ErrNoReadyNode }},
		{"deadline itself", func(ctx context.Context) error { return ctx.Err() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := stubCache(t, 100*time.Millisecond, func(ctx context.Context, _ string, _ json.RawMessage) (json.RawMessage, error) {
				<-ctx.Done()
				return nil, tc.err(ctx)
			})
			params := hashParams(1)
			p := c.plan("state_getStorage", params)
			if p.kind != planKeyed {
				t.Fatalf("plan %+v", p)
			}
			errs := make(chan error, 2)
			go func() {
				_, err := c.Call(context.Background(), "state_getStorage", params)
				errs <- err
			}()
			deadline := time.Now().Add(10 * time.Second)
			for c.flight.waiting(p.key) != 0 { // the leader's call is in flight
				if time.Now().After(deadline) {
					t.Fatal("no call in flight")
				}
				time.Sleep(time.Millisecond)
			}
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				_, err := c.Call(ctx, "state_getStorage", params)
				if ctx.Err() != nil {
					err = fmt.Errorf("joiner's own context ended: %w", err)
				}
				errs <- err
			}()
			for range 2 {
				if err := <-errs; !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("got %v, want a timeout", err)
				}
			}
		})
	}
	t.Run("a node's own error is kept", func(t *testing.T) {
		c := stubCache(t, 50*time.Millisecond, func(ctx context.Context, _ string, _ json.RawMessage) (json.RawMessage, error) {
			<-ctx.Done()
			return nil, fmt.Errorf("wrapped: %w", jsonrpc.NewError(4003, "Client error: boom"))
		})
		_, err := c.Call(context.Background(), "state_getStorage", hashParams(2))
		if _, ok := suber.IsUpstreamError(err); !ok || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want the node's error", err)
		}
	})
}

// Close waits for the shared calls in flight while clients of the old
// config still call: calls that start around and after Close never start
// a shared call (no WaitGroup misuse: Add from zero concurrent with Wait)
// and are answered by a node.
func TestCloseWhileClientsCall(t *testing.T) {
	for round := range 5 {
		var upCalls atomic.Int64
		c := stubCache(t, 5*time.Second, func(ctx context.Context, _ string, _ json.RawMessage) (json.RawMessage, error) {
			upCalls.Add(1)
			select {
			case <-time.After(time.Millisecond):
				return json.RawMessage(`"0xaa"`), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
		var next atomic.Int64
		next.Store(int64(round) << 32)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		var afterClose atomic.Int64
		var closed atomic.Bool
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					wasClosed := closed.Load()
					// A new key every time: every call starts a shared call.
					v, err := c.Call(context.Background(), "state_getStorage", hashParams(int(next.Add(1))))
					if err != nil || string(v) != `"0xaa"` {
						select {
						case errs <- fmt.Errorf("closed %v: %s, %v", wasClosed, v, err):
						default:
						}
						continue
					}
					if wasClosed {
						afterClose.Add(1)
					}
				}
			}()
		}
		for upCalls.Load() < 50 {
			time.Sleep(time.Millisecond)
		}
		_ = c.Close()
		closed.Store(true)
		for afterClose.Load() < 50 && len(errs) == 0 {
			time.Sleep(time.Millisecond)
		}
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: a call around Close failed: %v", round, err)
		}
	}
}
