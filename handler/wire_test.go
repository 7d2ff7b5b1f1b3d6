package handler_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/elara-gateway/elara/internal/testgw"
)

// A batch over max_batch is refused whole, and the error names the
// setting to raise, over both transports.
func TestBatchOverLimitNamesTheSetting(t *testing.T) {
	gw, _ := start(t, `
	elara_rpc {
		max_batch 3
	}`)
	var calls []string
	for i := range 4 {
		calls = append(calls, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"system_chain"}`, i))
	}
	batch := []byte("[" + strings.Join(calls, ",") + "]")
	check := func(t *testing.T, r *testgw.Response) {
		t.Helper()
		if r.ErrCode() != -32600 || string(r.ID) != "null" {
			t.Fatalf("reply %s, want one -32600 with id null", r.Raw)
		}
		if !strings.Contains(r.Error.Message, "max_batch") || !strings.Contains(r.Error.Message, "3") {
			t.Fatalf("message %q does not name max_batch and its value 3", r.Error.Message)
		}
	}
	t.Run("http", func(t *testing.T) {
		status, body := testgw.Post(t, gw.HTTP("/dev"), batch)
		if status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
		r := decodeReply(t, body)
		check(t, &r)
	})
	t.Run("websocket", func(t *testing.T) {
		c := testgw.Dial(t, gw.WS("/dev"))
		c.SendRaw(batch)
		check(t, c.Wait("null", 5*time.Second))
		// The connection stays usable.
		if r := c.Call("system_chain", nil); string(r.Result) != `"Fake Dev"` {
			t.Fatalf("after the refused batch: %s", r.Raw)
		}
	})
}

// A WebSocket message over max_request_size closes the connection with
// 1009 and a reason the client can read, even while the client is still
// sending the message (the gateway must not reset the connection under
// its close frame).
func TestWebSocketOversizedMessageClosesWith1009(t *testing.T) {
	gw, _ := start(t, `
	elara_rpc {
		max_request_size 64KiB
	}`)
	cases := []struct {
		name string
		size int
	}{
		{"just over", 64<<10 + 1},
		{"far over, still being sent", 8 << 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, _, err := websocket.DefaultDialer.Dial(gw.WS("/dev"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			closed := make(chan error, 1)
			go func() {
				for {
					if _, _, err := conn.ReadMessage(); err != nil {
						closed <- err
						return
					}
				}
			}()
			prefix := `{"jsonrpc":"2.0","id":1,"method":"system_chain","params":["`
			msg := prefix + strings.Repeat("a", tc.size-len(prefix)-3) + `"]}`
			// The write may fail once the gateway has closed.
			_ = conn.WriteMessage(websocket.TextMessage, []byte(msg))
			select {
			case err := <-closed:
				ce, ok := err.(*websocket.CloseError)
				if !ok || ce.Code != websocket.CloseMessageTooBig {
					t.Fatalf("closed with %v, want close code 1009", err)
				}
				if !strings.Contains(ce.Text, "65536") {
					t.Fatalf("close reason %q does not name the limit", ce.Text)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("oversized message did not close the connection")
			}
		})
	}
}
