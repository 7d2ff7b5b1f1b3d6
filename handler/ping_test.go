package handler_test

import (
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The gateway pings every client each ping_interval: one that answers
// (every WebSocket library does) stays connected however long it is idle,
// one that does not is closed after two intervals, so dead clients do not
// hold memory and subscriptions.
func TestWebSocketPingsKeepLiveClientsAndDropSilentOnes(t *testing.T) {
	gw, _ := start(t, "\telara_rpc {\n\t\tping_interval 200ms\n\t}")

	t.Run("answering client stays", func(t *testing.T) {
		var pings atomic.Int32
		c := dialAnsweringPings(t, gw.WS("/dev"), func() { pings.Add(1) })
		replies := make(chan []byte, 1)
		go func() {
			for {
				_, msg, err := c.ReadMessage()
				if err != nil {
					close(replies)
					return
				}
				replies <- msg
			}
		}()
		// Idle for several intervals, then a call still gets its answer.
		deadline := time.Now().Add(10 * time.Second)
		for pings.Load() < 5 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if n := pings.Load(); n < 5 {
			t.Fatalf("%d pings in 10s with ping_interval 200ms", n)
		}
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":3,"method":"system_chain","params":[]}`)); err != nil {
			t.Fatal(err)
		}
		select {
		case msg, ok := <-replies:
			if !ok {
				t.Fatal("connection closed although the client answered every ping")
			}
			if want := `{"jsonrpc":"2.0","id":3,"result":"Fake Dev"}`; string(msg) != want {
				t.Fatalf("got %s, want %s", msg, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no reply")
		}
	})

	t.Run("silent client is closed", func(t *testing.T) {
		c := dialBare(t, "127.0.0.1:"+strconv.Itoa(gw.Port), "/dev", false)
		defer c.conn.Close()
		// Read (and never answer) the pings until the gateway closes the
		// socket.
		_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.Copy(io.Discard, c.conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("a client that answers no ping is still connected after 10s (ping_interval 200ms)")
		}
	})
}

// Clients that connected together (after a deploy, a network blip) are
// not all pinged in the same instant every interval: each ping comes
// after the interval give or take a tenth, so their pings drift apart.
func TestClientsConnectedTogetherArePingedApart(t *testing.T) {
	gw, _ := start(t, "\telara_rpc {\n\t\tping_interval 200ms\n\t}")
	const clients, pingsEach = 20, 3
	offsets := make(chan time.Duration, clients)
	for range clients {
		// Before dialling: the gateway arms its ping timer before the
		// handshake reaches the client.
		connected := time.Now()
		var pings atomic.Int32
		c := dialAnsweringPings(t, gw.WS("/dev"), func() {
			if pings.Add(1) == pingsEach {
				offsets <- time.Since(connected)
			}
		})
		go func() {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	var lo, hi time.Duration
	for i := range clients {
		select {
		case d := <-offsets:
			if i == 0 || d < lo {
				lo = d
			}
			hi = max(hi, d)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d clients got %d pings in 10s", i, clients, pingsEach)
		}
	}
	// Without the spread all would be pinged about 600 ms after connecting.
	if hi-lo < 30*time.Millisecond {
		t.Fatalf("third pings %v to %v after connecting: not spread", lo, hi)
	}
	if lo < 3*180*time.Millisecond || hi > 3*220*time.Millisecond+time.Second {
		t.Fatalf("third pings %v to %v after connecting, outside 3 × (200 ms ± 10%%)", lo, hi)
	}
}

// dialAnsweringPings connects a client that answers every ping, as
// WebSocket libraries do, calling onPing first. It is closed when the
// test ends.
func dialAnsweringPings(t *testing.T, url string, onPing func()) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetPingHandler(func(data string) error {
		onPing()
		return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	return c
}
