package fakenode

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// reorderWindow is how long replies are held back on a connection in reorder
// mode; replies gathered in one window are sent in reverse order.
const reorderWindow = 20 * time.Millisecond

// faultTable is immutable once published: the per-request lookup is a plain
// atomic load, which matters with thousands of concurrent connections.
type faultTable struct {
	delay      map[string]time.Duration
	drop       map[string]bool
	disconnect map[string]bool
}

type faultState struct {
	mu      sync.Mutex // serialises writers of table
	table   atomic.Pointer[faultTable]
	early   atomic.Bool
	reorder atomic.Bool
}

func (f *faultState) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.table.Store(&faultTable{delay: map[string]time.Duration{}, drop: map[string]bool{}, disconnect: map[string]bool{}})
	f.early.Store(false)
	f.reorder.Store(false)
}

func (f *faultState) update(change func(t *faultTable)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.table.Load()
	t := &faultTable{delay: maps.Clone(old.delay), drop: maps.Clone(old.drop), disconnect: maps.Clone(old.disconnect)}
	change(t)
	f.table.Store(t)
}

// forMethod applies the method's own setting if there is one, else "*".
func (t *faultTable) forMethod(m string) (delay time.Duration, drop, disconnect bool) {
	var ok bool
	if delay, ok = t.delay[m]; !ok {
		delay = t.delay["*"]
	}
	if drop, ok = t.drop[m]; !ok {
		drop = t.drop["*"]
	}
	if disconnect, ok = t.disconnect[m]; !ok {
		disconnect = t.disconnect["*"]
	}
	return delay, drop, disconnect
}

func faultKey(method string) string {
	if method == "" {
		return "*"
	}
	return method
}

// SetDelay delays replies to method by d ("" or "*" = every method). A
// per-method setting wins over "*", so SetDelay("x", 0) exempts x from a
// global delay. The request is executed at once, only the reply waits, and
// it waits on its own, so other requests on the connection are not held up.
// For subscribe methods the subscription exists at once but its
// notifications are held until the reply is sent. Over HTTP the response is
// delayed.
func (n *Node) SetDelay(method string, d time.Duration) {
	n.faults.update(func(t *faultTable) { t.delay[faultKey(method)] = d })
}

// SetDrop makes the node never answer method ("" or "*" = every method; a
// per-method setting wins over "*"). Dropped requests are counted but not
// executed (a dropped subscribe creates no subscription). Over HTTP the
// request hangs until the client gives up or the node stops; in a batch the
// dropped entries are just missing from the reply.
func (n *Node) SetDrop(method string, drop bool) {
	n.faults.update(func(t *faultTable) { t.drop[faultKey(method)] = drop })
}

// SetDisconnectOn makes the node abruptly close the connection (WebSocket or
// HTTP) that sends method, instead of answering ("" or "*" = every method).
func (n *Node) SetDisconnectOn(method string, on bool) {
	n.faults.update(func(t *faultTable) { t.disconnect[faultKey(method)] = on })
}

// SetEarlyNotifications makes subscribe methods send their first
// notification (the current value) before the subscribe reply, so a test can
// check that a client buffers notifications for a subscription id it has not
// been told yet instead of dropping them.
func (n *Node) SetEarlyNotifications(on bool) { n.faults.early.Store(on) }

// SetReorder holds WebSocket replies for ~20ms and sends the replies gathered
// in that window in reverse order (notifications produced meanwhile follow
// them, in order). Batch replies, on HTTP and WebSocket, list their entries
// in reverse order.
func (n *Node) SetReorder(on bool) { n.faults.reorder.Store(on) }

// ResetFaults clears every delay, drop, disconnect, early-notification and
// reorder setting.
func (n *Node) ResetFaults() { n.faults.reset() }

// SetSyncing sets isSyncing in system_health.
func (n *Node) SetSyncing(syncing bool) { n.syncing.Store(syncing) }

// SetPeers sets the peer count in system_health (default 3).
func (n *Node) SetPeers(peers int) { n.peers.Store(int64(peers)) }

// SendRaw sends msg as a text frame to every open WebSocket connection, after
// anything already queued: e.g. a notification for an unknown subscription,
// a reply nobody asked for, or invalid JSON.
func (n *Node) SendRaw(msg []byte) {
	msg = append([]byte(nil), msg...)
	for _, c := range n.connList() {
		c.send(outMsg{data: msg})
	}
}
