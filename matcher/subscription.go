package matcher

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/elara-gateway/elara/internal/multiwrite"
	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/suber"
)

// Upstream is the chain's set of nodes, as the matcher needs it.
type Upstream interface {
	Subscribe(ctx context.Context, method string, params json.RawMessage, unsubMethod string, sink suber.Sink) (*suber.Subscription, error)
	// Ready reports whether a node may serve users now.
	Ready(n *suber.Node) bool
	// Changes returns a channel closed at the next health change.
	Changes() <-chan struct{}
}

// Client is the part of a client connection the matcher writes to.
type Client interface {
	// Send queues one frame for the client without blocking. It returns
	// false when the frame cannot be queued (the client is gone or cannot
	// keep up); the client connection deals with that itself.
	Send(frame []byte) bool
	// Ended tells the client that one of its subscriptions ended without
	// an unsubscribe (its node was lost, or it sent its final event), so
	// it no longer counts against the client's limit.
	Ended(cs *ClientSub)
}

// NotificationClient is a Client that can send a shared notification
// without a frame of its own: when it can write at once, it writes the
// notification's parts, so a fan-out allocates nothing per client.
type NotificationClient interface {
	Client
	// SendNotification is Send(n.For(subscription)). A write the client
	// can make at once may join batch (if not nil), to be made when the
	// caller flushes it.
	SendNotification(n *jsonrpc.Notification, subscription json.RawMessage, batch *multiwrite.Batch) bool
}

// Options tune a Matcher.
type Options struct {
	// Grace is how long a shared upstream subscription outlives its last
	// client, so a client that comes back at once reuses it.
	Grace time.Duration
	// CallTimeout bounds each upstream call the matcher makes itself.
	CallTimeout time.Duration
	Logger      *zap.Logger
	// FollowPins bounds the blocks one client follow holds pinned on a
	// shared upstream chainHead follow; beyond it that client gets stop
	// (default 256).
	FollowPins int
	// FollowOperations bounds the operations one client follow runs at
	// once; beyond it the client is answered limitReached (default 16).
	FollowOperations int
	// FollowUnready is how long the node of a shared chainHead follow may
	// stay not ready before its clients get stop (default 30s); new
	// follows go to a ready node at once.
	FollowUnready time.Duration
}

// ErrClosed is returned after the matcher was closed.
var ErrClosed = errors.New("matcher closed")

// Matcher binds client subscriptions to upstream ones for one chain.
type Matcher struct {
	up   Upstream
	opts Options
	log  *zap.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	shared map[string]*sharedSub
	// follows are the shared upstream chainHead follows new client
	// follows join, by params; allFollows also holds those left to their
	// clients when their node stopped being ready (follow.go).
	follows    map[string]*followHub
	allFollows map[*followHub]struct{}

	// onHead, when set, hears of every new or finalized head before
	// clients do.
	onHead    atomic.Pointer[func(number uint64, finalized bool)]
	onRuntime atomic.Pointer[func(version json.RawMessage)]

	// graceNs and callTimeoutNs are Options.Grace and CallTimeout as in
	// force: a reload that keeps the chain changes them (SetTimes).
	graceNs, callTimeoutNs atomic.Int64
}

// ObserveHeads registers fn to hear of every head number shared head
// subscriptions deliver, before any client gets it.
func (m *Matcher) ObserveHeads(fn func(number uint64, finalized bool)) {
	m.onHead.Store(&fn)
}

// ObserveRuntime registers fn to hear of every runtime version shared
// subscriptions deliver, before any client gets it.
func (m *Matcher) ObserveRuntime(fn func(version json.RawMessage)) {
	m.onRuntime.Store(&fn)
}

// New returns a matcher over up and starts watching node health, so
// shared subscriptions leave nodes that stop being ready.
func New(up Upstream, opts Options) *Matcher {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Matcher{up: up, opts: opts, log: opts.Logger, ctx: ctx, cancel: cancel, shared: make(map[string]*sharedSub)}
	m.SetTimes(opts.Grace, opts.CallTimeout)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.watchHealth()
	}()
	return m
}

// Close ends every shared subscription and waits for background work.
func (m *Matcher) Close() {
	m.mu.Lock()
	m.closed = true
	subs := make([]*sharedSub, 0, len(m.shared))
	for _, s := range m.shared {
		subs = append(subs, s)
	}
	m.shared = map[string]*sharedSub{}
	hubs := make([]*followHub, 0, len(m.allFollows))
	for h := range m.allFollows {
		hubs = append(hubs, h)
	}
	m.mu.Unlock()
	for _, s := range subs {
		s.finish()
	}
	for _, h := range hubs {
		h.kill("matcher closed", true)
	}
	m.cancel()
	m.wg.Wait()
}

// SharedCount is how many shared subscriptions are open upstream.
func (m *Matcher) SharedCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.shared)
}

// background runs fn on its own goroutine, or, once the matcher is
// closed, right here, so Close never races a late start.
func (m *Matcher) background(fn func()) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		fn()
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		fn()
	}()
}

