package handler_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

const invalidUTF8Reply = `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: invalid UTF-8"}}`

// Requests holding invalid UTF-8 anywhere are refused with -32700 over HTTP
// and WebSocket, and never reach the node, which would close the upstream
// connection (1007) and every call in flight on it. Another client's calls
// meanwhile all succeed.
func TestInvalidUTF8NeverReachesTheNode(t *testing.T) {
	gw, node := start(t, "")
	ws := testgw.Dial(t, gw.WS("/dev"))
	if r := ws.Call("system_chain", []any{}); r.Error != nil {
		t.Fatalf("warm-up: %s", r.Raw)
	}
	accepted := node.ConnectionsAccepted()
	node.ResetCounters()
	cases := []struct{ name, body string }{
		{"params", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"state_getStorage\",\"params\":[\"0x26aa\xff\"]}"},
		{"params object", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"state_call\",\"params\":{\"\xc3\x28\":1}}"},
		{"method", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"system_\xe2\x82chain\"}"},
		{"id", "{\"jsonrpc\":\"2.0\",\"id\":\"\xf0\x28\x8c\xbc\",\"method\":\"system_chain\"}"},
		{"surrogate half", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"system_chain\",\"params\":[\"\xed\xa0\x80\"]}"},
		{"notification", "{\"jsonrpc\":\"2.0\",\"method\":\"system_chain\",\"params\":[\"\x80\"]}"},
		{"batch entry", "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"system_chain\"},{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"system_name\",\"params\":[\"\xff\"]}]"},
		{"subscribe", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"state_subscribeStorage\",\"params\":[[\"0x\xfe\"]]}"},
	}
	for _, tc := range cases {
		t.Run(tc.name+"/http", func(t *testing.T) {
			status, body := testgw.Post(t, gw.HTTP("/dev"), []byte(tc.body))
			if status != http.StatusOK || string(body) != invalidUTF8Reply {
				t.Fatalf("got %d %s\nwant %s", status, body, invalidUTF8Reply)
			}
		})
		t.Run(tc.name+"/ws", func(t *testing.T) {
			conn := dialRaw(t, gw.WS("/dev"))
			if err := conn.WriteMessage(websocket.TextMessage, []byte(tc.body)); err != nil {
				t.Fatal(err)
			}
			if got := readFrame(t, conn, 5*time.Second); string(got) != invalidUTF8Reply {
				t.Fatalf("got  %s\nwant %s", got, invalidUTF8Reply)
			}
		})
	}
	t.Run("binary frame", func(t *testing.T) {
		conn := dialRaw(t, gw.WS("/dev"))
		if err := conn.WriteMessage(websocket.BinaryMessage, []byte(cases[0].body)); err != nil {
			t.Fatal(err)
		}
		if r := decodeReply(t, readFrame(t, conn, 5*time.Second)); r.ErrCode() != -32700 {
			t.Fatalf("binary frame: %s", r.Raw)
		}
	})
	t.Run("a flood of them", func(t *testing.T) {
		// The scenario: 20 such calls while another client works.
		var wg sync.WaitGroup
		errs := make(chan string, 100)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 40 {
				if r := ws.Call("system_name", []any{}); r.Error != nil {
					errs <- string(r.Raw)
				}
			}
		}()
		bad := dialRaw(t, gw.WS("/dev"))
		for i := range 20 {
			_ = bad.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"state_getStorage\",\"params\":[\"\xff%d\"]}", i, i))
		}
		for range 20 {
			if got := readFrame(t, bad, 5*time.Second); string(got) != invalidUTF8Reply {
				t.Fatalf("got %s", got)
			}
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Errorf("another client's call failed: %s", e)
		}
	})
	if got := node.Calls("state_getStorage") + node.Calls("state_call") + node.Calls("state_subscribeStorage"); got != 0 {
		t.Errorf("the node received %d of the refused calls", got)
	}
	if n := node.InvalidFrames(); n != 0 {
		t.Errorf("the node closed %d connections for invalid UTF-8", n)
	}
	// Connections the node closed for a bad frame are counted above; a
	// dial more would also follow a pong late on a loaded machine.
	if n := node.ConnectionsAccepted(); n != accepted {
		t.Logf("the gateway dialled the node %d times since the start (was %d)", n, accepted)
	}
}

