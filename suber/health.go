package suber

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Health is what the gateway knows of one node.
type Health struct {
	URL             string    `json:"url"`
	Connected       bool      `json:"connected"`
	Checked         bool      `json:"checked"`
	FailedChecks    int       `json:"failed_checks,omitempty"`
	Syncing         bool      `json:"is_syncing"`
	Peers           int       `json:"peers"`
	ShouldHavePeers bool      `json:"should_have_peers"`
	Best            uint64    `json:"best"`
	Finalized       uint64    `json:"finalized"`
	LastHeadAt      time.Time `json:"last_head_at"`
	LatencyMillis   float64   `json:"latency_ms"`
	LastError       string    `json:"last_error,omitempty"`
	// Ready and NotReadyBecause are filled in by the node's group, which
	// compares the node with the others.
	Ready           bool   `json:"ready"`
	NotReadyBecause string `json:"not_ready_because,omitempty"`
}

// healthState is guarded by Node.hmu.
type healthState struct {
	checked         bool
	syncing         bool
	peers           int
	shouldHavePeers bool
	best, finalized uint64
	lastHeadAt      time.Time
	latency         time.Duration
	lastErr         string
	// failures counts health checks failed in a row; a connected node is
	// judged on its last answer until failuresToUnready of them.
	failures int
}

const (
	failuresToUnready = 3
	healthTimeout     = 5 * time.Second
)

// clock is the time source of health decisions; tests replace it.
type clock func() time.Time

// Health returns a snapshot of the node's state.
func (n *Node) Health() Health {
	n.hmu.Lock()
	h := n.health
	n.hmu.Unlock()
	return Health{
		URL:             n.display,
		Connected:       n.Connected(),
		Checked:         h.checked,
		FailedChecks:    h.failures,
		Syncing:         h.syncing,
		Peers:           h.peers,
		ShouldHavePeers: h.shouldHavePeers,
		Best:            h.best,
		Finalized:       h.finalized,
		LastHeadAt:      h.lastHeadAt,
		LatencyMillis:   float64(h.latency.Microseconds()) / 1000,
		LastError:       h.lastErr,
	}
}

// onChange registers fn to run after every change of the node's health;
// the returned func unregisters it.
func (n *Node) onChange(fn func()) func() {
	n.hmu.Lock()
	defer n.hmu.Unlock()
	id := n.nextWatcher
	n.nextWatcher++
	n.watchers[id] = fn
	return func() {
		n.hmu.Lock()
		delete(n.watchers, id)
		n.hmu.Unlock()
	}
}

