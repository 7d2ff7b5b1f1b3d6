package suber_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/elara-gateway/elara/suber"
)

// fastOptions keep reconnects and keep-alives quick so tests run fast.
func fastOptions(pool int) suber.Options {
	return suber.Options{
		PoolSize:     pool,
		DialTimeout:  time.Second,
		PingInterval: time.Second,
		BackoffMin:   20 * time.Millisecond,
		BackoffMax:   200 * time.Millisecond,
		// Health checks run at once after each connection; the timer
		// only matters for tests that change the node's health.
		HealthInterval: 200 * time.Millisecond,
	}
}

// startNode makes and starts a node, closed at the end of the test.
func startNode(t *testing.T, url string, opts suber.Options) *suber.Node {
	t.Helper()
	n, err := suber.NewNode(url, opts)
	if err != nil {
		t.Fatalf("NewNode(%s): %v", url, err)
	}
	n.Start()
	t.Cleanup(func() { _ = n.Close() })
	// Calls made at once after Start are covered by their own test
	// (TestNodeFirstCallWaitsForConnection); here, wait for a connection.
	eventually(3*time.Second, n.Connected)
	return n
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// eventually is waitFor that reports instead of failing.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// call makes one call that must succeed.
func call(t *testing.T, n interface {
	Call(context.Context, string, json.RawMessage) (json.RawMessage, error)
}, method string, params string) json.RawMessage {
	t.Helper()
	var p json.RawMessage
	if params != "" {
		p = json.RawMessage(params)
	}
	res, err := n.Call(ctxTimeout(t, 5*time.Second), method, p)
	if err != nil {
		t.Fatalf("%s(%s): %v", method, params, err)
	}
	return res
}

type noteRec struct {
	method string
	result json.RawMessage
}

// recSink records what a subscription delivers, and checks the Sink
// contract: no Notify after Lost, Lost at most once, no concurrent calls.
type recSink struct {
	t *testing.T

	mu      sync.Mutex
	notes   []noteRec
	lost    []error
	inCall  bool
	badCall string

	changed chan struct{}
}

func newSink(t *testing.T) *recSink {
	return &recSink{t: t, changed: make(chan struct{}, 1)}
}

func (s *recSink) enter(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inCall && s.badCall == "" {
		s.badCall = "concurrent " + what
	}
	if len(s.lost) > 0 && s.badCall == "" {
		s.badCall = what + " after Lost"
	}
	s.inCall = true
}

func (s *recSink) leave() {
	s.mu.Lock()
	s.inCall = false
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *recSink) Notify(method string, result json.RawMessage) {
	s.enter("Notify")
	s.mu.Lock()
	s.notes = append(s.notes, noteRec{method, append(json.RawMessage(nil), result...)})
	s.mu.Unlock()
	s.leave()
}

func (s *recSink) Lost(err error) {
	s.enter("Lost")
	s.mu.Lock()
	s.lost = append(s.lost, err)
	s.mu.Unlock()
	s.leave()
}

func (s *recSink) Notes() []noteRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]noteRec(nil), s.notes...)
}

func (s *recSink) LostErrs() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.lost...)
}

func (s *recSink) check() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.badCall != "" {
		s.t.Errorf("sink contract broken: %s", s.badCall)
	}
	if len(s.lost) > 1 {
		s.t.Errorf("Lost called %d times", len(s.lost))
	}
}

// headNumber decodes the number of a header notification.
func headNumber(t *testing.T, raw json.RawMessage) uint64 {
	t.Helper()
	var h struct{ Number string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("header %s: %v", raw, err)
	}
	var n uint64
	for _, c := range h.Number[2:] {
		n <<= 4
		switch {
		case c >= '0' && c <= '9':
			n |= uint64(c - '0')
		case c >= 'a' && c <= 'f':
			n |= uint64(c-'a') + 10
		default:
			t.Fatalf("bad hex number %q", h.Number)
		}
	}
	return n
}
