package e2e

// A TCP forwarder in front of the node: the gateway sees each forwarder as
// one more node of the chain. kill() drops it like a crashed node (listener
// and every live connection reset at once); a new forwarder on the same
// address brings the "node" back. The forwarder also reads the WebSocket
// frames passing through (gorilla/websocket, the gateway's client, does not
// negotiate compression), so a test can count which JSON-RPC requests reached
// the node and which subscription notifications it sent.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
)

type forwarder struct {
	target string // host:port of the node
	ln     net.Listener
	addr   string

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	killed bool
	nextID int
	// sniffed traffic
	requests map[string]int // "method params" and "method" → count (gateway → node)
	notifs   []fwdNotif     // node → gateway notifications, in arrival order
}

type fwdNotif struct {
	conn   int
	method string
	sub    string
}

// startForwarder listens on addr ("" = a free loopback port) and forwards
// every connection to target. It is killed at test cleanup.
func startForwarder(t *testing.T, target, addr string) *forwarder {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("forwarder listen %s: %v", addr, err)
	}
	f := &forwarder{target: target, ln: ln, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}, requests: map[string]int{}}
	go f.accept()
	t.Cleanup(f.kill)
	return f
}

func (f *forwarder) wsURL() string { return "ws://" + f.addr }

func (f *forwarder) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		go f.serve(c)
	}
}

func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.killed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) serve(down net.Conn) {
	if !f.track(down) {
		down.Close()
		return
	}
	up, err := net.Dial("tcp", f.target)
	if err != nil || !f.track(up) {
		if up != nil {
			up.Close()
		}
		f.drop(down)
		return
	}
	f.mu.Lock()
	f.nextID++
	id := f.nextID
	f.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn, sn *wsSniffer) {
		defer wg.Done()
		_, _ = io.Copy(io.MultiWriter(dst, sn), src)
		// one side ended: end both (a half-closed WebSocket is useless)
		f.drop(dst)
		f.drop(src)
	}
	go pipe(up, down, &wsSniffer{masked: true, onText: func(p []byte) { f.sawRequest(p) }})
	go pipe(down, up, &wsSniffer{onText: func(p []byte) { f.sawReply(id, p) }})
	wg.Wait()
}

func (f *forwarder) drop(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	c.Close()
}

// kill closes the listener and resets every live connection.
func (f *forwarder) kill() {
	f.mu.Lock()
	f.killed = true
	conns := make([]net.Conn, 0, len(f.conns))
	for c := range f.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	f.ln.Close()
	for _, c := range conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, as when a host or process dies mid-stream
		}
		c.Close()
	}
}

func (f *forwarder) isKilled() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.killed
}

func (f *forwarder) liveConns() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

type rpcSniff struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

func (f *forwarder) sawRequest(p []byte) {
	if len(p) > 1<<20 {
		return
	}
	var reqs []rpcSniff
	p = bytes.TrimSpace(p)
	if len(p) > 0 && p[0] == '[' {
		if json.Unmarshal(p, &reqs) != nil {
			return
		}
	} else {
		var one rpcSniff
		if json.Unmarshal(p, &one) != nil {
			return
		}
		reqs = append(reqs, one)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range reqs {
		if r.Method == "" {
			continue
		}
		f.requests[r.Method]++
		f.requests[r.Method+" "+compactParams(r.Params)]++
	}
}

// compactParams is params without whitespace, "[]" when absent.
func compactParams(p json.RawMessage) string {
	if len(bytes.TrimSpace(p)) == 0 || string(bytes.TrimSpace(p)) == "null" {
		return "[]"
	}
	var b bytes.Buffer
	if json.Compact(&b, p) != nil {
		return string(p)
	}
	return b.String()
}

func (f *forwarder) sawReply(conn int, p []byte) {
	// notifications are small; big frames are replies (metadata, blocks)
	if len(p) > 64<<10 || !bytes.Contains(p, []byte(`"subscription"`)) {
		return
	}
	var n struct {
		Method string `json:"method"`
		Params struct {
			Subscription json.RawMessage `json:"subscription"`
		} `json:"params"`
	}
	if json.Unmarshal(p, &n) != nil || n.Method == "" {
		return
	}
	f.mu.Lock()
	f.notifs = append(f.notifs, fwdNotif{conn: conn, method: n.Method, sub: string(n.Params.Subscription)})
	f.mu.Unlock()
}

// requestCount is how many requests reached the node through this
// forwarder, by "method" or by "method params" (params compacted).
func (f *forwarder) requestCount(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[key]
}

func (f *forwarder) requestCounts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.requests))
	for k, v := range f.requests {
		out[k] = v
	}
	return out
}

// mark returns a position in the notification log.
func (f *forwarder) mark() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.notifs)
}

// subsSince counts the distinct upstream subscriptions that delivered a
// notification of method since mark.
func (f *forwarder) subsSince(mark int, method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string]bool{}
	for _, n := range f.notifs[min(mark, len(f.notifs)):] {
		if n.method == method {
			seen[strconv.Itoa(n.conn)+"/"+n.sub] = true
		}
	}
	return len(seen)
}

func (f *forwarder) String() string { return f.addr }

// wsSniffer parses one direction of a WebSocket connection (after the HTTP
// upgrade) and hands complete text messages to onText. It never blocks or
// fails the stream: on anything it cannot parse it stops looking.
type wsSniffer struct {
	masked   bool // client → server frames
	onText   func([]byte)
	buf      []byte
	upgraded bool
	broken   bool
	msg      []byte
	msgOp    byte
	inMsg    bool
}

func (s *wsSniffer) Write(p []byte) (int, error) {
	if s.broken {
		return len(p), nil
	}
	s.buf = append(s.buf, p...)
	if !s.upgraded {
		i := bytes.Index(s.buf, []byte("\r\n\r\n"))
		if i < 0 {
			if len(s.buf) > 64<<10 {
				s.broken = true
			}
			return len(p), nil
		}
		s.upgraded = true
		s.buf = s.buf[i+4:]
	}
	for s.frame() {
	}
	return len(p), nil
}

// frame consumes one complete frame from buf, if there is one.
func (s *wsSniffer) frame() bool {
	b := s.buf
	if len(b) < 2 {
		return false
	}
	fin, op := b[0]&0x80 != 0, b[0]&0x0f
	masked := b[1]&0x80 != 0
	n := uint64(b[1] & 0x7f)
	h := 2
	switch n {
	case 126:
		if len(b) < 4 {
			return false
		}
		n, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return false
		}
		n, h = binary.BigEndian.Uint64(b[2:]), 10
	}
	if masked != s.masked || n > 256<<20 {
		s.broken = true
		return false
	}
	var key []byte
	if masked {
		if len(b) < h+4 {
			return false
		}
		key = b[h : h+4]
		h += 4
	}
	if uint64(len(b)-h) < n {
		return false
	}
	payload := b[h : h+int(n)]
	if masked {
		payload = bytes.Clone(payload)
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	s.buf = b[h+int(n):]
	if len(s.buf) == 0 {
		s.buf = nil // let big frames be collected
	}
	if op >= 0x8 { // control frame
		return true
	}
	if op != 0 {
		s.msgOp, s.msg, s.inMsg = op, nil, true
	}
	if !s.inMsg {
		s.broken = true
		return false
	}
	s.msg = append(s.msg, payload...)
	if fin {
		if s.msgOp == 0x1 && s.onText != nil {
			s.onText(s.msg)
		}
		s.msg, s.inMsg = nil, false
	}
	return true
}
