package matcher

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/suber"
)

// Upstream opens subscriptions on a chain's nodes.
type Upstream interface {
	Subscribe(ctx context.Context, method string, params json.RawMessage, unsubMethod string, sink suber.Sink) (*suber.Subscription, error)
}

// Client is the part of a client connection the matcher writes to.
type Client interface {
	// Send queues one frame for the client without blocking. It returns
	// false when the frame cannot be queued (the client is gone or cannot
	// keep up); the client connection deals with that itself.
	Send(frame []byte) bool
}

// Matcher binds client subscriptions to upstream ones for one chain.
type Matcher struct {
	up  Upstream
	log *zap.Logger
	// ResubscribeTimeout bounds each attempt to re-open a lost subscription.
	ResubscribeTimeout time.Duration
	// wg tracks background work so Close can wait for it.
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
	ctx    context.Context
	cancel context.CancelFunc
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

// New returns a matcher over up.
func New(up Upstream, log *zap.Logger) *Matcher {
	if log == nil {
		log = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Matcher{up: up, log: log, ResubscribeTimeout: 10 * time.Second, ctx: ctx, cancel: cancel}
}

// Close stops background work (resubscriptions, cleanups) and waits for it.
func (m *Matcher) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
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
	active  bool
	held    [][]byte
	up      *suber.Subscription
	ended   bool
	resumes int
}

// maxHeld bounds notifications held for one subscription before its reply.
const maxHeld = 1024

// Subscribe opens a subscription for client. The caller sends the reply
// (whose result is ID()) and then calls Activate.
func (m *Matcher) Subscribe(ctx context.Context, client Client, method string, params json.RawMessage) (*ClientSub, error) {
	fam, ok := LookupSubscribe(method)
	if !ok {
		fam = Family{Name: method, Unsubscribe: guessUnsubscribe(method)}
	}
	s := &ClientSub{m: m, id: newSubscriptionID(), client: client, family: fam, method: method, params: params}
	up, err := m.up.Subscribe(ctx, method, params, fam.Unsubscribe, s)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.up = up
	s.mu.Unlock()
	return s, nil
}

// ID is the subscription id the client sees.
func (s *ClientSub) ID() json.RawMessage { return s.id }

// Family is the kind of subscription.
func (s *ClientSub) Family() Family { return s.family }

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

// Notify implements suber.Sink.
func (s *ClientSub) Notify(method string, result json.RawMessage) {
	frame := jsonrpc.AppendNotification(nil, method, s.id, result)
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

// Lost implements suber.Sink: the node's connection closed under the
// subscription. Resumable ones are re-opened on any connected node; the
// others end with the event their spec defines.
func (s *ClientSub) Lost(err error) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	if !s.family.Resumable {
		s.ended = true
		if s.family.LostEvent != nil {
			frame := jsonrpc.AppendNotification(nil, s.notificationMethod(), s.id, s.family.LostEvent)
			if s.active {
				s.client.Send(frame)
			} else {
				s.held = append(s.held, frame)
			}
		}
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.m.background(func() { s.resume(err) })
}

func (s *ClientSub) notificationMethod() string {
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
	for {
		s.mu.Lock()
		ended := s.ended
		s.mu.Unlock()
		if ended || s.m.ctx.Err() != nil {
			return
		}
		ctx, cancel := context.WithTimeout(s.m.ctx, s.m.ResubscribeTimeout)
		up, err := s.m.up.Subscribe(ctx, s.method, s.params, s.family.Unsubscribe, s)
		cancel()
		if err == nil {
			s.mu.Lock()
			if s.ended {
				s.mu.Unlock()
				s.unsubscribeUpstream(up)
				return
			}
			s.up = up
			s.resumes++
			s.mu.Unlock()
			s.m.log.Debug("subscription resumed", zap.String("method", s.method), zap.NamedError("cause", cause))
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-s.m.ctx.Done():
			t.Stop()
			return
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// Unsubscribe ends the subscription at the client's request and returns
// what the node answered.
func (s *ClientSub) Unsubscribe(ctx context.Context) (json.RawMessage, error) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return json.RawMessage("false"), nil
	}
	s.ended = true
	up := s.up
	s.mu.Unlock()
	if up == nil {
		return json.RawMessage("true"), nil
	}
	return up.Unsubscribe(ctx)
}

// Close ends the subscription because its client left; the upstream one
// is released in the background.
func (s *ClientSub) Close() {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	up := s.up
	s.mu.Unlock()
	if up != nil {
		s.m.background(func() { s.unsubscribeUpstream(up) })
	}
}

func (s *ClientSub) unsubscribeUpstream(up *suber.Subscription) {
	ctx, cancel := context.WithTimeout(context.Background(), s.m.ResubscribeTimeout)
	defer cancel()
	if _, err := up.Unsubscribe(ctx); err != nil {
		if ce := s.m.log.Check(zap.DebugLevel, "upstream unsubscribe failed"); ce != nil {
			ce.Write(zap.String("method", s.method), zap.Error(err))
		}
	}
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
	prefix, name, ok := cutSubscribe(method)
	if !ok {
		return ""
	}
	return prefix + "_unsubscribe" + name
}

func cutSubscribe(method string) (prefix, rest string, ok bool) {
	for i := 0; i+len("_subscribe") <= len(method); i++ {
		if method[i:i+len("_subscribe")] == "_subscribe" {
			return method[:i], method[i+len("_subscribe"):], true
		}
	}
	return "", "", false
}
