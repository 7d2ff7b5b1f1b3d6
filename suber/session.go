package suber

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/elara-gateway/elara/jsonrpc"
)

// Bounds on notifications that arrive before the reply that names their
// subscription: kept briefly so none is lost, never without limit.
const (
	earlyPerSubscription = 256
	earlySubscriptions   = 1024
	earlyMaxAge          = 30 * time.Second
	writeTimeout         = 10 * time.Second
	sendQueueSize        = 1024
)

// session is one live WebSocket connection to a node. It ends for good
// when the socket fails; the slot that owns it dials a new one.
type session struct {
	node *Node
	ws   *websocket.Conn
	send chan []byte
	done chan struct{}

	mu      sync.Mutex
	closed  bool
	pending map[uint64]*pendingCall
	subs    map[string]*Subscription
	early   map[string]*earlyNotes
}

type pendingCall struct {
	reply chan *jsonrpc.Message
	// sub is set for subscribe calls: the reader registers it the moment
	// the reply arrives, before reading the next message, so no
	// notification can slip between the reply and the registration.
	sub *Subscription
	// abandoned marks a subscribe call whose caller gave up: if the node
	// still answers with a subscription id, it is unsubscribed at once.
	abandoned bool
	// onReply, when set, is given a successful reply's result on the
	// reader, before the next message is read, even if the caller gave up.
	onReply func(result json.RawMessage)
}

type earlyNotes struct {
	first time.Time
	notes []note
}

type note struct {
	method string
	result json.RawMessage
	// failure is the node's error when the notification ended the
	// subscription instead of carrying a result.
	failure json.RawMessage
}

func newSession(n *Node, ws *websocket.Conn) *session {
	return &session{
		node:    n,
		ws:      ws,
		send:    make(chan []byte, sendQueueSize),
		done:    make(chan struct{}),
		pending: make(map[uint64]*pendingCall),
		subs:    make(map[string]*Subscription),
		early:   make(map[string]*earlyNotes),
	}
}

// run serves the session until the socket fails or ctx ends.
func (s *session) run(ctx context.Context) {
	ping := s.node.opts.PingInterval
	s.ws.SetReadLimit(s.node.opts.ReadLimit)
	_ = s.ws.SetReadDeadline(time.Now().Add(2 * ping))
	s.ws.SetPongHandler(func(string) error {
		return s.ws.SetReadDeadline(time.Now().Add(2 * ping))
	})
	s.node.wg.Add(1)
	go func() {
		defer s.node.wg.Done()
		s.writeLoop(ctx)
	}()
	s.readLoop()
}

func (s *session) readLoop() {
	ping := s.node.opts.PingInterval
	for {
		_, data, err := s.ws.ReadMessage()
		if err != nil {
			s.close(err)
			return
		}
		_ = s.ws.SetReadDeadline(time.Now().Add(2 * ping))
		s.dispatch(data)
	}
}

func (s *session) writeLoop(ctx context.Context) {
	ticker := time.NewTicker(s.node.opts.PingInterval)
	defer ticker.Stop()
	for {
		select {
		case frame := <-s.send:
			_ = s.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := s.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
				s.close(err)
				return
			}
		case <-ticker.C:
			if err := s.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)); err != nil {
				s.close(err)
				return
			}
		case <-ctx.Done():
			s.close(ErrClosed)
			return
		case <-s.done:
			return
		}
	}
}

