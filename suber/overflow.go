package suber

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// A node bounds the subscriptions one connection may hold (polkadot-sdk:
// 1024 by default, and 4 chainHead follows). Subscriptions that cannot be
// shared (a watched extrinsic, a client's own follow) would otherwise
// reach that bound on the pool's few connections, and the node would
// refuse the next one. Subscribe places each on a pool connection with
// room; when none has room it opens an extra connection, up to
// MaxExtraConnections, and closes an extra connection again once it has
// held no subscription for ExtraIdle. A subscribe the node refuses with a
// per-connection limit error is tried once more on another connection.

// Defaults for the overflow options.
const (
	DefaultMaxSubscriptionsPerConnection = 1000 // below polkadot-sdk's 1024
	DefaultMaxExtraConnections           = 16
	DefaultExtraIdle                     = 30 * time.Second
)

// Errors a node answers when a connection holds all it may.
const (
	codeFollowLimit          = -32800 // polkadot-sdk: chainHead follows per connection
	codeTooManySubscriptions = -32006 // jsonrpsee: subscriptions per connection
)

func isConnectionLimit(err error) bool {
	e, ok := IsUpstreamError(err)
	return ok && (e.Code == codeFollowLimit || e.Code == codeTooManySubscriptions)
}

// extraConns are a node's connections beyond the pool.
type extraConns struct {
	mu       sync.Mutex
	sessions []*session
	dialing  int
	// reserved counts subscribes in flight per session, so concurrent
	// subscribes do not all pick the same last free place.
	reserved map[*session]int
	// full marks sessions the node refused a subscription on, until one
	// of their subscriptions ends.
	full map[*session]int
	// closing is set by Node.Close before it waits for the node's
	// goroutines: no extra connection is opened (nor its goroutine
	// counted) after that.
	closing bool
}

// subCount is how many subscriptions the session holds.
func (s *session) subCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// subscribeSession returns a connection with room for one more
// subscription, opening an extra one if needed; release must be called
// once the subscribe call is answered.
func (n *Node) subscribeSession(ctx context.Context, avoid map[*session]bool) (*session, func(), error) {
	if _, err := n.session(ctx); err != nil { // waits for the pool at start-up
		return nil, nil, err
	}
	limit := n.opts.MaxSubscriptionsPerConnection
	x := &n.extra
	for {
		x.mu.Lock()
		if x.closing {
			x.mu.Unlock()
			return nil, nil, ErrClosed
		}
		if x.reserved == nil {
			x.reserved = make(map[*session]int)
			x.full = make(map[*session]int)
		}
		if sess := n.roomyLocked(limit, avoid); sess != nil {
			x.reserved[sess]++
			x.mu.Unlock()
			return sess, func() { n.unreserve(sess) }, nil
		}
		canDial := len(x.sessions)+x.dialing < n.opts.MaxExtraConnections
		if canDial {
			x.dialing++
		}
		x.mu.Unlock()
		if !canDial {
			// Every connection is full and no more may be opened: let the
			// node answer (it may have room after all).
			sess, err := n.session(ctx)
			return sess, func() {}, err
		}
		sess, err := n.dialExtra(ctx)
		x.mu.Lock()
		x.dialing--
		closing := x.closing
		if err == nil && !closing {
			x.sessions = append(x.sessions, sess)
			// Counted under x.mu, which Close takes before it waits, so
			// the Add never races its Wait.
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				n.runExtra(sess)
			}()
		}
		x.mu.Unlock()
		if closing {
			if err == nil {
				sess.close(ErrClosed)
			}
			return nil, nil, ErrClosed
		}
		if err != nil {
			n.log.Warn("extra upstream connection failed", zap.Error(err))
			return nil, nil, ErrUnavailable
		}
		n.log.Info("extra upstream connection opened: the pool's connections hold all the subscriptions they may")
	}
}

// dialExtra dials an extra connection; Close aborts the dial.
func (n *Node) dialExtra(ctx context.Context) (*session, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(n.ctx, cancel)
	defer stop()
	return n.dial(ctx)
}

