package fakenode

import (
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

const (
	// writeTimeout bounds a write to a client that stopped reading.
	writeTimeout = 10 * time.Second
	// maxQueued is how many outgoing messages may wait for a slow client
	// before the node drops the connection, as jsonrpsee drops laggards.
	maxQueued = 1 << 16
)

// Thousands of mostly idle connections are normal in gateway tests: reuse
// the HTTP server's read buffer and pool write buffers between messages.
var upgrader = websocket.Upgrader{
	WriteBufferSize: 4096,
	WriteBufferPool: new(sync.Pool),
	// Like a node started with --rpc-cors=all.
	CheckOrigin: func(*http.Request) bool { return true },
}

type outMsg struct {
	data  []byte
	reply bool // a reply to a request, as opposed to a notification
}

// wsConn is one WebSocket client. Its reader goroutine (the HTTP handler
// that upgraded) executes requests; a single writer goroutine sends
// everything, so producers (replies, chain notifications) only append to an
// unbounded queue and never block on the network.
type wsConn struct {
	n  *Node
	ws *websocket.Conn

	mu     sync.Mutex
	queue  []outMsg
	closed bool
	signal chan struct{} // capacity 1: "the queue is not empty"

	done      chan struct{} // closed by shutdown
	finished  chan struct{} // closed once the connection is fully cleaned up
	closeOnce sync.Once

	// Guarded by n.subs.mu.
	subs map[string]*subscription
	gone bool // no new subscriptions: the connection is being cleaned up
}

func (n *Node) serveWS(g *generation, w http.ResponseWriter, r *http.Request) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has already answered with an HTTP error
	}
	c := &wsConn{
		n:        n,
		ws:       ws,
		signal:   make(chan struct{}, 1),
		done:     make(chan struct{}),
		finished: make(chan struct{}),
		subs:     map[string]*subscription{},
	}
	if !n.addConn(g, c) {
		_ = ws.NetConn().Close()
		return
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	c.readLoop()
	c.shutdown()
	<-writerDone
	n.dropConnSubs(c)
	n.removeConn(c)
	close(c.finished)
}

func (c *wsConn) readLoop() {
	// gorilla's default ping handler answers pings with pongs from here.
	c.ws.SetReadLimit(maxRequestSize)
	for {
		kind, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		// RFC 6455 §8.1: a text frame that is not UTF-8 fails the
		// connection. jsonrpsee (polkadot-sdk's server) closes with 1007,
		// and every call in flight on the connection is lost with it.
		if kind == websocket.TextMessage && !utf8.Valid(data) {
			c.n.invalidFrames.Add(1)
			_ = c.ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseInvalidFramePayloadData, "text frame is not valid UTF-8"),
				time.Now().Add(time.Second))
			return
		}
		c.n.handleWS(c, data)
	}
}

// send queues m; it never blocks. Messages for a closed connection vanish.
func (c *wsConn) send(m outMsg) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if len(c.queue) >= maxQueued {
		c.mu.Unlock()
		c.shutdown()
		return
	}
	c.queue = append(c.queue, m)
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// shutdown closes the connection abruptly: no close frame, like a crash.
func (c *wsConn) shutdown() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.queue = nil
		c.mu.Unlock()
		close(c.done)
		_ = c.ws.NetConn().Close()
	})
}

func (c *wsConn) write(data []byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

func (c *wsConn) writeLoop() {
	var (
		batch  []outMsg
		held   []outMsg // reorder window
		timer  *time.Timer
		timerC <-chan time.Time
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-c.done:
			return
		case <-timerC:
			timerC = nil
			if !c.flushReordered(held) {
				c.shutdown()
				return
			}
			clear(held)
			held = held[:0]
		case <-c.signal:
			c.mu.Lock()
			batch, c.queue = c.queue, batch[:0] // swap buffers instead of allocating
			c.mu.Unlock()
			for _, m := range batch {
				if timerC == nil && m.reply && c.n.faults.reorder.Load() {
					timer = time.NewTimer(reorderWindow)
					timerC = timer.C
				}
				if timerC != nil {
					held = append(held, m)
					continue
				}
				if err := c.write(m.data); err != nil {
					c.shutdown()
					return
				}
			}
			clear(batch) // let big replies be collected
		}
	}
}

// flushReordered sends held replies newest first. Notifications keep their
// order and stay after the replies (before them with early notifications),
// so a subscription's notifications never overtake its reply by accident.
func (c *wsConn) flushReordered(held []outMsg) bool {
	var replies, notes [][]byte
	for _, m := range held {
		if m.reply {
			replies = append(replies, m.data)
		} else {
			notes = append(notes, m.data)
		}
	}
	early := c.n.faults.early.Load()
	var order [][]byte
	if early {
		order = append(order, notes...)
	}
	for i := len(replies) - 1; i >= 0; i-- {
		order = append(order, replies[i])
	}
	if !early {
		order = append(order, notes...)
	}
	for _, data := range order {
		if err := c.write(data); err != nil {
			return false
		}
	}
	return true
}
