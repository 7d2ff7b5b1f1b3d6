package matcher

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/suber"
)

// A node accepts only 4 chainHead_v1_follow subscriptions per connection
// (polkadot-sdk), so one upstream follow per withRuntime value serves
// every client follow (a followHub). Each client gets its own follow id
// and the event stream a node would give it: initialized with the current
// finalized block, the blocks above it as newBlock, the best block, then
// the live events. Blocks are pinned per client; one stays pinned upstream
// while any client (or the hub, for the blocks a new client is told of)
// holds it. Operations run on the upstream follow and their events go to
// the client that started them (follow_calls.go). When the upstream
// follow stops or its node is lost, every client gets stop, as from a
// node; the next follow opens a new one on a ready node, so a client's
// stream never mixes two nodes' blocks.

const (
	followFamily = "chainHead"
	followNotif  = "chainHead_v1_followEvent"

	// defaultFollowPins bounds the blocks one client holds pinned. A node
	// holds at most 512 in total (polkadot-sdk), shared here by every
	// client of the upstream follow, so one client gets half of that.
	defaultFollowPins = 256
	// defaultFollowOps is the spec's minimum of operations a follow
	// subscription may run at once, per client.
	defaultFollowOps = 16
	// upstreamFollowOps is what polkadot-sdk allows the shared upstream
	// follow: operations beyond it wait for a slot.
	upstreamFollowOps = 16
	// defaultFollowUnready is how long a hub's node may stay not ready
	// (lagging, say) before its clients get stop and follow again on a
	// ready node. A lagging node still gives a consistent stream, and
	// stopping every client at once for a blip would make them all follow
	// again together.
	defaultFollowUnready = 30 * time.Second
)

var stopEvent = json.RawMessage(`{"event":"stop"}`)

// followHub is one upstream chainHead_v1_follow shared by client follows.
type followHub struct {
	m           *Matcher
	key         string
	params      json.RawMessage
	opened      chan struct{}
	openErr     error // written before opened is closed
	slots       chan struct{}
	unfollowMsg string

	mu      sync.Mutex
	up      *suber.Subscription
	ready   bool // initialized seen
	dead    bool
	clients map[*ClientSub]*followClient
	blocks  map[string]*followBlock
	fin     []string // the finalized hashes a new client's initialized names
	live    []string // reported blocks above the finalized one, in order
	best    string
	ops     map[string]followOp // upstream operation id -> its client
	// unreadySince is when the hub's node was first seen not ready (zero
	// while it is ready).
	unreadySince time.Time
}

// followBlock is a block the upstream follow reported and has pinned.
type followBlock struct {
	parent     string
	newRuntime json.RawMessage // as reported (nil: withRuntime false)
	runtime    json.RawMessage // the block's runtime (withRuntime only)
	refs       int             // clients holding it pinned
	hub        bool            // held for clients yet to come
}

// followClient is one client follow on a hub.
type followClient struct {
	cs      *ClientSub
	started bool // initialized sent
	pinned  map[string]struct{}
	ops     map[string]string // the client's operation id -> the node's
}

type followSink struct{ h *followHub }

func (k followSink) Notify(_ string, result json.RawMessage) { k.h.event(result) }
func (k followSink) Lost(error)                              { k.h.kill("upstream connection lost", false) }

// followParams accepts [withRuntime] and returns its canonical form.
func followParams(params json.RawMessage) (json.RawMessage, error) {
	var args []json.RawMessage
	if err := json.Unmarshal(params, &args); err != nil || len(args) != 1 {
		return nil, fmt.Errorf("expected [withRuntime]")
	}
	var withRuntime bool
	if err := json.Unmarshal(args[0], &withRuntime); err != nil {
		return nil, fmt.Errorf("withRuntime must be a boolean")
	}
	if withRuntime {
		return json.RawMessage("[true]"), nil
	}
	return json.RawMessage("[false]"), nil
}