func (s *session) dispatch(data []byte) {
	// data is a fresh buffer per message, so the parsed message may alias it.
	m, err := jsonrpc.ParseMessage(data)
	if err != nil {
		if ce := s.node.log.Check(zap.DebugLevel, "ignoring undecodable upstream message"); ce != nil {
			ce.Write(zap.Error(err))
		}
		return
	}
	if m.IsNotification() {
		s.notify(&m)
		return
	}
	if m.ID == nil {
		return
	}
	id, err := strconv.ParseUint(string(m.ID), 10, 64)
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	p := s.pending[id]
	delete(s.pending, id)
	var early []note
	if p != nil && p.sub != nil && m.Error == nil && isSubscriptionID(m.Result) {
		key := string(m.Result)
		if p.abandoned {
			s.mu.Unlock()
			s.fireAndForget(p.sub.unsubMethod, m.Result)
			return
		}
		p.sub.bind(s, m.Result)
		if e := s.early[key]; e != nil {
			early = e.notes
			delete(s.early, key)
		}
		// A subscription the node already ended with an error is never
		// registered: what preceded the error is delivered, then Lost.
		ended := false
		for i, n := range early {
			if n.failure != nil {
				early, ended = early[:i+1], true
				break
			}
		}
		if !ended {
			s.subs[key] = p.sub
		}
	}
	s.mu.Unlock()
	if p == nil {
		return
	}
	for _, n := range early {
		if n.failure != nil {
			p.sub.lost(subscriptionError(n.failure))
			break
		}
		p.sub.sink.Notify(n.method, n.result)
	}
	if p.onReply != nil && m.Error == nil {
		p.onReply(m.Result)
	}
	p.reply <- &m
}

