package handler_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/elara-gateway/elara/handler"
	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// A client that does not read while large replies queue for it is closed
// with 1008 and a reason once send_queue_bytes are waiting, and its queue
// never holds more than that.
func TestSendQueueBoundedByBytes(t *testing.T) {
	node := fakenode.Start(t)
	big := `"0x` + strings.Repeat("ab", 128<<10) + `"` // a 256 KiB reply
	node.Handle("state_getMetadata", func(json.RawMessage) (any, *fakenode.Error) { return json.RawMessage(big), nil })
	const bound = 1 << 20
	gw := testgw.Start(t, chainBlock("dev", testChainOpts, node.URL()), "\telara_rpc {\n\t\tsend_queue_bytes 1MiB\n\t}")
	handler.ResetPeakQueuedBytes()

	conn := dialRaw(t, gw.WS("/dev"))
	const calls = 200 // 50 MiB of replies: far more than socket buffers hold
	for i := range calls {
		if err := conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"state_getMetadata"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a full send queue", func() bool { return handler.PeakQueuedBytes() > int64(bound-len(big)) })
	// The session closes on the next reply; then the node sees no more calls.
	for last := -1; last != node.Calls("state_getMetadata"); time.Sleep(200 * time.Millisecond) {
		last = node.Calls("state_getMetadata")
	}
	t.Logf("calls at the node: %d, peak queued %d", node.Calls("state_getMetadata"), handler.PeakQueuedBytes())

	// Now read: the replies that made it into the socket, then the close.
	var replies int
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, _, err := conn.ReadMessage()
		if err == nil {
			replies++
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("after %d replies: %v, want a close frame", replies, err)
		}
		if ce.Code != websocket.ClosePolicyViolation || !strings.Contains(ce.Text, "send_queue_bytes") {
			t.Fatalf("closed with %d %q, want 1008 naming send_queue_bytes", ce.Code, ce.Text)
		}
		break
	}
	if replies >= calls {
		t.Fatalf("all %d replies came: the client was never too slow", replies)
	}
	if peak := handler.PeakQueuedBytes(); peak > bound {
		t.Fatalf("a send queue held %d bytes, over the bound of %d", peak, bound)
	}
}

// One message larger than send_queue_bytes still reaches a client that
// reads: the bound is on what waits, not on a reply's size.
func TestSendQueueBytesAdmitsOneLargeReply(t *testing.T) {
	node := fakenode.Start(t)
	big := `"0x` + strings.Repeat("cd", 64<<10*3) + `"` // 384 KiB, over 256 KiB
	node.Handle("state_getMetadata", func(json.RawMessage) (any, *fakenode.Error) { return json.RawMessage(big), nil })
	gw := testgw.Start(t, chainBlock("dev", testChainOpts, node.URL()), "\telara_rpc {\n\t\tsend_queue_bytes 256KiB\n\t}")
	ws := testgw.Dial(t, gw.WS("/dev"))
	for range 3 {
		if r := ws.Call("state_getMetadata", []any{}); r.Error != nil || len(r.Result) != len(big) {
			t.Fatalf("reply: %.200s", r.Raw)
		}
	}
}

// A WebSocket batch runs at most 16 calls at once, as an HTTP batch does.
func TestWebSocketBatchConcurrencyIsBounded(t *testing.T) {
	node := fakenode.Start(t)
	var running, most atomic.Int32
	node.Handle("system_name", func(json.RawMessage) (any, *fakenode.Error) {
		n := running.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond) // overlap with the others
		running.Add(-1)
		return "fake", nil
	})
	gw := testgw.Start(t, chainBlock("dev", testChainOpts, node.URL()), "\telara_rpc")
	ws := testgw.Dial(t, gw.WS("/dev"))
	var b strings.Builder
	b.WriteByte('[')
	for i := range 80 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"jsonrpc":"2.0","id":%d,"method":"system_name"}`, i)
	}
	b.WriteByte(']')
	ws.SendRaw([]byte(b.String()))
	var out []json.RawMessage
	if err := json.Unmarshal(ws.RawBatch(30*time.Second), &out); err != nil || len(out) != 80 {
		t.Fatalf("batch reply: %d entries, %v", len(out), err)
	}
	if m := most.Load(); m > 16 || m < 2 {
		t.Fatalf("%d calls of one batch ran at once, want 2..16", m)
	}
}

// A client that stops reading while thousands of small replies go out
// fills its socket: replies are then written in part at once and the rest
// by the session's writer. When it reads again, every reply is there
// once, whole, and the stream is valid WebSocket.
func TestRepliesToAClientThatPausesArriveWhole(t *testing.T) {
	node := fakenode.Start(t)
	// Replies under 1 KiB: the size written directly to the socket.
	body := `"` + strings.Repeat("x", 900) + `"`
	node.Handle("system_name", func(json.RawMessage) (any, *fakenode.Error) { return json.RawMessage(body), nil })
	gw := testgw.Start(t, chainBlock("dev", testChainOpts, node.URL()),
		"\telara_rpc {\n\t\tsend_queue 100000\n\t\tsend_queue_bytes 64MiB\n\t}")
	dialer := websocket.Dialer{NetDialContext: (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		// A small receive buffer fills sooner than loopback's default.
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}).DialContext}
	conn, _, err := dialer.Dial(gw.WS("/dev"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	cutBefore := handler.DirectWritesCut()
	const calls = 8000 // about 7.5 MiB of replies
	go func() {
		for i := range calls {
			if conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"system_name"}`, i)) != nil {
				return
			}
		}
	}()
	// Not reading: the replies pile up in the sockets until one is cut
	// (or, on a busy machine, all queue behind the writer without a cut).
	waitFor(t, "a reply cut at the full socket", func() bool {
		return handler.DirectWritesCut() > cutBefore || node.Calls("system_name") >= calls
	})
	t.Logf("direct writes cut at the full socket: %d", handler.DirectWritesCut()-cutBefore)
	// Pings from here on: each pong goes between frames, never inside the
	// rest of one cut at the full socket.
	stopPings := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopPings:
				return
			case <-time.After(time.Millisecond):
				_ = conn.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second))
			}
		}
	}()
	defer close(stopPings)
	seen := make([]bool, calls)
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	for range calls {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("reading the replies: %v", err)
		}
		var r struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(msg, &r); err != nil || string(r.Result) != body || r.ID < 0 || r.ID >= calls || seen[r.ID] {
			t.Fatalf("reply %.120s: %v", msg, err)
		}
		seen[r.ID] = true
	}
}