// An upstream connection lost because of one client's call costs other
// clients nothing: their reads in flight on it are retried on another
// connection, and the node stays ready.
func TestLostUpstreamConnectionCostsOthersNothing(t *testing.T) {
	node := fakenode.Start(t)
	const pool = 4
	block := strings.Replace(chainBlock("dev", testChainOpts, node.URL()), "pool 2", fmt.Sprintf("pool %d", pool), 1)
	gw := testgw.Start(t, block, "\telara_rpc")
	waitReady(t, gw, 1)
	waitFor(t, "a full pool", func() bool { return node.Connections() == pool })
	ws := testgw.Dial(t, gw.WS("/dev"))
	// Other clients' reads are in flight on every connection...
	node.SetDelay("system_name", 400*time.Millisecond)
	// ...when one client's call makes the node drop the connection it came
	// on. A write, so it is not retried on a second connection.
	node.SetDisconnectOn("author_submitExtrinsic", true)
	const reads = 16
	var wg sync.WaitGroup
	replies := make([]*testgw.Response, reads)
	for i := range reads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = ws.Call("system_name", []any{})
		}()
	}
	time.Sleep(100 * time.Millisecond) // the reads are on their way
	killer := testgw.Dial(t, gw.WS("/dev"))
	_ = killer.Call("author_submitExtrinsic", []any{"0x00"}) // fails: not the point
	wg.Wait()
	for i, r := range replies {
		if r.Error != nil {
			t.Errorf("read %d failed: %s", i, r.Raw)
		}
	}
	// The test proves something only if a connection was lost (and so
	// dialled again).
	waitFor(t, "a lost connection dialled again", func() bool { return node.ConnectionsAccepted() > pool })
	if _, hb := health(t, gw); hb.Ready != 1 {
		t.Errorf("the node was marked not ready: %+v", hb)
	}
}

// FuzzRequestPath sends arbitrary bytes through the whole request path,
// over HTTP and as a WebSocket text frame, to a node that closes any
// connection carrying a text frame that is not UTF-8, as real nodes do:
// no upstream connection is ever lost, and every reply is valid JSON.
func FuzzRequestPath(f *testing.F) {
	node := fakenode.Start(f)
	gw := testgw.Start(f, chainBlock("dev", testChainOpts, node.URL()), "\telara_rpc")
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"system_chain","params":[]}`,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"state_getStorage\",\"params\":[\"\xff\"]}",
		"{\"jsonrpc\":\"2.0\",\"id\":\"\xc0\",\"method\":\"system_chain\"}",
		"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"system_chain\"},{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"system_name\",\"params\":{\"a\":\"\xed\xbf\xbf\"}}]",
		`{"jsonrpc":"2.0","id":1,"method":"state_getStorage","params":["\ud800"]}`,
		`{"jsonrpc":"2.0","id":1,"method":"chain_getBlockHash","params":[1e400]}`,
		"{\"jsonrpc\":\"2.0\",\"method\":\"system_chain\",\"params\":[\"\xf4\x90\x80\x80\"]}",
		`[1,2,{"jsonrpc":"2.0","id":3,"method":"system_name"}]`,
		`{"jsonrpc":"2.0","id":1,"method":"state_subscribeStorage","params":[["0x00"]]}`,
	} {
		f.Add([]byte(s))
	}
	waitForT(f, "a full pool (2)", func() bool { return node.Connections() == 2 })
	accepted := node.ConnectionsAccepted()
	f.Fuzz(func(t *testing.T, body []byte) {
		status, reply := testgw.PostWithin(t, gw.HTTP("/dev"), body, 10*time.Second)
		if status == http.StatusOK && !json.Valid(reply) || !utf8.Valid(reply) {
			t.Fatalf("HTTP %d reply is not valid JSON text: %q", status, reply)
		}
		conn, _, err := websocket.DefaultDialer.Dial(gw.WS("/dev"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.WriteMessage(websocket.TextMessage, body)
		// A marker call after it: every frame up to its reply must be
		// valid JSON (the fuzzed message may earn no reply at all).
		_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":"marker","method":"system_chain"}`))
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, frame, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("WebSocket: %v", err)
			}
			if !json.Valid(frame) {
				t.Fatalf("WebSocket frame is not valid JSON: %q", frame)
			}
			var r struct{ ID json.RawMessage }
			if json.Unmarshal(frame, &r) == nil && string(r.ID) == `"marker"` {
				break
			}
		}
		// The same bytes as a binary frame earn -32700 and go nowhere.
		// (Replies to the text frame may still come first.)
		_ = conn.WriteMessage(websocket.BinaryMessage, body)
		for {
			_, frame, err := conn.ReadMessage()
			if err != nil || !json.Valid(frame) {
				t.Fatalf("after a binary frame: %q, %v", frame, err)
			}
			if strings.Contains(string(frame), "Binary frames") {
				if !strings.Contains(string(frame), `"code":-32700`) {
					t.Fatalf("binary frame: %s", frame)
				}
				break
			}
		}
		if n := node.InvalidFrames(); n != 0 {
			t.Fatalf("the node closed %d connections for invalid UTF-8", n)
		}
		if n := node.ConnectionsAccepted(); n != accepted {
			t.Fatalf("upstream connections were lost: %d dialled, was %d", n, accepted)
		}
	})
}

func waitForT(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
