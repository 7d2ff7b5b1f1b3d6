package matcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/elara-gateway/elara/internal/multiwrite"
	"github.com/elara-gateway/elara/jsonrpc"
	"github.com/elara-gateway/elara/suber"
)

// sharedSub is one upstream subscription fanned out to many clients. A
// worker goroutine owns the upstream side: it applies notifications in
// order, re-opens the subscription on another ready node when its node is
// lost or stops being ready, and keeps what clients see consistent across
// such switches (heads never repeat or go back, finalized numbers are
// never skipped, unchanged values are not re-sent).
type sharedSub struct {
	m      *Matcher
	key    string
	fam    Family
	params json.RawMessage
	// queue holds events for the worker; it grows only while the worker
	// is behind, so an idle subscription costs next to nothing.
	qmu    sync.Mutex
	queue  []sharedEvent
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	opened chan struct{}
	// openErr is written before opened is closed.
	openErr error

	// floor is the oldest generation whose events may still matter:
	// events of older upstream subscriptions are dropped as they arrive,
	// so a replaced or unready node cannot fill the queue.
	floor atomic.Uint64
	// queueFull is set once a full queue was logged, until it drains.
	queueFull bool

	mu      sync.Mutex
	clients map[*ClientSub]struct{}
	// list is clients as a slice for a parallel fan-out, built when
	// needed and dropped when clients change.
	list   []*ClientSub
	closed bool
	grace  *time.Timer
	up     *suber.Subscription
	// gen is the generation of up (0 while there is none); nextGen counts
	// every attempt to open one, failed ones included, so a late event of
	// an abandoned attempt never passes for a current one.
	gen     uint64
	nextGen uint64
	// prevGen is the generation of a head subscription moved off a node
	// that left the chain's config (leave.go): its heads still count until
	// the new node's come, so the move loses none.
	prevGen  uint64
	notif    string
	last     json.RawMessage
	lastNum  uint64
	haveNum  bool
	storage  map[string]json.RawMessage
	stBlock  json.RawMessage
	openedAt time.Time
	// moved is set when the subscription was reopened on another node and
	// that node has not sent anything yet.
	moved bool
	// leftBest is the best head of the node the subscription left; storage
	// changes from the next node are held back (catchingUp) until they are
	// about a block past what clients already have.
	leftBest   uint64
	catchingUp bool
	// have is the block number clients have storage values for, found at
	// the first change of a catch-up (0 until then); haveExact is set when
	// the new node knew that block, else have is the left node's best.
	have      uint64
	haveExact bool
	// recent remembers the last allHeads headers delivered, so a node
	// switched to does not repeat them.
	recent   [recentHeads]uint64
	recentAt int
	stopOnce sync.Once
}

// recentHeads is how many allHeads headers are remembered for dedup.
const recentHeads = 64

var headSeed = maphash.MakeSeed()

type eventKind int

const (
	evNotify eventKind = iota
	evLost
	evCheck
)

type sharedEvent struct {
	kind   eventKind
	gen    uint64
	method string
	result json.RawMessage
}

// sharedQueue bounds events waiting for the worker; it is drained
// without blocking on clients, so it only fills if a gap fill stalls.
const sharedQueue = 8192

// maxGapFill bounds how many missed finalized headers are fetched at once.
const maxGapFill = 256

type sharedSink struct {
	s   *sharedSub
	gen uint64
}

func (k sharedSink) Notify(method string, result json.RawMessage) {
	k.s.enqueue(sharedEvent{kind: evNotify, gen: k.gen, method: method, result: result})
}

func (k sharedSink) Lost(error) { k.s.enqueue(sharedEvent{kind: evLost, gen: k.gen}) }

