package suber

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/elara-gateway/elara/jsonrpc"
)

// Node is one upstream Substrate node: a pool of WebSocket connections, or
// an HTTP client for nodes that only serve HTTP.
type Node struct {
	url  string
	opts Options
	log  *zap.Logger

	slots []*slot
	http  *httpTransport

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	startOnce sync.Once
	closeOnce sync.Once
	// tried closes once every slot has made its first connection attempt,
	// so early calls wait for the pool instead of failing at start-up.
	tried     chan struct{}
	triedLeft atomic.Int32

	rr     atomic.Uint64
	nextID atomic.Uint64

	// display is the URL without secrets, for logs and health reports.
	display string
	now     clock
	// sleep waits between reconnect attempts; tests replace it.
	sleep func(ctx context.Context, d time.Duration) bool
	kicks chan struct{}

	// extra are connections beyond the pool, for subscriptions (overflow.go).
	extra extraConns

	hmu         sync.Mutex
	health      healthState
	watchers    map[int]func()
	nextWatcher int
}

// NewNode checks the URL and prepares the node; Start connects it.
func NewNode(rawURL string, opts Options) (*Node, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the URL, which may carry an API key.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("node url: %w", err)
	}
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		url:      rawURL,
		opts:     opts,
		log:      opts.Logger.With(zap.String("node", redact(u))),
		ctx:      ctx,
		cancel:   cancel,
		tried:    make(chan struct{}),
		display:  redact(u),
		now:      time.Now,
		sleep:    sleep,
		kicks:    make(chan struct{}, 1),
		watchers: make(map[int]func()),
	}
	if !ValidScheme(u.Scheme) {
		cancel()
		return nil, fmt.Errorf("node url scheme %q: must be ws, wss, http or https", u.Scheme)
	}
	switch u.Scheme {
	case "ws", "wss":
		n.slots = make([]*slot, opts.PoolSize)
		for i := range n.slots {
			n.slots[i] = &slot{node: n}
		}
		n.triedLeft.Store(int32(opts.PoolSize))
	default: // http, https
		n.http = newHTTPTransport(rawURL, redact(u), opts, n.log)
		close(n.tried)
	}
	return n, nil
}

// ValidScheme reports whether a node URL scheme can be served: WebSocket
// (calls and subscriptions) or HTTP (calls only).
func ValidScheme(scheme string) bool {
	switch scheme {
	case "ws", "wss", "http", "https":
		return true
	}
	return false
}

// URL is the node's address as configured.
func (n *Node) URL() string { return n.url }

// String is the node's address without credentials, for logs.
func (n *Node) String() string { return n.display }

// Start begins connecting. It is idempotent, so every config that shares
// the node may call it.
func (n *Node) Start() {
	n.startOnce.Do(func() {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.monitor(n.ctx)
		}()
		for _, s := range n.slots {
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				s.run(n.ctx)
			}()
		}
	})
}

// Close disconnects and waits until every goroutine of the node returned.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		// Before the Wait: subscribes open no extra connection from now.
		n.extra.mu.Lock()
		n.extra.closing = true
		n.extra.mu.Unlock()
		n.cancel()
		for _, s := range n.slots {
			if sess := s.cur.Load(); sess != nil {
				sess.close(ErrClosed)
			}
		}
		n.wg.Wait()
		if n.http != nil {
			n.http.close()
		}
	})
	return nil
}

// Connected reports whether at least one connection is up.
func (n *Node) Connected() bool {
	if n.http != nil {
		return n.http.healthy()
	}
	for _, s := range n.slots {
		if sess := s.cur.Load(); sess != nil && !sess.isClosed() {
			return true
		}
	}
	return false
}

// SupportsSubscriptions reports whether the node has a WebSocket transport.
func (n *Node) SupportsSubscriptions() bool { return n.http == nil }

// Call sends one request and returns the node's result. A JSON-RPC error
// from the node comes back as a *jsonrpc.Error.
func (n *Node) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if n.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if n.http != nil {
		start := time.Now()
		result, err := n.http.call(ctx, n.nextID.Add(1), method, params)
		if n.opts.Observer != nil {
			n.opts.Observer.Observe(time.Since(start), err)
		}
		return result, err
	}
	sess, err := n.session(ctx)
	if err != nil {
		if n.opts.Observer != nil {
			n.opts.Observer.Observe(0, err)
		}
		return nil, err
	}
	return sess.result(ctx, method, params)
}

// Subscribe opens a subscription; sink receives its notifications. The
// returned subscription is bound to the connection that created it.
func (n *Node) Subscribe(ctx context.Context, method string, params json.RawMessage, unsubMethod string, sink Sink) (*Subscription, error) {
	if n.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if n.http != nil {
		return nil, ErrNoSubscriptions
	}
	// On a connection with room (overflow.go); one the node finds full
	// is avoided on a second try.
	sub, sess, err := n.subscribeOnce(ctx, method, params, unsubMethod, sink, nil)
	if err != nil && sess != nil && isConnectionLimit(err) {
		n.markFull(sess)
		sub, _, err = n.subscribeOnce(ctx, method, params, unsubMethod, sink, map[*session]bool{sess: true})
	}
	if err != nil {
		return nil, err
	}
	return sub, nil
}