// follow joins cs to the hub for its params, opening one if needed.
func (m *Matcher) follow(ctx context.Context, cs *ClientSub) error {
	params, err := followParams(cs.params)
	if err != nil {
		return jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Invalid params: "+err.Error())
	}
	key := cs.family.Subscribe + string(params)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if m.follows == nil {
		m.follows = make(map[string]*followHub)
	}
	h := m.follows[key]
	if h != nil {
		// New follows go to a ready node; clients already on this hub stay.
		if n := h.node(); n != nil && !m.up.Ready(n) {
			delete(m.follows, key)
			h = nil
		}
	}
	if h == nil {
		h = &followHub{
			m: m, key: key, params: params, unfollowMsg: cs.family.Unsubscribe,
			opened:  make(chan struct{}),
			slots:   make(chan struct{}, upstreamFollowOps),
			clients: make(map[*ClientSub]*followClient),
			blocks:  make(map[string]*followBlock),
			ops:     make(map[string]followOp),
		}
		m.follows[key] = h
		if m.allFollows == nil {
			m.allFollows = make(map[*followHub]struct{})
		}
		m.allFollows[h] = struct{}{}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			h.open(cs.family.Subscribe)
		}()
	}
	h.mu.Lock()
	fc := &followClient{cs: cs, pinned: make(map[string]struct{}), ops: make(map[string]string)}
	h.clients[cs] = fc
	cs.follow = h
	started := !h.ready || h.startClientLocked(fc)
	h.mu.Unlock()
	m.mu.Unlock()
	if !started {
		h.kill("the finalized block is no longer known", true)
	}

	select {
	case <-h.opened:
	case <-ctx.Done():
		h.leave(cs)
		return ctx.Err()
	}
	if h.openErr != nil {
		h.leave(cs)
		return h.openErr
	}
	return nil
}

func (h *followHub) open(method string) {
	ctx, cancel := context.WithTimeout(h.m.ctx, h.m.callTimeout())
	defer cancel()
	up, err := h.m.up.Subscribe(ctx, method, h.params, h.unfollowMsg, followSink{h})
	h.mu.Lock()
	h.up = up
	dead := h.dead
	h.mu.Unlock()
	h.openErr = err
	close(h.opened)
	if err != nil {
		h.kill("open failed", false)
		return
	}
	if dead { // lost or stopped before the reply was handled
		h.m.background(func() { h.m.unsubscribe(up) })
		return
	}
	h.m.log.Info("shared chainHead follow opened", zap.Stringer("node", up.Node()), zap.String("params", string(h.params)))
}

// node is the hub's node, nil before it opened.
func (h *followHub) node() *suber.Node {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.up == nil {
		return nil
	}
	return h.up.Node()
}

type followEvent struct {
	Event                 string          `json:"event"`
	OperationID           string          `json:"operationId"`
	FinalizedBlockHashes  []string        `json:"finalizedBlockHashes"`
	FinalizedBlockRuntime json.RawMessage `json:"finalizedBlockRuntime"`
	BlockHash             string          `json:"blockHash"`
	ParentBlockHash       string          `json:"parentBlockHash"`
	NewRuntime            json.RawMessage `json:"newRuntime"`
	BestBlockHash         string          `json:"bestBlockHash"`
	PrunedBlockHashes     []string        `json:"prunedBlockHashes"`
}