func (s *sharedSub) enqueue(ev sharedEvent) {
	if ev.kind != evCheck && ev.gen < s.floor.Load() {
		return // from an upstream subscription already given up
	}
	s.qmu.Lock()
	// Only notifications are dropped: a lost connection or a readiness
	// change must reach the worker, or the subscription stays where it is.
	if len(s.queue) >= sharedQueue && ev.kind == evNotify {
		warn := !s.queueFull
		s.queueFull = true
		s.qmu.Unlock()
		if warn {
			s.m.log.Warn("shared subscription queue full; notifications dropped until it drains", zap.String("subscription", s.fam.Name))
		}
		return
	}
	s.queue = append(s.queue, ev)
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// dequeue takes every waiting event.
func (s *sharedSub) dequeue() []sharedEvent {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	evs := s.queue
	s.queue = nil
	s.queueFull = false
	return evs
}

// join adds cs to the shared subscription for its params, creating it if
// needed. Creation happens under the matcher's lock, so clients arriving
// together always share one upstream subscription.
func (m *Matcher) join(ctx context.Context, cs *ClientSub) error {
	params, err := canonicalParams(cs.family, cs.params)
	if err != nil {
		return jsonrpc.NewError(jsonrpc.CodeInvalidParams, "Invalid params: "+err.Error())
	}
	key := cs.family.Name + "\x00" + string(params)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	s := m.shared[key]
	if s == nil {
		s = &sharedSub{
			m: m, key: key, fam: cs.family, params: params,
			wake:    make(chan struct{}, 1),
			stop:    make(chan struct{}),
			done:    make(chan struct{}),
			opened:  make(chan struct{}),
			clients: make(map[*ClientSub]struct{}),
		}
		m.shared[key] = s
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			s.run()
		}()
	}
	s.mu.Lock()
	s.addLocked(cs)
	s.mu.Unlock()
	m.mu.Unlock()

	select {
	case <-s.opened:
	case <-ctx.Done():
		s.leave(cs)
		return ctx.Err()
	}
	if s.openErr != nil {
		s.leave(cs)
		return s.openErr
	}
	return nil
}

// addLocked registers a client and gives it at once what a node gives a
// new subscriber: the current head or version, or the current values of
// its storage keys. Joins and deliveries both hold s.mu, so the client
// gets every later notification exactly once.
func (s *sharedSub) addLocked(cs *ClientSub) {
	if s.grace != nil {
		s.grace.Stop()
		s.grace = nil
	}
	cs.shared = s
	s.clients[cs] = struct{}{}
	s.list = nil
	if s.notif == "" {
		return
	}
	switch {
	case s.fam.Name == "storage":
		if replay := s.storageReplayLocked(); replay != nil {
			cs.deliver(jsonrpc.AppendNotification(nil, s.notif, cs.id, replay))
		}
	case s.fam.Name == "grandpaJustifications":
		// Justifications are events, not state: nothing to replay.
	case s.last != nil:
		cs.deliver(jsonrpc.AppendNotification(nil, s.notif, cs.id, s.last))
	}
}

// leave removes a client; the last one to leave starts the grace period.
func (s *sharedSub) leave(cs *ClientSub) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[cs]; !ok {
		return
	}
	delete(s.clients, cs)
	s.list = nil
	if len(s.clients) > 0 || s.closed {
		return
	}
	if s.m.grace() <= 0 {
		go s.expire()
		return
	}
	s.grace = time.AfterFunc(s.m.grace(), s.expire)
}

// expire closes the subscription if no client came back.
func (s *sharedSub) expire() {
	m := s.m
	m.mu.Lock()
	s.mu.Lock()
	if len(s.clients) > 0 || s.closed {
		s.mu.Unlock()
		m.mu.Unlock()
		return
	}
	s.closed = true
	if m.shared[s.key] == s {
		delete(m.shared, s.key)
	}
	s.mu.Unlock()
	m.mu.Unlock()
	s.finish()
}

// finish stops the worker, which unsubscribes upstream.
func (s *sharedSub) finish() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		if s.grace != nil {
			s.grace.Stop()
		}
		s.mu.Unlock()
		close(s.stop)
	})
}

func (s *sharedSub) node() *suber.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up == nil {
		return nil
	}
	return s.up.Node()
}