// session picks a live connection round-robin, waiting for the first
// connection attempts at start-up.
func (n *Node) session(ctx context.Context) (*session, error) {
	if sess := n.pick(); sess != nil {
		return sess, nil
	}
	select {
	case <-n.tried:
	case <-ctx.Done():
		return nil, ErrUnavailable
	case <-n.ctx.Done():
		return nil, ErrClosed
	}
	if sess := n.pick(); sess != nil {
		return sess, nil
	}
	return nil, ErrUnavailable
}

func (n *Node) pick() *session {
	start := n.rr.Add(1)
	for i := range n.slots {
		s := n.slots[(start+uint64(i))%uint64(len(n.slots))]
		if sess := s.cur.Load(); sess != nil && !sess.isClosed() {
			return sess
		}
	}
	return nil
}

func (n *Node) attempted() {
	if n.triedLeft.Add(-1) == 0 {
		close(n.tried)
	}
}

// slot is one position of the pool: it keeps one connection up,
// reconnecting with backoff and jitter when it drops.
type slot struct {
	node *Node
	cur  atomic.Pointer[session]
}

func (s *slot) run(ctx context.Context) {
	n := s.node
	wait := backoff{min: n.opts.BackoffMin, max: n.opts.BackoffMax}
	first, failing := true, false
	for ctx.Err() == nil {
		sess, err := n.dial(ctx)
		if err == nil {
			// Published before the first attempt counts as made, so a
			// caller woken by it finds the connection.
			s.cur.Store(sess)
		}
		if first {
			n.attempted()
			first = false
		}
		if err != nil {
			d := wait.next()
			// One warning per outage; the rest at debug level.
			if !failing {
				n.log.Warn("upstream connection failed", zap.Error(err))
				failing = true
			} else if ce := n.log.Check(zap.DebugLevel, "upstream reconnect failed"); ce != nil {
				ce.Write(zap.Error(err), zap.Duration("backoff", d))
			}
			n.dialFailed(err)
			if !n.sleep(ctx, jitter(d)) {
				return
			}
			continue
		}
		if failing {
			n.log.Info("upstream connection restored")
			failing = false
		}
		n.kick()
		started := n.now()
		sess.run(ctx)
		s.cur.Store(nil)
		if !n.Connected() {
			// Whatever was known is stale until the node is checked again.
			n.updateHealth(func(h *healthState) { h.checked, h.failures = false, 0 })
		}
		if ctx.Err() != nil {
			return
		}
		lived := n.now().Sub(started)
		n.log.Warn("upstream connection lost", zap.Duration("after", lived))
		wait.connectionLived(lived)
		if !n.sleep(ctx, jitter(wait.next())) {
			return
		}
	}
}

// backoff is the wait between reconnect attempts of one slot, before
// jitter: it starts at min, doubles after every attempt up to max, and
// starts over after a connection that lived a while.
type backoff struct {
	min, max time.Duration
	cur      time.Duration // the next wait; 0 means min
}

// next returns the wait before the next attempt and doubles the one after.
func (b *backoff) next() time.Duration {
	d := max(b.cur, b.min)
	b.cur = min(d*2, b.max)
	return d
}

// connectionLived records how long the last connection lasted. One that
// lived more than ten minimum waits earns a quick retry; one that dropped
// at once backs off like a failed dial, so a node that accepts and then
// drops every connection is not hammered.
func (b *backoff) connectionLived(d time.Duration) {
	if d > 10*b.min {
		b.cur = b.min
	}
}

func (n *Node) dial(ctx context.Context) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, n.opts.DialTimeout)
	defer cancel()
	d := websocket.Dialer{
		HandshakeTimeout: n.opts.DialTimeout,
		ReadBufferSize:   64 << 10,
		WriteBufferSize:  64 << 10,
		TLSClientConfig:  n.opts.TLS,
	}
	// The dialer may add to the header; the node's copy stays as configured.
	ws, resp, err := d.DialContext(ctx, n.url, n.opts.Header.Clone())
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: %w (HTTP status %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial: %w%s", err, tlsHint(err))
	}
	return newSession(n, ws), nil
}

// dialFailed keeps why the node cannot be reached for the health reports
// (a refused certificate, a rejected API key), until a check succeeds.
func (n *Node) dialFailed(err error) {
	msg := err.Error()
	n.hmu.Lock()
	same := n.health.lastErr == msg
	n.hmu.Unlock()
	if !same {
		n.updateHealth(func(h *healthState) { h.lastErr = msg })
	}
}

// jitter spreads reconnects of many slots and gateways over [d/2, d).
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(half)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// redact keeps credentials and API keys in node URLs out of logs.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	if c.Path != "" && c.Path != "/" {
		c.Path = "/…"
	}
	return c.String()
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}

// IsUpstreamError reports whether err is an error answer from the node
// itself (as opposed to a transport failure or timeout).
func IsUpstreamError(err error) (*jsonrpc.Error, bool) {
	var e *jsonrpc.Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}