// event applies one upstream event, on the connection's reader.
func (h *followHub) event(result json.RawMessage) {
	var ev followEvent
	if err := json.Unmarshal(result, &ev); err != nil {
		h.m.log.Warn("undecodable chainHead event", zap.Error(err))
		return
	}
	if ev.OperationID != "" {
		h.operationEvent(ev, result)
		return
	}
	if ev.Event == "stop" {
		// Unfollowing too drops the ended subscription's registration.
		h.kill("the node stopped the follow subscription", true)
		return
	}
	h.mu.Lock()
	if h.dead {
		h.mu.Unlock()
		return
	}
	var stopped []*followClient
	switch ev.Event {
	case "initialized":
		if len(ev.FinalizedBlockHashes) == 0 {
			h.mu.Unlock()
			h.kill("initialized without a finalized block", true)
			return
		}
		h.fin = ev.FinalizedBlockHashes
		for i, hash := range h.fin {
			b := &followBlock{hub: true}
			if i == len(h.fin)-1 {
				b.runtime = ev.FinalizedBlockRuntime
			}
			h.blocks[hash] = b
		}
		h.ready = true
		for _, fc := range h.clients {
			h.startClientLocked(fc) // the blocks were just added
		}
	case "newBlock":
		b := &followBlock{parent: ev.ParentBlockHash, newRuntime: ev.NewRuntime, hub: true}
		b.runtime = ev.NewRuntime
		if p := h.blocks[ev.ParentBlockHash]; p != nil && (len(b.runtime) == 0 || string(b.runtime) == "null") {
			b.runtime = p.runtime
		}
		h.blocks[ev.BlockHash] = b
		h.live = append(h.live, ev.BlockHash)
		stopped = h.broadcastLocked(result, ev.BlockHash)
	case "bestBlockChanged":
		h.best = ev.BestBlockHash
		stopped = h.broadcastLocked(result, "")
	case "finalized":
		if !h.finalizeLocked(ev.FinalizedBlockHashes, ev.PrunedBlockHashes) {
			// No block to start new clients from: they follow again.
			h.mu.Unlock()
			h.kill("the node finalized a block it never announced", true)
			return
		}
		stopped = h.broadcastLocked(result, "")
	default:
		stopped = h.broadcastLocked(result, "")
	}
	var unpin, stopOps []string
	for _, fc := range stopped {
		u, o := h.dropClientLocked(fc)
		unpin, stopOps = append(unpin, u...), append(stopOps, o...)
	}
	unpin = append(unpin, h.collectLocked()...)
	up := h.up
	h.mu.Unlock()
	for _, fc := range stopped {
		h.m.log.Info("client chainHead follow stopped: too many pinned blocks", zap.Int("limit", h.m.followPins()))
		fc.cs.endFollow()
	}
	h.unpinUpstream(up, unpin)
	h.stopOperations(up, stopOps)
}

// broadcastLocked sends an event to every started client, pinning hash
// for each when set; it returns the clients now over their pin limit.
func (h *followHub) broadcastLocked(result json.RawMessage, pin string) (over []*followClient) {
	for _, fc := range h.clients {
		if !fc.started {
			continue
		}
		if pin != "" {
			h.pinLocked(fc, pin)
		}
		fc.cs.deliver(jsonrpc.AppendNotification(nil, followNotif, fc.cs.id, result))
		if len(fc.pinned) > h.m.followPins() {
			over = append(over, fc)
		}
	}
	return over
}

func (h *followHub) pinLocked(fc *followClient, hash string) {
	if _, ok := fc.pinned[hash]; ok {
		return
	}
	if b := h.blocks[hash]; b != nil {
		fc.pinned[hash] = struct{}{}
		b.refs++
	}
}

// finalizeLocked moves the hub's own hold to the new finalized block and
// forgets the pruned ones. It reports false when the new finalized block
// is one the node never announced, which a new client could not start
// from.
func (h *followHub) finalizeLocked(finalized, pruned []string) bool {
	if len(finalized) == 0 {
		return true
	}
	last := finalized[len(finalized)-1]
	lastBlock := h.blocks[last]
	if lastBlock == nil {
		return false
	}
	for _, hash := range h.fin {
		if b := h.blocks[hash]; b != nil {
			b.hub = false
		}
	}
	gone := make(map[string]bool, len(finalized)+len(pruned))
	for _, hash := range finalized[:len(finalized)-1] {
		if b := h.blocks[hash]; b != nil {
			b.hub = false
		}
		gone[hash] = true
	}
	for _, hash := range pruned {
		if b := h.blocks[hash]; b != nil {
			b.hub = false
		}
		gone[hash] = true
	}
	// Held even when it was among those cleared above (a repeated event):
	// new clients start from it.
	lastBlock.hub = true
	gone[last] = true
	h.fin = []string{last}
	live := h.live[:0]
	for _, hash := range h.live {
		if !gone[hash] {
			live = append(live, hash)
		}
	}
	clear(h.live[len(live):])
	h.live = live
	return true
}

// collectLocked forgets blocks nobody holds and returns them, to unpin
// upstream.
func (h *followHub) collectLocked() []string {
	var out []string
	for hash, b := range h.blocks {
		if b.refs <= 0 && !b.hub {
			delete(h.blocks, hash)
			out = append(out, hash)
		}
	}
	return out
}

