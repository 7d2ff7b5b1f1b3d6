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
		c, _, err := websocket.DefaultDialer.Dial(gw.WS("/dev"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var pings atomic.Int32
		c.SetPingHandler(func(data string) error {
			pings.Add(1)
			return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
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
// not all pinged in the same instant every interval: a client's first
// ping comes anywhere in its first interval, each later one after the
// interval give or take a tenth.
func TestClientsConnectedTogetherArePingedApart(t *testing.T) {
	const interval = 200 * time.Millisecond
	gw, _ := start(t, "\telara_rpc {\n\t\tping_interval 200ms\n\t}")
	const clients, pingsEach = 20, 3
	type offsets struct{ first, last time.Duration }
	got := make(chan offsets, clients)
	for range clients {
		// Before dialling: the gateway arms its ping timer before the
		// handshake reaches the client.
		connected := time.Now()
		c, _, err := websocket.DefaultDialer.Dial(gw.WS("/dev"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var pings atomic.Int32
		var first time.Duration
		c.SetPingHandler(func(data string) error {
			switch pings.Add(1) {
			case 1:
				first = time.Since(connected)
			case pingsEach:
				got <- offsets{first, time.Since(connected)}
			}
			return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		go func() {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	var firstLo, firstHi, lastLo, lastHi time.Duration
	for i := range clients {
		select {
		case o := <-got:
			if i == 0 {
				firstLo, lastLo = o.first, o.last
			}
			firstLo, firstHi = min(firstLo, o.first), max(firstHi, o.first)
			lastLo, lastHi = min(lastLo, o.last), max(lastHi, o.last)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d clients got %d pings in 10s", i, clients, pingsEach)
		}
	}
	// Connected within a few milliseconds, pinged all over the first
	// interval: 20 first pings drawn from 180 ms span under 60 ms with a
	// chance of about 1 in 50 million.
	if firstHi-firstLo < interval/3 {
		t.Errorf("first pings %v to %v after connecting: not spread over the interval", firstLo, firstHi)
	}
	if firstLo < interval/10 || firstHi > interval+time.Second {
		t.Errorf("first pings %v to %v after connecting, outside (%v, %v]", firstLo, firstHi, interval/10, interval)
	}
	// Then every interval give or take a tenth.
	if lo, hi := interval/10+2*interval*9/10, interval+2*interval*11/10; lastLo < lo || lastHi > hi+time.Second {
		t.Errorf("third pings %v to %v after connecting, outside %v to %v", lastLo, lastHi, lo, hi)
	}
}