// watchHealth moves shared subscriptions off nodes that stop being ready.
func (m *Matcher) watchHealth() {
	for {
		select {
		case <-m.up.Changes():
		case <-m.ctx.Done():
			return
		}
		m.mu.Lock()
		subs := make([]*sharedSub, 0, len(m.shared))
		for _, s := range m.shared {
			subs = append(subs, s)
		}
		m.mu.Unlock()
		for _, s := range subs {
			if n := s.node(); n != nil && !m.up.Ready(n) {
				s.enqueue(sharedEvent{kind: evCheck})
			}
		}
		m.checkFollows()
	}
}

// ClientSub is one client's subscription.
type ClientSub struct {
	m      *Matcher
	id     json.RawMessage
	client Client
	family Family
	method string
	params json.RawMessage

	mu sync.Mutex
	// Until the client has its subscribe reply, notifications wait here.
	active bool
	held   [][]byte
	ended  bool
	// Exactly one of up (a subscription of its own) and shared is set.
	up     *suber.Subscription
	shared *sharedSub
	// follow is set instead for a client chainHead follow (follow.go).
	follow *followHub
	// ops holds events of chainHead operations whose reply the client
	// does not have yet (see operations.go); opsHeld is its length.
	ops     map[string]*heldOperation
	opsHeld atomic.Int32
}

// maxHeld bounds notifications held for one subscription before its reply.
const maxHeld = 1024

// Subscribe opens a subscription for client: shared with other clients
// when the method allows, otherwise one of its own. The caller sends the
// reply (whose result is ID()) and then calls Activate.
func (m *Matcher) Subscribe(ctx context.Context, client Client, method string, params json.RawMessage) (*ClientSub, error) {
	fam, ok := LookupSubscribe(method)
	if !ok {
		fam = Family{Name: method, Subscribe: method, Unsubscribe: guessUnsubscribe(method)}
	}
	cs := &ClientSub{m: m, id: newSubscriptionID(), client: client, family: fam, method: method, params: params}
	if fam.Shared {
		return cs, m.join(ctx, cs)
	}
	if fam.Name == followFamily {
		if err := m.follow(ctx, cs); err != nil {
			return nil, err
		}
		return cs, nil
	}
	up, err := m.up.Subscribe(ctx, method, params, fam.Unsubscribe, cs)
	if err != nil {
		return nil, err
	}
	cs.mu.Lock()
	// If the connection died meanwhile, a resumed subscription may already
	// be in place: keep it.
	if cs.up == nil {
		cs.up = up
	}
	cs.mu.Unlock()
	return cs, nil
}

// ID is the subscription id the client sees.
func (s *ClientSub) ID() json.RawMessage { return s.id }

// Family is the kind of subscription.
func (s *ClientSub) Family() Family { return s.family }

// Upstream is the node-side subscription of a subscription of its own
// (nil for shared ones): calls that name the subscription go through it.
func (s *ClientSub) Upstream() *suber.Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up
}

// Activate releases held notifications; call it once the subscribe reply
// has been queued for the client.
func (s *ClientSub) Activate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.held {
		s.client.Send(f)
	}
	s.held = nil
	s.active = true
}

// deliver sends a frame, or holds it until the client has its reply.
func (s *ClientSub) deliver(frame []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	if !s.active {
		if len(s.held) < maxHeld {
			s.held = append(s.held, frame)
		}
		return
	}
	s.client.Send(frame)
}

// deliverShared sends a notification shared with other clients; a write
// may join batch.
func (s *ClientSub) deliverShared(n *jsonrpc.Notification, batch *multiwrite.Batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch c, ok := s.client.(NotificationClient); {
	case s.ended:
	case !s.active:
		if len(s.held) < maxHeld {
			s.held = append(s.held, n.For(s.id))
		}
	case ok:
		c.SendNotification(n, s.id, batch)
	default:
		s.client.Send(n.For(s.id))
	}
}

// Notify implements suber.Sink for subscriptions of their own.
func (s *ClientSub) Notify(method string, result json.RawMessage) {
	frame := jsonrpc.AppendNotification(nil, method, s.id, result)
	if s.holdOperationEvent(result, frame) {
		return
	}
	s.deliver(frame)
	if isFinalEvent(s.family.Name, result) {
		// The node ends the subscription itself after this event.
		s.end()
	}
}

// end marks a subscription over on the node's side and frees the client's
// slot and the upstream registration.
func (s *ClientSub) end() {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	up := s.up
	s.mu.Unlock()
	s.client.Ended(s)
	if up != nil {
		s.m.background(func() { s.m.unsubscribe(up) })
	}
}