// run is the worker: open, then apply events until stopped. When the
// node is lost or stops being ready, it keeps draining events while it
// waits for another ready node, so nothing piles up meanwhile.
func (s *sharedSub) run() {
	defer close(s.done)
	err := s.open(s.m.ctx)
	s.openErr = err
	close(s.opened)
	if err != nil {
		s.m.mu.Lock()
		s.mu.Lock()
		s.closed = true
		if s.m.shared[s.key] == s {
			delete(s.m.shared, s.key)
		}
		s.mu.Unlock()
		s.m.mu.Unlock()
		return
	}
	var (
		why     string // set while the subscription has no node
		backoff time.Duration
		retry   <-chan time.Time
		changes <-chan struct{}
	)
	for {
		attempt := false
		select {
		case <-s.wake:
			for _, ev := range s.dequeue() {
				if lost, pause := s.handle(ev); lost != "" && why == "" {
					why, backoff = lost, 50*time.Millisecond
					if pause {
						// Lost right after opening (a node ending it on
						// purpose, or one that keeps failing): wait a little.
						retry, changes = time.After(time.Second), nil
					} else {
						attempt = true
					}
				}
			}
		case <-retry:
			attempt = true
		case <-changes:
			attempt = true
		case <-s.stop:
			s.release()
			return
		}
		if !attempt || why == "" {
			continue
		}
		changes = s.m.up.Changes()
		if err := s.open(s.m.ctx); err != nil {
			retry = time.After(backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		s.m.log.Info("shared subscription moved", zap.String("subscription", s.fam.Name), zap.String("reason", why), zap.Stringer("node", s.node()))
		why, retry, changes = "", nil, nil
		// The node may have stopped being ready while the subscription
		// was opened on it; that change found no subscription to move.
		if n := s.node(); n != nil && !s.m.up.Ready(n) {
			s.enqueue(sharedEvent{kind: evCheck})
		}
	}
}

// open subscribes on a ready node and makes it current.
func (s *sharedSub) open(ctx context.Context) error {
	s.mu.Lock()
	s.nextGen++
	gen := s.nextGen
	// A subscription still up is being moved before it ends (leaving):
	// its events keep coming through until the new one is current.
	keep := s.up != nil
	s.mu.Unlock()
	if !keep {
		s.floor.Store(gen)
	}
	ctx, cancel := context.WithTimeout(ctx, s.m.callTimeout())
	defer cancel()
	up, err := s.m.up.Subscribe(ctx, s.fam.Subscribe, s.params, s.fam.Unsubscribe, sharedSink{s: s, gen: gen})
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := s.up
	s.prevGen = 0
	if old != nil {
		s.prevGen = s.gen
	}
	s.up, s.gen, s.openedAt = up, gen, time.Now()
	s.moved = s.last != nil
	s.catchingUp = s.fam.Name == "storage" && s.stBlock != nil
	s.have, s.haveExact = 0, false
	s.mu.Unlock()
	if old != nil {
		s.m.background(func() { s.m.unsubscribe(old) })
	}
	return nil
}

// detach drops the current upstream subscription: its events are ignored
// from here on, and one on a node still connected is released.
func (s *sharedSub) detach(unsubscribe bool) {
	s.mu.Lock()
	old := s.up
	s.up, s.gen, s.prevGen = nil, 0, 0
	s.floor.Store(s.nextGen + 1)
	if old != nil {
		// Never lowered: a move off a node that was itself behind must
		// not forget what clients had before it.
		s.leftBest = max(s.leftBest, old.Node().Health().Best)
	}
	s.mu.Unlock()
	if old != nil && unsubscribe {
		s.m.background(func() { s.m.unsubscribe(old) })
	}
}

func (s *sharedSub) release() {
	s.mu.Lock()
	up := s.up
	s.up = nil
	s.mu.Unlock()
	if up != nil {
		s.m.unsubscribe(up)
	}
}

// handle applies one event. When the subscription loses its node it
// returns why, and whether to pause before reopening it.
func (s *sharedSub) handle(ev sharedEvent) (lost string, pause bool) {
	s.mu.Lock()
	current := s.gen != 0 && ev.gen == s.gen
	previous := s.prevGen != 0 && ev.gen == s.prevGen
	s.mu.Unlock()
	switch ev.kind {
	case evNotify:
		if current || previous {
			s.apply(ev.method, ev.result)
		}
	case evLost:
		if current {
			s.mu.Lock()
			recent := time.Since(s.openedAt) < time.Second
			s.mu.Unlock()
			s.detach(false)
			return "connection lost", recent
		}
	case evCheck:
		if n := s.node(); n != nil && !s.m.up.Ready(n) {
			if s.leaving(n) {
				// Kept until another node takes over (open).
				return "node left the configuration", false
			}
			s.detach(true)
			return "node no longer ready", false
		}
	}
	return "", false
}

// apply turns one upstream notification into what clients receive.
func (s *sharedSub) apply(method string, result json.RawMessage) {
	result = compact(result)
	switch s.fam.Name {
	case "newHeads", "finalizedHeads":
		num, ok := suber.HeaderNumber(result)
		if !ok {
			break
		}
		s.mu.Lock()
		last, have := s.lastNum, s.haveNum
		s.mu.Unlock()
		if have && num <= last {
			return // a head clients already saw, or an older one
		}
		if s.fam.Name == "finalizedHeads" && have && num > last+1 {
			s.fillFinalized(method, last, num)
		}
		s.mu.Lock()
		s.lastNum, s.haveNum = num, true
		s.mu.Unlock()
	case "runtimeVersion":
		s.mu.Lock()
		same := bytes.Equal(result, s.last)
		// The first value from a node switched to is its current one: a
		// node behind the others may still run the runtime clients left.
		older := s.moved && specOf(result) < specOf(s.last)
		s.moved = false
		s.mu.Unlock()
		if same || older {
			return
		}
	case "allHeads":
		// Forks make numbers repeat, so heads are told apart by content;
		// the first header of a node switched to is its best, which
		// clients already have unless it is past every number they saw.
		num, numOK := suber.HeaderNumber(result)
		h := maphash.Bytes(headSeed, result)
		s.mu.Lock()
		skip := slices.Contains(s.recent[:], h) || (s.moved && numOK && s.haveNum && num <= s.lastNum)
		s.moved = false
		if !skip {
			s.recent[s.recentAt] = h
			s.recentAt = (s.recentAt + 1) % recentHeads
			if numOK && (!s.haveNum || num > s.lastNum) {
				s.lastNum, s.haveNum = num, true
			}
		}
		s.mu.Unlock()
		if skip {
			return
		}
	case "storage":
		if !s.pastLeftBlock(result) {
			return
		}
		filtered, changed := s.applyStorage(result)
		if !changed {
			return
		}
		result = filtered
	}
	s.broadcast(method, result)
}

func (s *sharedSub) broadcast(method string, result json.RawMessage) {
	if fn := s.m.onHead.Load(); fn != nil && (s.fam.Name == "newHeads" || s.fam.Name == "finalizedHeads") {
		if num, ok := suber.HeaderNumber(result); ok {
			(*fn)(num, s.fam.Name == "finalizedHeads")
		}
	}
	if fn := s.m.onRuntime.Load(); fn != nil && s.fam.Name == "runtimeVersion" {
		(*fn)(result)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notif, s.last = method, result
	// Encoded once; each client's frame only splices in its id.
	n := jsonrpc.NewNotification(method, result)
	s.fanOutLocked(n)
}

// parallelFanout is the number of clients from which a notification is
// delivered by one goroutine per CPU: a delivery is mostly the write(2) to
// the client's socket, and thousands of them in a row on one core would
// leave the other cores idle while the last clients wait.
const parallelFanout = 512

// fanoutChunk is how many clients a delivering goroutine takes at a time.
// The goroutines take chunks from one counter rather than a fixed share
// each: when the system takes a core from one of them (the node, another
// process), the others deliver the rest instead of waiting for it.
const fanoutChunk = 64

// fanOutLocked delivers n to every client, the clients shared between one
// goroutine per CPU from parallelFanout clients on (below, the caller's
// goroutine alone). It returns when all have it, so each client's
// notifications stay in order. s.mu is held.
func (s *sharedSub) fanOutLocked(n jsonrpc.Notification) {
	if s.list == nil {
		s.list = make([]*ClientSub, 0, len(s.clients))
		for cs := range s.clients {
			s.list = append(s.list, cs)
		}
	}
	list := s.list
	var next atomic.Int64
	deliver := func() {
		// A chunk's writes go to the kernel together (multiwrite).
		b := multiwrite.Get()
		defer b.Put()
		for {
			end := int(next.Add(fanoutChunk))
			start := end - fanoutChunk
			if start >= len(list) {
				return
			}
			for _, cs := range list[start:min(end, len(list))] {
				cs.deliverShared(&n, b)
			}
			b.Flush()
		}
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), len(list)/(parallelFanout/2)))
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(deliver)
	}
	deliver()
	wg.Wait()
}