// startClientLocked gives a client what a node gives a new follower:
// initialized with the finalized block (and its runtime when asked), each
// block above it as newBlock, and the best block. It reports false when
// the hub no longer knows its finalized block; the caller then kills the
// hub (without h.mu), which stops its clients.
func (h *followHub) startClientLocked(fc *followClient) bool {
	if fc.started || len(h.fin) == 0 {
		return true
	}
	fin := h.fin[len(h.fin)-1]
	if h.blocks[fin] == nil {
		return false
	}
	fc.started = true
	send := func(v any) {
		js, _ := json.Marshal(v)
		fc.cs.deliver(jsonrpc.AppendNotification(nil, followNotif, fc.cs.id, js))
	}
	withRuntime := string(h.params) == "[true]"
	h.pinLocked(fc, fin)
	init := struct {
		Event                 string          `json:"event"`
		FinalizedBlockHashes  []string        `json:"finalizedBlockHashes"`
		FinalizedBlockRuntime json.RawMessage `json:"finalizedBlockRuntime,omitempty"`
	}{Event: "initialized", FinalizedBlockHashes: []string{fin}}
	if withRuntime {
		init.FinalizedBlockRuntime = h.blocks[fin].runtime
	}
	send(init)
	known := map[string]bool{fin: true}
	for _, hash := range h.live {
		b := h.blocks[hash]
		if b == nil || !known[b.parent] {
			continue // not a descendant of the finalized block
		}
		known[hash] = true
		h.pinLocked(fc, hash)
		nb := struct {
			Event           string           `json:"event"`
			BlockHash       string           `json:"blockHash"`
			ParentBlockHash string           `json:"parentBlockHash"`
			NewRuntime      *json.RawMessage `json:"newRuntime,omitempty"`
		}{Event: "newBlock", BlockHash: hash, ParentBlockHash: b.parent}
		if withRuntime {
			rt := b.newRuntime
			if len(rt) == 0 {
				rt = json.RawMessage("null")
			}
			nb.NewRuntime = &rt
		}
		send(nb)
	}
	if h.best != "" && known[h.best] && h.best != fin {
		send(struct {
			Event         string `json:"event"`
			BestBlockHash string `json:"bestBlockHash"`
		}{"bestBlockChanged", h.best})
	}
	return true
}

// dropClientLocked removes a client: its pins are released. It returns
// blocks to unpin upstream and the client's operations to stop there
// (stopOperations, without h.mu).
func (h *followHub) dropClientLocked(fc *followClient) (unpin, stop []string) {
	if h.clients[fc.cs] != fc {
		return nil, nil
	}
	delete(h.clients, fc.cs)
	for hash := range fc.pinned {
		if b := h.blocks[hash]; b != nil {
			b.refs--
		}
	}
	fc.pinned = nil
	for _, upID := range fc.ops {
		delete(h.ops, upID)
		h.releaseSlot()
		stop = append(stop, upID)
	}
	fc.ops = nil
	return h.collectLocked(), stop
}

func (h *followHub) stopOperations(up *suber.Subscription, ids []string) {
	if up == nil || len(ids) == 0 {
		return
	}
	h.m.background(func() {
		for _, id := range ids {
			h.stopOperation(up, id)
		}
	})
}

// leave removes a client that unfollowed or left; the hub closes with
// its last client.
func (h *followHub) leave(cs *ClientSub) {
	h.mu.Lock()
	fc := h.clients[cs]
	var unpin, stopOps []string
	if fc != nil {
		unpin, stopOps = h.dropClientLocked(fc)
	}
	empty := len(h.clients) == 0 && !h.dead
	up := h.up
	h.mu.Unlock()
	if empty {
		h.m.mu.Lock()
		h.mu.Lock()
		// A client may have joined meanwhile.
		if len(h.clients) == 0 && !h.dead {
			h.dead = true
			if h.m.follows[h.key] == h {
				delete(h.m.follows, h.key)
			}
			delete(h.m.allFollows, h)
		} else {
			empty = false
		}
		h.mu.Unlock()
		h.m.mu.Unlock()
	}
	if empty {
		if up != nil {
			h.m.background(func() { h.m.unsubscribe(up) })
		}
		return
	}
	h.unpinUpstream(up, unpin)
	h.stopOperations(up, stopOps)
}

