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