// fillFinalized fetches the headers finalized between two notifications
// (numbers a switch of node made clients miss) and delivers them in order.
func (s *sharedSub) fillFinalized(method string, last, next uint64) {
	s.mu.Lock()
	up := s.up
	s.mu.Unlock()
	if up == nil {
		return
	}
	from := last + 1
	if next-from > maxGapFill {
		from = next - maxGapFill
		s.m.log.Warn("finalized head gap too long to fill; clients skip some numbers",
			zap.Uint64("last_sent", last), zap.Uint64("next", next), zap.Uint64("filled_from", from))
	}
	for n := from; n < next; n++ {
		ctx, cancel := context.WithTimeout(s.m.ctx, s.m.callTimeout())
		hash, err := up.Call(ctx, "chain_getBlockHash", json.RawMessage("["+strconv.FormatUint(n, 10)+"]"))
		var header json.RawMessage
		if err == nil && string(hash) != "null" {
			header, err = up.Call(ctx, "chain_getHeader", json.RawMessage("["+string(hash)+"]"))
		}
		cancel()
		if err != nil || len(header) == 0 || string(header) == "null" {
			s.m.log.Warn("could not fill finalized head gap", zap.Uint64("number", n), zap.Error(err))
			return
		}
		s.mu.Lock()
		s.lastNum, s.haveNum = n, true
		s.mu.Unlock()
		s.broadcast(method, compact(header))
	}
}