func (n *Node) updateHealth(update func(h *healthState)) {
	n.hmu.Lock()
	update(&n.health)
	fns := make([]func(), 0, len(n.watchers))
	for _, fn := range n.watchers {
		fns = append(fns, fn)
	}
	n.hmu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// kick asks the monitor for a check now, e.g. after a reconnect.
func (n *Node) kick() {
	select {
	case n.kicks <- struct{}{}:
	default:
	}
}

// monitor keeps the node's health current: system_health on a timer and
// at once after each reconnect; heads from subscriptions on the node
// itself (polled, for HTTP nodes).
func (n *Node) monitor(ctx context.Context) {
	ticker := time.NewTicker(n.opts.HealthInterval)
	defer ticker.Stop()
	heads := &headWatch{node: n}
	defer heads.stop()
	for {
		// An HTTP node that failed is probed all the same: a success is
		// the only way it is seen to recover.
		if n.Connected() || n.http != nil {
			if n.http == nil {
				heads.ensure(ctx)
				n.check(ctx, heads)
			} else {
				n.check(ctx, nil)
			}
		}
		select {
		case <-ticker.C:
		case <-n.kicks:
		case <-ctx.Done():
			return
		}
	}
}

type systemHealth struct {
	Peers           int  `json:"peers"`
	IsSyncing       bool `json:"isSyncing"`
	ShouldHavePeers bool `json:"shouldHavePeers"`
}

// check polls system_health, and the heads where no subscription reports
// them: always for HTTP nodes; for WebSocket nodes (heads set) when the
// head subscription has been silent for a health interval, so a
// subscription that stopped delivering cannot freeze the node's best head.
func (n *Node) check(ctx context.Context, heads *headWatch) {
	// A busy node may take longer than the interval to answer; that
	// alone does not make it unhealthy.
	ctx, cancel := context.WithTimeout(ctx, max(n.opts.HealthInterval, healthTimeout))
	defer cancel()
	start := n.now()
	raw, err := n.Call(ctx, "system_health", nil)
	took := n.now().Sub(start)
	var sh systemHealth
	if err == nil {
		err = json.Unmarshal(raw, &sh)
	}
	if err != nil {
		if n.ctx.Err() == nil {
			n.updateHealth(func(h *healthState) {
				h.failures++
				h.lastErr = "system_health: " + err.Error()
				if h.failures >= failuresToUnready {
					h.checked = false
				}
			})
		}
		return
	}
	var best, finalized uint64
	var headsOK, bestOK bool
	if n.http != nil {
		best, finalized, headsOK = n.pollHeads(ctx)
	} else if heads != nil && heads.silentFor(n.now()) > n.opts.HealthInterval {
		if best, bestOK = n.pollBest(ctx); bestOK {
			heads.polled(ctx, best, n.now())
		}
	}
	n.updateHealth(func(h *healthState) {
		was := *h
		h.checked, h.lastErr, h.failures = true, "", 0
		h.syncing, h.peers, h.shouldHavePeers = sh.IsSyncing, sh.Peers, sh.ShouldHavePeers
		if h.latency == 0 {
			h.latency = took
		} else {
			h.latency = (h.latency*7 + took) / 8
		}
		if headsOK || bestOK {
			n.advanceLocked(h, best, false)
		}
		if headsOK {
			n.advanceLocked(h, finalized, true)
		}
		if !was.checked || was.syncing != h.syncing {
			n.log.Info("node health", zap.Bool("syncing", h.syncing), zap.Int("peers", h.peers), zap.Uint64("best", h.best))
		}
	})
}

// advanceLocked records a head number; only progress counts as a new head.
func (n *Node) advanceLocked(h *healthState, number uint64, finalized bool) {
	if finalized {
		if number > h.finalized {
			h.finalized = number
		}
		return
	}
	if number > h.best || h.lastHeadAt.IsZero() {
		h.best = number
		h.lastHeadAt = n.now()
	}
}

func (n *Node) pollBest(ctx context.Context) (uint64, bool) {
	raw, err := n.Call(ctx, "chain_getHeader", nil)
	if err != nil {
		return 0, false
	}
	return HeaderNumber(raw)
}

func (n *Node) pollHeads(ctx context.Context) (best, finalized uint64, ok bool) {
	best, ok = n.pollBest(ctx)
	if !ok {
		return 0, 0, false
	}
	hash, err := n.Call(ctx, "chain_getFinalizedHead", nil)
	if err != nil {
		return 0, 0, false
	}
	raw, err := n.Call(ctx, "chain_getHeader", append(append([]byte{'['}, hash...), ']'))
	if err != nil {
		return 0, 0, false
	}
	finalized, ok = HeaderNumber(raw)
	return best, finalized, ok
}

// HeaderNumber reads the block number of a Substrate header
// ({"number":"0x1a",...}).
func HeaderNumber(header json.RawMessage) (uint64, bool) {
	var h struct {
		Number string `json:"number"`
	}
	if json.Unmarshal(header, &h) != nil {
		return 0, false
	}
	s := strings.TrimPrefix(h.Number, "0x")
	if s == "" || len(s) > 16 {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 16, 64)
	return v, err == nil
}

// headWatch holds the monitor's own head subscriptions on one node.
//
// A subscription is replaced when it is done (its connection closed, or the
// node ended it), whenever that is noticed: ensure checks every round, so
// one that died before it was even stored is replaced all the same. One
// that stays open but stops delivering is caught by the health check's
// chain_getHeader poll (see polled).
type headWatch struct {
	node *Node
	mu   sync.Mutex
	best *Subscription
	fin  *Subscription
	// bestSince is when the best-head subscription was opened or last
	// delivered a head; bestNum is the last head it delivered (if seen).
	bestSince time.Time
	bestNum   uint64
	bestSeen  bool
}

type headSink struct {
	node      *Node
	finalized bool
	w         *headWatch
}

func (s headSink) Notify(_ string, result json.RawMessage) {
	number, ok := HeaderNumber(result)
	if !ok {
		return
	}
	if !s.finalized {
		s.w.mu.Lock()
		s.w.bestSince, s.w.bestNum, s.w.bestSeen = s.node.now(), number, true
		s.w.mu.Unlock()
	}
	s.node.updateHealth(func(h *healthState) { s.node.advanceLocked(h, number, s.finalized) })
}

// Lost asks for a new round: ensure sees the subscription is done and
// replaces it. The watch itself is left alone, as Lost may run before the
// subscription was stored.
func (s headSink) Lost(error) {
	s.node.kick()
}

// silentFor is how long the best-head subscription has delivered nothing
// (since it was opened, if it never did).
func (w *headWatch) silentFor(now time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return now.Sub(w.bestSince)
}

// polled hears of the best head number read with chain_getHeader. A
// subscription silent for over two health intervals that missed a head the
// node reports is broken, though open: it is ended and a new one opened.
// On a chain that makes no blocks the poll shows nothing new and the
// subscription stays.
func (w *headWatch) polled(ctx context.Context, number uint64, now time.Time) {
	w.mu.Lock()
	sub := w.best
	stale := sub != nil && now.Sub(w.bestSince) > 2*w.node.opts.HealthInterval && (!w.bestSeen || number > w.bestNum)
	if stale {
		w.best = nil
	}
	w.mu.Unlock()
	if !stale {
		return
	}
	w.node.log.Warn("head subscription silent while the node has new heads; subscribing again", zap.Uint64("best", number))
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	_, _ = sub.Unsubscribe(ctx)
	cancel()
	w.node.kick()
}

func (w *headWatch) ensure(ctx context.Context) {
	w.mu.Lock()
	needBest := w.best == nil || w.best.Done()
	needFin := w.fin == nil || w.fin.Done()
	if needBest {
		// Cleared before subscribing: the first head may arrive before
		// Subscribe returns.
		w.best, w.bestSeen = nil, false
	}
	if needFin {
		w.fin = nil
	}
	w.mu.Unlock()
	open := func(method, unsub string, finalized bool) *Subscription {
		ctx, cancel := context.WithTimeout(ctx, w.node.opts.HealthInterval)
		defer cancel()
		sub, err := w.node.Subscribe(ctx, method, nil, unsub, headSink{node: w.node, finalized: finalized, w: w})
		if err != nil {
			return nil
		}
		return sub
	}
	var opened []*Subscription
	if needBest {
		sub := open("chain_subscribeNewHeads", "chain_unsubscribeNewHeads", false)
		w.mu.Lock()
		w.best = sub
		if sub != nil && !w.bestSeen {
			// Silent from now on; while none can be opened, the silence
			// goes on and the health check polls the heads.
			w.bestSince = w.node.now()
		}
		w.mu.Unlock()
		opened = append(opened, sub)
	}
	if needFin {
		sub := open("chain_subscribeFinalizedHeads", "chain_unsubscribeFinalizedHeads", true)
		w.mu.Lock()
		w.fin = sub
		w.mu.Unlock()
		opened = append(opened, sub)
	}
	for _, sub := range opened {
		// Lost before it was stored: its kick may already be spent.
		if sub != nil && sub.Done() {
			w.node.kick()
		}
	}
}

func (w *headWatch) stop() {
	w.mu.Lock()
	subs := []*Subscription{w.best, w.fin}
	w.best, w.fin = nil, nil
	w.mu.Unlock()
	for _, s := range subs {
		if s != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = s.Unsubscribe(ctx)
			cancel()
		}
	}
}