// isFinalEvent reports whether a notification is the last one its
// subscription gets, per the method's spec.
func isFinalEvent(family string, result json.RawMessage) bool {
	switch family {
	case "extrinsic":
		// A status is a string ("dropped") or an object ({"finalized": h}).
		var status string
		if json.Unmarshal(result, &status) == nil {
			return status == "dropped" || status == "invalid"
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(result, &obj) != nil {
			return false
		}
		for _, k := range []string{"finalized", "usurped", "finalityTimeout"} {
			if _, ok := obj[k]; ok {
				return true
			}
		}
	case "chainHead", "chainHeadUnstable":
		return eventName(result) == "stop"
	case "transactionWatch":
		switch eventName(result) {
		case "finalized", "error", "invalid", "dropped":
			return true
		}
	}
	return false
}

func eventName(result json.RawMessage) string {
	var ev struct {
		Event string `json:"event"`
	}
	_ = json.Unmarshal(result, &ev)
	return ev.Event
}

// Done reports whether the subscription has ended, whatever the reason.
func (s *ClientSub) Done() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// Lost implements suber.Sink: the node's connection closed under the
// subscription. Resumable ones are re-opened on a ready node; the others
// end with the event their spec defines, never in silence.
func (s *ClientSub) Lost(err error) {
	if !s.family.Resumable {
		if s.family.LostEvent != nil {
			s.deliver(jsonrpc.AppendNotification(nil, s.notificationMethod(), s.id, s.family.LostEvent))
		}
		s.mu.Lock()
		already := s.ended
		s.ended = true
		s.mu.Unlock()
		if !already {
			s.client.Ended(s)
		}
		return
	}
	s.m.background(func() { s.resume(err) })
}

func (s *ClientSub) notificationMethod() string {
	if s.family.Notification != "" {
		return s.family.Notification
	}
	switch s.family.Name {
	case "extrinsic":
		return "author_extrinsicUpdate"
	case "transactionWatch":
		return "transactionWatch_v1_watchEvent"
	case "chainHead":
		return "chainHead_v1_followEvent"
	case "chainHeadUnstable":
		return "chainHead_unstable_followEvent"
	}
	return s.method
}

// resume re-opens the subscription until it succeeds, the client leaves or
// the matcher closes, backing off between attempts.
func (s *ClientSub) resume(cause error) {
	backoff := 100 * time.Millisecond
	if errors.Is(cause, suber.ErrSubscriptionFailed) {
		// The node ended it on purpose: do not hammer it with retries.
		if !sleepOrChange(s.m.ctx, nil, time.Second) {
			return
		}
	}
	for {
		s.mu.Lock()
		ended := s.ended
		s.mu.Unlock()
		if ended || s.m.ctx.Err() != nil {
			return
		}
		ctx, cancel := context.WithTimeout(s.m.ctx, s.m.callTimeout())
		up, err := s.m.up.Subscribe(ctx, s.method, s.params, s.family.Unsubscribe, s)
		cancel()
		if err == nil {
			s.mu.Lock()
			if s.ended {
				s.mu.Unlock()
				s.m.unsubscribe(up)
				return
			}
			s.up = up
			s.mu.Unlock()
			s.m.log.Debug("subscription resumed", zap.String("method", s.method), zap.NamedError("cause", cause))
			return
		}
		if !sleepOrChange(s.m.ctx, s.m.up.Changes(), backoff) {
			return
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// Unsubscribe ends the subscription at the client's request and returns
// what a node answers: true, or false when it had already ended.
func (s *ClientSub) Unsubscribe(ctx context.Context) (json.RawMessage, error) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return json.RawMessage("false"), nil
	}
	s.ended = true
	up, shared, follow := s.up, s.shared, s.follow
	s.mu.Unlock()
	if shared != nil {
		shared.leave(s)
		return json.RawMessage("true"), nil
	}
	if follow != nil {
		follow.leave(s)
		return json.RawMessage("null"), nil // chainHead_v1_unfollow's answer
	}
	if up == nil {
		return json.RawMessage("true"), nil
	}
	return up.Unsubscribe(ctx)
}

// Close ends the subscription because its client left; an upstream one of
// its own is released in the background.
func (s *ClientSub) Close() {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	up, shared, follow := s.up, s.shared, s.follow
	s.mu.Unlock()
	if shared != nil {
		shared.leave(s)
		return
	}
	if follow != nil {
		follow.leave(s)
		return
	}
	if up != nil {
		s.m.background(func() { s.m.unsubscribe(up) })
	}
}

func (m *Matcher) unsubscribe(up *suber.Subscription) {
	ctx, cancel := context.WithTimeout(context.Background(), m.callTimeout())
	defer cancel()
	if _, err := up.Unsubscribe(ctx); err != nil {
		if ce := m.log.Check(zap.DebugLevel, "upstream unsubscribe failed"); ce != nil {
			ce.Write(zap.Error(err))
		}
	}
}

// sleepOrChange waits d, or less if node health changes; false if ctx ends.
func sleepOrChange(ctx context.Context, changes <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-changes:
	case <-ctx.Done():
		return false
	}
	return true
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// newSubscriptionID returns a random 16-character string id, the form
// Substrate nodes use, as JSON.
func newSubscriptionID() json.RawMessage {
	b := make([]byte, 18)
	b[0], b[17] = '"', '"'
	for i := 1; i < 17; i++ {
		b[i] = idAlphabet[rand.N(len(idAlphabet))]
	}
	return b
}

func guessUnsubscribe(method string) string {
	for i := 0; i+len("_subscribe") <= len(method); i++ {
		if method[i:i+len("_subscribe")] == "_subscribe" {
			return method[:i] + "_unsubscribe" + method[i+len("_subscribe"):]
		}
	}
	return ""
}
