package fakenode

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	defaultName  = "fake-substrate"
	defaultPeers = 3

	// handlerGrace bounds how long Close waits for custom handlers that
	// never return, so a stuck test handler cannot hang the test's cleanup.
	handlerGrace = 5 * time.Second
)

type config struct {
	chain  *Chain
	name   string
	limits ChainHeadLimits
}

// Option configures a Node.
type Option func(*config)

// WithChain makes the node serve c (default: a new chain per node). Nodes
// sharing a chain agree on every hash and all see its changes.
func WithChain(c *Chain) Option { return func(cfg *config) { cfg.chain = c } }

// WithName sets the system_name result (default "fake-substrate").
func WithName(s string) Option { return func(cfg *config) { cfg.name = s } }

// HandlerFunc answers a method instead of the built-in behaviour. params are
// the raw "params" of the request (nil when absent). result may be a
// json.RawMessage, sent as is; a non-nil err is sent as the error.
// Handlers run on their own goroutine and must eventually return.
type HandlerFunc func(params json.RawMessage) (result any, err *Error)

// Node is a fake Substrate node serving WebSocket and HTTP JSON-RPC on one
// port of 127.0.0.1.
type Node struct {
	name  string
	chain *Chain
	addr  string // fixed at the first listen so Restart reuses the port

	lifeMu sync.Mutex // guards gen and closed; serialises Stop/Restart/Close
	gen    *generation
	closed bool

	connMu sync.Mutex
	conns  map[*wsConn]struct{}

	// handlerWG tracks goroutines not owned by a connection or HTTP request:
	// custom handlers and delayed replies.
	handlerWG sync.WaitGroup

	subs registry

	// The node's view of its chain; it only moves while the node follows.
	viewBest      atomic.Pointer[block]
	viewFinalized atomic.Pointer[block]

	faults faultState
	stats  counters
	// accepted counts WebSocket connections ever registered, and
	// invalidFrames those closed for a text frame that is not UTF-8.
	accepted, invalidFrames atomic.Int64
	handlersMu              sync.Mutex
	handlers                atomic.Pointer[map[string]HandlerFunc]

	syncing  atomic.Bool
	peers    atomic.Int64
	offchain sync.Map

	broadcastMu sync.Mutex
	broadcasts  map[string]string // transaction_v1_broadcast operation id -> transaction

	// chainHead operations: every opLimitEvery-th one answers limitReached.
	opLimitEvery atomic.Int64
	opCount      atomic.Int64

	limits ChainHeadLimits // fixed at New
}

// generation is one listening period, from New or Restart to Stop.
type generation struct {
	srv    *http.Server
	stop   chan struct{}  // closed by Stop: unblocks hanging (dropped/delayed) HTTP requests
	served chan struct{}  // closed when Serve returns
	wg     sync.WaitGroup // HTTP connections and handlers of this generation
}

// Start starts a node for a test or benchmark and closes it in tb.Cleanup.
func Start(tb testing.TB, opts ...Option) *Node {
	tb.Helper()
	n, err := New(opts...)
	if err != nil {
		tb.Fatalf("fakenode: %v", err)
	}
	tb.Cleanup(n.Close)
	return n
}

// New starts a node; the caller must Close it.
func New(opts ...Option) (*Node, error) {
	cfg := config{name: defaultName}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.chain == nil {
		cfg.chain = NewChain()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fakenode: listen: %w", err)
	}
	n := &Node{
		name:  cfg.name,
		chain: cfg.chain,
		addr:  ln.Addr().String(),
		conns: map[*wsConn]struct{}{},

		broadcasts: map[string]string{},
		limits:     cfg.limits.withDefaults(),
	}
	n.peers.Store(defaultPeers)
	n.faults.reset()
	n.handlers.Store(&map[string]HandlerFunc{})
	n.subs.init()
	n.chain.attach(n)
	n.lifeMu.Lock()
	n.serveLocked(ln)
	n.lifeMu.Unlock()
	return n, nil
}

// URL returns the WebSocket URL, "ws://127.0.0.1:PORT".
func (n *Node) URL() string { return "ws://" + n.addr }

// HTTPURL returns the HTTP URL, "http://127.0.0.1:PORT".
func (n *Node) HTTPURL() string { return "http://" + n.addr }