// kill ends the hub: every client gets stop. unfollow says whether the
// upstream follow is still open and must be closed.
func (h *followHub) kill(why string, unfollow bool) {
	h.m.mu.Lock()
	h.mu.Lock()
	if h.dead {
		h.mu.Unlock()
		h.m.mu.Unlock()
		return
	}
	h.dead = true
	if h.m.follows[h.key] == h {
		delete(h.m.follows, h.key)
	}
	delete(h.m.allFollows, h)
	clients := make([]*followClient, 0, len(h.clients))
	for _, fc := range h.clients {
		clients = append(clients, fc)
	}
	h.clients = map[*ClientSub]*followClient{}
	up := h.up
	h.mu.Unlock()
	h.m.mu.Unlock()
	if len(clients) > 0 {
		h.m.log.Info("shared chainHead follow ended; its clients get stop", zap.String("reason", why), zap.Int("clients", len(clients)))
	}
	for _, fc := range clients {
		fc.cs.endFollow()
	}
	if unfollow && up != nil {
		h.m.background(func() { h.m.unsubscribe(up) })
	}
}

// endFollow sends a client follow its stop event and ends it.
func (s *ClientSub) endFollow() {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	frame := jsonrpc.AppendNotification(nil, followNotif, s.id, stopEvent)
	if s.active {
		s.client.Send(frame)
	} else {
		s.held = append(s.held, frame)
	}
	s.ended = true
	s.mu.Unlock()
	s.client.Ended(s)
}

// unpinUpstream releases blocks no client holds any more.
func (h *followHub) unpinUpstream(up *suber.Subscription, hashes []string) {
	if len(hashes) == 0 || up == nil {
		return
	}
	h.m.background(func() {
		params, _ := json.Marshal([]any{up.ID(), hashes})
		ctx, cancel := context.WithTimeout(h.m.ctx, h.m.callTimeout())
		defer cancel()
		if _, err := up.Call(ctx, "chainHead_v1_unpin", params); err != nil {
			if ce := h.m.log.Check(zap.DebugLevel, "upstream chainHead unpin failed"); ce != nil {
				ce.Write(zap.Error(err), zap.Int("blocks", len(hashes)))
			}
		}
	})
}

// checkFollows ends hubs whose node has not been ready for a while, so
// their clients follow again on a ready one.
func (m *Matcher) checkFollows() {
	m.mu.Lock()
	hubs := make([]*followHub, 0, len(m.allFollows))
	for h := range m.allFollows {
		hubs = append(hubs, h)
	}
	m.mu.Unlock()
	grace := m.opts.FollowUnready
	if grace <= 0 {
		grace = defaultFollowUnready
	}
	recheck := false
	for _, h := range hubs {
		n := h.node()
		if n == nil {
			continue
		}
		ready := m.up.Ready(n)
		h.mu.Lock()
		switch {
		case ready:
			h.unreadySince = time.Time{}
		case h.unreadySince.IsZero():
			h.unreadySince = time.Now()
			recheck = true
		}
		expired := !ready && time.Since(h.unreadySince) >= grace
		h.mu.Unlock()
		if expired {
			h.kill("node not ready for "+grace.String(), true)
		}
	}
	if recheck {
		m.background(func() {
			t := time.NewTimer(grace)
			defer t.Stop()
			select {
			case <-t.C:
				m.checkFollows()
			case <-m.ctx.Done():
			}
		})
	}
}

// FollowCount is how many upstream chainHead follows the matcher holds.
func (m *Matcher) FollowCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.allFollows)
}

func (m *Matcher) followPins() int {
	if m.opts.FollowPins > 0 {
		return m.opts.FollowPins
	}
	return defaultFollowPins
}

func (m *Matcher) followOps() int {
	if m.opts.FollowOperations > 0 {
		return m.opts.FollowOperations
	}
	return defaultFollowOps
}
