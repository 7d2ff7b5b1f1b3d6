package handler_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// Small frames are written straight to the socket, large ones and pings
// by the WebSocket library with a write deadline. Once that deadline has
// passed, the next small frame still goes out: the session stays open
// and every reply arrives.
func TestSmallRepliesAfterAnExpiredWriteDeadline(t *testing.T) {
	node := fakenode.Start(t)
	big := `"0x` + strings.Repeat("ab", 4<<10) + `"` // over the size written directly
	node.Handle("state_getMetadata", func(json.RawMessage) (any, *fakenode.Error) { return json.RawMessage(big), nil })
	gw := testgw.Start(t, chainBlock("dev", testChainOpts, node.URL()),
		"\telara_rpc {\n\t\twrite_timeout 100ms\n\t\tping_interval 150ms\n\t}")
	ws := testgw.Dial(t, gw.WS("/dev"))
	cases := []struct {
		name   string
		before func()
	}{
		{"after a large reply", func() {
			if r := ws.Call("state_getMetadata", []any{}); r.Error != nil || len(r.Result) != len(big) {
				t.Fatalf("large reply: %.100s", r.Raw)
			}
		}},
		// The gateway pings every 150ms; the client answers.
		{"after pings", func() {}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.before()
			time.Sleep(400 * time.Millisecond) // the write deadline is long past
			for range 3 {
				if r := ws.Call("system_chain", []any{}); r.Error != nil || len(r.Result) == 0 {
					t.Fatalf("small reply: %s", r.Raw)
				}
			}
		})
	}
	// The client's own pings are answered in between.
	raw := dialRaw(t, gw.WS("/dev"))
	pongs := make(chan string, 1)
	raw.SetPongHandler(func(d string) error { pongs <- d; return nil })
	if err := raw.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := raw.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"system_chain"}`)); err != nil {
		t.Fatal(err)
	}
	if reply := readFrame(t, raw, 5*time.Second); !strings.Contains(string(reply), `"id":1`) {
		t.Fatalf("reply %s", reply)
	}
	select {
	case d := <-pongs:
		if d != "hi" {
			t.Fatalf("pong %q", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}
}