// roomyLocked picks a live connection with room: pool connections first,
// round-robin, then extra ones.
func (n *Node) roomyLocked(limit int, avoid map[*session]bool) *session {
	x := &n.extra
	ok := func(sess *session) bool {
		return sess != nil && !sess.isClosed() && !avoid[sess] && x.full[sess] == 0 &&
			sess.subCount()+x.reserved[sess] < limit
	}
	start := n.rr.Add(1)
	for i := range n.slots {
		if sess := n.slots[(start+uint64(i))%uint64(len(n.slots))].cur.Load(); ok(sess) {
			return sess
		}
	}
	for _, sess := range x.sessions {
		if ok(sess) {
			return sess
		}
	}
	return nil
}

func (n *Node) unreserve(sess *session) {
	n.extra.mu.Lock()
	defer n.extra.mu.Unlock()
	if n.extra.reserved[sess]--; n.extra.reserved[sess] <= 0 {
		delete(n.extra.reserved, sess)
	}
}

// markFull records that the node refused a subscription on sess; it gets
// room again once it holds fewer subscriptions than then.
func (n *Node) markFull(sess *session) {
	n.extra.mu.Lock()
	defer n.extra.mu.Unlock()
	if n.extra.full == nil {
		n.extra.full = make(map[*session]int)
	}
	n.extra.full[sess] = max(sess.subCount(), 1)
}

// runExtra serves an extra connection and closes it once it has held no
// subscription for ExtraIdle.
func (n *Node) runExtra(sess *session) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		idle := n.opts.ExtraIdle
		t := time.NewTicker(max(idle/4, 10*time.Millisecond))
		defer t.Stop()
		var since time.Time
		for {
			select {
			case <-t.C:
			case <-sess.done:
				return
			case <-n.ctx.Done():
				return
			}
			n.extra.mu.Lock()
			busy := sess.subCount() > 0 || n.extra.reserved[sess] > 0
			n.extra.mu.Unlock()
			switch {
			case busy:
				since = time.Time{}
			case since.IsZero():
				since = time.Now()
			case time.Since(since) >= idle:
				n.log.Info("idle extra upstream connection closed")
				sess.close(ErrClosed)
				return
			}
		}
	}()
	sess.run(n.ctx)
	n.extra.mu.Lock()
	for i, s := range n.extra.sessions {
		if s == sess {
			n.extra.sessions = append(n.extra.sessions[:i], n.extra.sessions[i+1:]...)
			break
		}
	}
	delete(n.extra.reserved, sess)
	delete(n.extra.full, sess)
	n.extra.mu.Unlock()
}

// refreshFull clears full marks of sessions that lost a subscription
// since the node refused one there.
func (n *Node) refreshFull() {
	n.extra.mu.Lock()
	defer n.extra.mu.Unlock()
	for sess, at := range n.extra.full {
		if sess.isClosed() || sess.subCount() < at {
			delete(n.extra.full, sess)
		}
	}
}

// ExtraConnections is how many connections beyond the pool are open.
func (n *Node) ExtraConnections() int {
	n.extra.mu.Lock()
	defer n.extra.mu.Unlock()
	return len(n.extra.sessions)
}

// subscribeOnce subscribes on one connection with room.
func (n *Node) subscribeOnce(ctx context.Context, method string, params json.RawMessage, unsubMethod string, sink Sink, avoid map[*session]bool) (*Subscription, *session, error) {
	n.refreshFull()
	sess, release, err := n.subscribeSession(ctx, avoid)
	if err != nil {
		return nil, nil, err
	}
	defer release()
	sub := &Subscription{node: n, unsubMethod: unsubMethod, sink: sink}
	m, err := sess.call(ctx, method, params, sub)
	if err != nil {
		return nil, sess, err
	}
	if m.Error != nil {
		return nil, sess, m.Error
	}
	if sub.ID() == nil {
		return nil, sess, fmt.Errorf("%s: node answered %s, not a subscription id", method, truncate(m.Result))
	}
	return sub, sess, nil
}