// notify delivers a notification to its subscription. One that carries
// params.error instead of params.result is the node ending the
// subscription: it is forgotten and its sink told it was lost.
func (s *session) notify(m *jsonrpc.Message) {
	key := string(m.Params.Subscription)
	n := note{method: m.Method, result: m.Params.Result, failure: notificationFailure(m)}
	if n.result == nil {
		n.result = json.RawMessage("null")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	sub := s.subs[key]
	if sub == nil {
		s.keepEarly(key, n)
		s.mu.Unlock()
		return
	}
	if n.failure != nil {
		delete(s.subs, key)
	}
	s.mu.Unlock()
	if n.failure != nil {
		sub.lost(subscriptionError(n.failure))
		return
	}
	sub.sink.Notify(n.method, n.result)
}

// notificationFailure is the error a notification carries in place of a
// result (params.error), or nil.
func notificationFailure(m *jsonrpc.Message) json.RawMessage {
	e := m.Params.Error
	if len(e) == 0 || string(e) == "null" {
		return nil
	}
	return e
}

// subscriptionError describes the error a node ended a subscription with:
// a JSON-RPC error object (also reachable with errors.As), a string, or
// any other JSON value.
func subscriptionError(raw json.RawMessage) error {
	var e jsonrpc.Error
	if json.Unmarshal(raw, &e) == nil && (e.Code != 0 || e.Message != "") {
		return fmt.Errorf("%w: %w", ErrSubscriptionFailed, &e)
	}
	var msg string
	if json.Unmarshal(raw, &msg) == nil {
		return fmt.Errorf("%w: %s", ErrSubscriptionFailed, msg)
	}
	return fmt.Errorf("%w: %s", ErrSubscriptionFailed, truncate(raw))
}

// keepEarly holds a notification for a subscription id not yet known.
// Called with s.mu held.
func (s *session) keepEarly(key string, n note) {
	e := s.early[key]
	if e == nil {
		if len(s.early) >= earlySubscriptions {
			s.pruneEarly()
		}
		e = &earlyNotes{first: time.Now()}
		s.early[key] = e
	}
	if len(e.notes) < earlyPerSubscription {
		e.notes = append(e.notes, n)
	}
}

// pruneEarly drops expired entries, and the oldest one if none has
// expired, so ids nobody claims never crowd out new subscriptions.
func (s *session) pruneEarly() {
	cutoff := time.Now().Add(-earlyMaxAge)
	var oldest string
	var oldestAt time.Time
	for k, e := range s.early {
		if e.first.Before(cutoff) {
			delete(s.early, k)
			continue
		}
		if oldest == "" || e.first.Before(oldestAt) {
			oldest, oldestAt = k, e.first
		}
	}
	if len(s.early) >= earlySubscriptions {
		delete(s.early, oldest)
	}
}

// call sends one request and waits for its reply, ctx's end or the
// connection's loss, whichever comes first.
func (s *session) call(ctx context.Context, method string, params json.RawMessage, sub *Subscription) (*jsonrpc.Message, error) {
	return s.exchange(ctx, method, params, &pendingCall{reply: make(chan *jsonrpc.Message, 1), sub: sub})
}

// exchange makes the call p describes and reports it to the node's
// observer (metrics), if any.
func (s *session) exchange(ctx context.Context, method string, params json.RawMessage, p *pendingCall) (*jsonrpc.Message, error) {
	observer := s.node.opts.Observer
	if observer == nil {
		return s.roundTrip(ctx, method, params, p)
	}
	start := time.Now()
	m, err := s.roundTrip(ctx, method, params, p)
	if err == nil && m.Error != nil {
		observer.Observe(time.Since(start), m.Error)
	} else {
		observer.Observe(time.Since(start), err)
	}
	return m, err
}

// roundTrip is exchange without the observer.
func (s *session) roundTrip(ctx context.Context, method string, params json.RawMessage, p *pendingCall) (*jsonrpc.Message, error) {
	sub := p.sub
	id := s.node.nextID.Add(1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrConnectionLost
	}
	s.pending[id] = p
	s.mu.Unlock()

	frame := jsonrpc.AppendRequest(nil, id, method, params)
	select {
	case s.send <- frame:
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
		return nil, ctx.Err()
	case <-s.done:
		return nil, ErrConnectionLost
	}
	select {
	case m := <-p.reply:
		return m, nil
	case <-ctx.Done():
		forgot := s.forget(id)
		if !forgot && p.onReply != nil {
			// onReply has run or is running: its caller must see the
			// reply it acted on, which is a moment away.
			return <-p.reply, nil
		}
		if !forgot && sub != nil {
			// The reply was being dispatched as ctx ended: the node holds
			// a subscription nobody will use, so end it.
			select {
			case <-p.reply:
				if id := sub.ID(); id != nil {
					s.mu.Lock()
					if s.subs != nil {
						delete(s.subs, string(id))
					}
					s.mu.Unlock()
					// Nobody holds the subscription: end it without telling
					// its sink, whose subscribe call failed.
					sub.mu.Lock()
					sub.done = true
					sub.mu.Unlock()
					s.fireAndForget(sub.unsubMethod, id)
				}
			case <-s.done:
			}
		}
		return nil, ctx.Err()
	case <-s.done:
		// The reply may have raced the close.
		select {
		case m := <-p.reply:
			return m, nil
		default:
			return nil, ErrConnectionLost
		}
	}
}

// result makes a call and returns its result; a node's error answer comes
// back as a *jsonrpc.Error.
func (s *session) result(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	m, err := s.call(ctx, method, params, nil)
	if err != nil {
		return nil, err
	}
	if m.Error != nil {
		return nil, m.Error
	}
	return m.Result, nil
}

// forget gives up on a pending call. It reports false when the reply was
// already taken for dispatch.
func (s *session) forget(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[id]
	if p == nil {
		return false
	}
	if p.sub != nil || p.onReply != nil {
		// Kept, so that a late subscription id is unsubscribed at once,
		// and onReply learns of what a late reply started.
		p.abandoned = true
		return true
	}
	delete(s.pending, id)
	return true
}

// fireAndForget sends a request whose reply nobody waits for.
func (s *session) fireAndForget(method string, subID json.RawMessage) {
	params := append(append([]byte{'['}, subID...), ']')
	frame := jsonrpc.AppendRequest(nil, s.node.nextID.Add(1), method, params)
	select {
	case s.send <- frame:
	default:
	}
}

func (s *session) unsubscribe(ctx context.Context, sub *Subscription, subID json.RawMessage) (*jsonrpc.Message, error) {
	s.mu.Lock()
	if s.subs != nil {
		delete(s.subs, string(subID))
	}
	s.mu.Unlock()
	params := append(append([]byte{'['}, subID...), ']')
	return s.call(ctx, sub.unsubMethod, params, nil)
}

// close ends the session once: pending calls fail and every subscription
// on it is told it was lost.
func (s *session) close(err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	subs := make([]*Subscription, 0, len(s.subs))
	for _, sub := range s.subs {
		subs = append(subs, sub)
	}
	s.subs = nil
	s.pending = nil
	s.early = nil
	s.mu.Unlock()
	close(s.done)
	_ = s.ws.Close()
	for _, sub := range subs {
		sub.lost(err)
	}
}

func (s *session) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// isSubscriptionID accepts the id forms nodes use: strings and numbers.
func isSubscriptionID(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return false
	}
	c := raw[0]
	return c == '"' || c == '-' || (c >= '0' && c <= '9')
}