// Addr returns "127.0.0.1:PORT".
func (n *Node) Addr() string { return n.addr }

// Chain returns the chain the node serves.
func (n *Node) Chain() *Chain { return n.chain }

func (n *Node) serveLocked(ln net.Listener) {
	g := &generation{stop: make(chan struct{}), served: make(chan struct{})}
	g.srv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.serveHTTP(g, w, r) }),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // aborted requests are expected here
		ConnState: func(_ net.Conn, s http.ConnState) {
			// net/http does not wait for its connection goroutines on Close;
			// counting them lets Stop and Close do so.
			switch s {
			case http.StateNew:
				g.wg.Add(1)
			case http.StateHijacked, http.StateClosed:
				g.wg.Done()
			}
		},
	}
	n.gen = g
	go func() {
		defer close(g.served)
		_ = g.srv.Serve(ln)
	}()
}

// Stop stops listening and drops every connection, HTTP and WebSocket, so
// new connections are refused, and returns once they are all gone. The
// port is kept for Restart (nothing else on this host should take it in the
// meantime, but that cannot be guaranteed).
func (n *Node) Stop() {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	n.stopLocked()
}

func (n *Node) stopLocked() {
	g := n.gen
	if g == nil {
		return
	}
	n.gen = nil
	close(g.stop)
	_ = g.srv.Close()
	for _, c := range n.connList() {
		c.shutdown()
	}
	<-g.served
	g.wg.Wait()
}

// Restart listens again on the same port after Stop. It is a no-op if the
// node is running and an error if it is closed.
func (n *Node) Restart() error {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	if n.closed {
		return errors.New("fakenode: Restart after Close")
	}
	if n.gen != nil {
		return nil
	}
	var ln net.Listener
	var err error
	// The port can linger briefly in the kernel after Stop; retry a little.
	for range 50 {
		if ln, err = net.Listen("tcp", n.addr); err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("fakenode: restart on %s: %w", n.addr, err)
	}
	n.serveLocked(ln)
	return nil
}

// Close stops the node for good: it stops listening, closes every
// connection and waits for the node's goroutines. It is idempotent.
func (n *Node) Close() {
	n.lifeMu.Lock()
	if n.closed {
		n.lifeMu.Unlock()
		return
	}
	n.closed = true
	n.stopLocked()
	n.lifeMu.Unlock()
	n.chain.detach(n)

	// Every reader and HTTP handler is gone, so nothing adds to handlerWG now.
	done := make(chan struct{})
	go func() {
		n.handlerWG.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(handlerGrace):
	}
}

// DisconnectAll abruptly closes every open WebSocket connection (no close
// frame, like a crashed peer or a cut network) and returns once they are
// cleaned up. The node keeps listening.
func (n *Node) DisconnectAll() {
	conns := n.connList()
	for _, c := range conns {
		c.shutdown()
	}
	for _, c := range conns {
		<-c.finished
	}
}

func (n *Node) connList() []*wsConn {
	n.connMu.Lock()
	defer n.connMu.Unlock()
	out := make([]*wsConn, 0, len(n.conns))
	for c := range n.conns {
		out = append(out, c)
	}
	return out
}

// addConn registers c unless g is already stopping; checking under connMu
// means Stop either sees c or c sees the stop.
func (n *Node) addConn(g *generation, c *wsConn) bool {
	n.connMu.Lock()
	defer n.connMu.Unlock()
	select {
	case <-g.stop:
		return false
	default:
	}
	n.conns[c] = struct{}{}
	n.accepted.Add(1)
	return true
}

func (n *Node) removeConn(c *wsConn) {
	n.connMu.Lock()
	defer n.connMu.Unlock()
	delete(n.conns, c)
}

// Handle overrides (or adds) method with h; a nil h restores the built-in
// behaviour. An overridden subscribe method is a plain method: it creates
// no subscription.
func (n *Node) Handle(method string, h HandlerFunc) {
	n.handlersMu.Lock()
	defer n.handlersMu.Unlock()
	m := maps.Clone(*n.handlers.Load())
	if h == nil {
		delete(m, method)
	} else {
		m[method] = h
	}
	n.handlers.Store(&m)
}

func (n *Node) handler(method string) HandlerFunc { return (*n.handlers.Load())[method] }
