package suber

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/elara-gateway/elara/jsonrpc"
)

// Sink receives what happens to one upstream subscription. Both methods
// are called from the connection's reader and must not block.
type Sink interface {
	// Notify delivers one notification, in the order the node sent them.
	Notify(method string, result json.RawMessage)
	// Lost reports that the subscription ended without an unsubscribe:
	// its connection closed, or the node ended it with an error
	// notification (err is then ErrSubscriptionFailed). No Notify follows.
	Lost(err error)
}

// Subscription is one subscription held on one node's connection. Calls
// about it must go to that connection: it is sticky by nature.
type Subscription struct {
	node        *Node
	unsubMethod string
	sink        Sink

	mu   sync.Mutex
	sess *session
	id   json.RawMessage
	done bool
}

func (s *Subscription) bind(sess *session, id json.RawMessage) {
	s.mu.Lock()
	s.sess, s.id = sess, id
	s.mu.Unlock()
}

// ID is the subscription id the node gave.
func (s *Subscription) ID() json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// Done reports whether the subscription can deliver nothing more: it was
// unsubscribed, its connection closed or the node ended it.
func (s *Subscription) Done() bool {
	s.mu.Lock()
	done, sess := s.done, s.sess
	s.mu.Unlock()
	return done || (sess != nil && sess.isClosed())
}

// Node is the node holding the subscription.
func (s *Subscription) Node() *Node { return s.node }

// Unsubscribe ends the subscription on the node and returns the node's
// answer. It is safe to call more than once; later calls answer false.
func (s *Subscription) Unsubscribe(ctx context.Context) (json.RawMessage, error) {
	s.mu.Lock()
	sess, id, done := s.sess, s.id, s.done
	s.done = true
	s.mu.Unlock()
	if done || sess == nil || sess.isClosed() {
		return json.RawMessage("false"), nil
	}
	m, err := sess.unsubscribe(ctx, s, id)
	if err != nil {
		return nil, err
	}
	if m.Error != nil {
		return nil, m.Error
	}
	return m.Result, nil
}

// Call sends a request on the connection holding the subscription: calls
// that name it (chainHead_v1_*) must reach the node that owns it.
func (s *Subscription) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	s.mu.Lock()
	sess := s.sess
	s.mu.Unlock()
	if sess == nil || sess.isClosed() {
		return nil, ErrConnectionLost
	}
	return sess.result(ctx, method, params)
}

// CallThen is Call with onReply, which is given the result of a
// successful reply on the connection's reader before it reads the next
// message: notifications the node sent after its reply find onReply's
// work done. Once onReply ran, the caller's ctx ending no longer turns
// the reply into an error (only the connection's loss still may); a reply
// that comes after the caller gave up still reaches onReply.
func (s *Subscription) CallThen(ctx context.Context, method string, params json.RawMessage, onReply func(result json.RawMessage)) (json.RawMessage, error) {
	s.mu.Lock()
	sess := s.sess
	s.mu.Unlock()
	if sess == nil || sess.isClosed() {
		return nil, ErrConnectionLost
	}
	m, err := sess.exchange(ctx, method, params, &pendingCall{reply: make(chan *jsonrpc.Message, 1), onReply: onReply})
	if err != nil {
		return nil, err
	}
	if m.Error != nil {
		return nil, m.Error
	}
	return m.Result, nil
}

func (s *Subscription) lost(err error) {
	s.mu.Lock()
	already := s.done
	s.done = true
	s.mu.Unlock()
	if !already {
		s.sink.Lost(err)
	}
}