type storageChange struct {
	Block   json.RawMessage     `json:"block"`
	Changes [][]json.RawMessage `json:"changes"`
}

// applyStorage keeps the current value of each key and drops changes
// that repeat it (what a new node sends first after a switch). A
// subscription to all keys keeps nothing: any key may change, so holding
// values would grow without bound, and a node sends such a subscriber no
// current values to repeat.
func (s *sharedSub) applyStorage(result json.RawMessage) (json.RawMessage, bool) {
	if s.allKeys() {
		return result, true
	}
	var sc storageChange
	if err := json.Unmarshal(result, &sc); err != nil {
		return result, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.storage == nil {
		s.storage = make(map[string]json.RawMessage)
	}
	kept := sc.Changes[:0]
	for _, ch := range sc.Changes {
		if len(ch) != 2 {
			continue
		}
		var key string
		if json.Unmarshal(ch[0], &key) != nil {
			continue
		}
		value := compact(ch[1])
		if prev, ok := s.storage[key]; ok && bytes.Equal(prev, value) {
			continue
		}
		s.storage[key] = value
		kept = append(kept, ch)
	}
	s.stBlock = sc.Block
	if len(kept) == 0 {
		return nil, false
	}
	sc.Changes = kept
	out, err := json.Marshal(sc)
	if err != nil {
		return result, true
	}
	return out, true
}

func (s *sharedSub) allKeys() bool { return len(s.params) <= 2 }

// pastLeftBlock reports whether a storage change may go to clients. After
// a switch to a node behind the one left, changes about blocks older than
// what clients have are dropped; the first change about a block as new or
// newer ends the catch-up (at the same block, the values are compared as
// usual). Block numbers come from the new node.
func (s *sharedSub) pastLeftBlock(result json.RawMessage) bool {
	s.mu.Lock()
	catchingUp, up, sent, have, exact, leftBest := s.catchingUp, s.up, s.stBlock, s.have, s.haveExact, s.leftBest
	s.mu.Unlock()
	if !catchingUp || up == nil || s.allKeys() {
		return true
	}
	var sc storageChange
	if json.Unmarshal(result, &sc) != nil || len(sc.Block) == 0 {
		return true
	}
	if have == 0 {
		// What clients have: the block of the last change sent, if the
		// new node knows it, else the best head of the node left.
		have = leftBest
		if n, ok := s.blockNumber(up, sent); ok {
			have, exact = n, true
		}
		s.mu.Lock()
		s.have, s.haveExact = have, exact
		s.mu.Unlock()
	}
	// A node that does not know the block clients have is behind it (or
	// on another fork): its change at that height is not news either. The
	// left node's best may also lag the change it sent by a block, as its
	// heads may come on another of its connections.
	n, ok := s.blockNumber(up, sc.Block)
	if ok && (n < have || !exact && n <= have) {
		return false
	}
	s.mu.Lock()
	s.catchingUp = false
	s.mu.Unlock()
	return true
}

func (s *sharedSub) blockNumber(up *suber.Subscription, hash json.RawMessage) (uint64, bool) {
	ctx, cancel := context.WithTimeout(s.m.ctx, s.m.callTimeout())
	defer cancel()
	header, err := up.Call(ctx, "chain_getHeader", json.RawMessage("["+string(hash)+"]"))
	if err != nil {
		return 0, false
	}
	return suber.HeaderNumber(header)
}

// storageReplayLocked is the current value of every watched key, shaped
// as a notification. Subscriptions to all keys have nothing to replay.
func (s *sharedSub) storageReplayLocked() json.RawMessage {
	if s.stBlock == nil || len(s.storage) == 0 || s.allKeys() {
		return nil
	}
	keys := make([]string, 0, len(s.storage))
	for k := range s.storage {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	sc := storageChange{Block: s.stBlock}
	for _, k := range keys {
		kb, _ := json.Marshal(k)
		sc.Changes = append(sc.Changes, []json.RawMessage{kb, s.storage[k]})
	}
	out, _ := json.Marshal(sc)
	return out
}

// canonicalParams gives every way of asking for the same thing one
// encoding: no params and [] are the same, storage keys are sorted,
// deduplicated and lower-cased.
func canonicalParams(fam Family, params json.RawMessage) (json.RawMessage, error) {
	if len(params) == 0 || string(params) == "[]" || string(params) == "null" {
		return json.RawMessage("[]"), nil
	}
	if fam.Name != "storage" {
		return compact(params), nil
	}
	var args []json.RawMessage
	if err := json.Unmarshal(params, &args); err != nil {
		return nil, fmt.Errorf("expected an array")
	}
	if len(args) == 0 || string(args[0]) == "null" {
		return json.RawMessage("[]"), nil
	}
	if len(args) > 1 {
		return nil, fmt.Errorf("expected [keys]")
	}
	var keys []string
	if err := json.Unmarshal(args[0], &keys); err != nil {
		return nil, fmt.Errorf("storage keys must be hex strings")
	}
	for i, k := range keys {
		if !isHexKey(k) {
			if len(k) > 80 {
				k = k[:80] + "…"
			}
			return nil, fmt.Errorf("storage key %q is not 0x-prefixed hex", k)
		}
		keys[i] = strings.ToLower(k)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	out, _ := json.Marshal([][]string{keys})
	return out, nil
}

// isHexKey reports whether k is 0x followed by hex digits, as a node
// decodes storage keys.
func isHexKey(k string) bool {
	digits, ok := strings.CutPrefix(k, "0x")
	if !ok {
		return false
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func compact(raw json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return raw
	}
	return buf.Bytes()
}

// specOf reads specVersion from a runtime version; 0 when absent.
func specOf(version json.RawMessage) uint64 {
	var v struct {
		SpecVersion uint64 `json:"specVersion"`
	}
	_ = json.Unmarshal(version, &v)
	return v.SpecVersion
}
