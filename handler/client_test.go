package handler_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/gorilla/websocket"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// dialRaw opens a WebSocket that nothing reads unless the test does.
func dialRaw(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// readFrame reads one text frame, failing the test after timeout.
func readFrame(t *testing.T, conn *websocket.Conn, timeout time.Duration) []byte {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	_, msg, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	return msg
}

func decodeReply(t *testing.T, raw []byte) testgw.Response {
	t.Helper()
	var r testgw.Response
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("not one JSON-RPC object: %.300s", raw)
	}
	r.Raw = raw
	return r
}

// A node that never answers costs a client request_timeout, never a hang,
// over HTTP and WebSocket, and holds up no one else.
func TestNodeThatNeverAnswersGivesUpstreamTimeout(t *testing.T) {
	node := fakenode.Start(t)
	gw := testgw.Start(t, chainBlock("dev", "request_timeout 300ms\nhealth_interval 200ms\nsubscription_grace 0s", node.URL()), "\telara_rpc")
	node.SetDrop("chain_getBlock", true)
	node.SetDrop("state_subscribeStorage", true)
	const key = `"0x26aa394eea5630e07c48ae0c9558cef7"`
	cases := []struct {
		name      string
		transport string // "http" or "ws"
		body      string
		// timedOut are the ids that must get -32001; served the ones that
		// must get a result.
		timedOut, served []string
	}{
		{"http call", "http", `{"jsonrpc":"2.0","id":1,"method":"chain_getBlock","params":[]}`, []string{`1`}, nil},
		{"http batch entry", "http", `[{"jsonrpc":"2.0","id":1,"method":"chain_getBlock","params":[]},{"jsonrpc":"2.0","id":2,"method":"system_chain","params":[]}]`, []string{`1`}, []string{`2`}},
		{"websocket call", "ws", `{"jsonrpc":"2.0","id":"c","method":"chain_getBlock","params":[]}`, []string{`"c"`}, nil},
		{"websocket batch entry", "ws", `[{"jsonrpc":"2.0","id":1,"method":"chain_getBlock","params":[]},{"jsonrpc":"2.0","id":2,"method":"system_chain","params":[]}]`, []string{`1`}, []string{`2`}},
		{"websocket subscribe", "ws", `{"jsonrpc":"2.0","id":"s","method":"state_subscribeStorage","params":[[` + key + `]]}`, []string{`"s"`}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var frames [][]byte
			served := tc.served
			if tc.transport == "http" {
				done := make(chan []byte, 1)
				go func() {
					status, out := testgw.PostWithin(t, gw.HTTP("/dev"), []byte(tc.body), 30*time.Second)
					if status != http.StatusOK {
						t.Errorf("status %d: %s", status, out)
					}
					done <- out
				}()
				// Others are served while the call waits for the node.
				if r := testgw.PostCall(t, gw.HTTP("/dev"), "system_chain", nil); string(r.Result) != `"Fake Dev"` {
					t.Fatalf("another HTTP client: %s", r.Raw)
				}
				if r := testgw.Dial(t, gw.WS("/dev")).Call("system_chain", nil); string(r.Result) != `"Fake Dev"` {
					t.Fatalf("another WebSocket client: %s", r.Raw)
				}
				frames = append(frames, <-done)
			} else {
				conn := dialRaw(t, gw.WS("/dev"))
				if err := conn.WriteMessage(websocket.TextMessage, []byte(tc.body)); err != nil {
					t.Fatal(err)
				}
				// The same connection and other clients are served meanwhile.
				if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":"other","method":"system_chain"}`)); err != nil {
					t.Fatal(err)
				}
				served = append(served, `"other"`)
				if r := testgw.PostCall(t, gw.HTTP("/dev"), "system_chain", nil); string(r.Result) != `"Fake Dev"` {
					t.Fatalf("another HTTP client: %s", r.Raw)
				}
				for range 2 {
					frames = append(frames, readFrame(t, conn, 30*time.Second))
				}
			}
			byID := map[string]testgw.Response{}
			for _, f := range frames {
				var batch []testgw.Response
				if json.Unmarshal(f, &batch) != nil {
					batch = []testgw.Response{decodeReply(t, f)}
				}
				for _, r := range batch {
					byID[string(r.ID)] = r
				}
			}
			for _, id := range tc.timedOut {
				if r, ok := byID[id]; !ok || r.ErrCode() != -32001 {
					t.Errorf("id %s: want error -32001 (upstream timeout); replies %s", id, bytes.Join(frames, []byte("\n")))
				}
			}
			for _, id := range served {
				if r, ok := byID[id]; !ok || r.Error != nil || len(r.Result) == 0 {
					t.Errorf("id %s: want a result; replies %s", id, bytes.Join(frames, []byte("\n")))
				}
			}
		})
	}
}

// Params the gateway checks itself get -32602 and never reach the node.
func TestInvalidParamsNeverReachTheNode(t *testing.T) {
	gw, node := start(t, "")
	c := testgw.Dial(t, gw.WS("/dev"))
	// A subscription the malformed unsubscribes must leave alone.
	sub := c.Subscribe("state_subscribeRuntimeVersion", nil)
	cases := []struct {
		name, method, params string
	}{
		{"unsubscribe without params", "state_unsubscribeRuntimeVersion", `[]`},
		{"unsubscribe with two ids", "state_unsubscribeRuntimeVersion", `[` + string(sub) + `,"x"]`},
		{"unsubscribe with named params", "state_unsubscribeRuntimeVersion", `{"subscription":` + string(sub) + `}`},
		{"unsubscribe with a null id", "state_unsubscribeRuntimeVersion", `[null]`},
		{"unsubscribe with an object id", "state_unsubscribeRuntimeVersion", `[{"id":` + string(sub) + `}]`},
		{"unsubscribe with an array id", "state_unsubscribeRuntimeVersion", `[[` + string(sub) + `]]`},
		{"unsubscribe with a negative id", "chain_unsubscribeNewHeads", `[-1]`},
		{"unsubscribe with a fractional id", "chain_unsubscribeNewHeads", `[1.5]`},
		{"storage keys not an array", "state_subscribeStorage", `["0x12"]`},
		{"storage params an object", "state_subscribeStorage", `{"keys":["0x12"]}`},
		{"storage key without 0x", "state_subscribeStorage", `[["26aa394eea5630e07c48ae0c9558cef7"]]`},
		{"storage key with non-hex digits", "state_subscribeStorage", `[["0x26aa39zz"]]`},
		{"storage key a number", "state_subscribeStorage", `[[12]]`},
		{"storage with a second param", "state_subscribeStorage", `[["0x12"],"0x00"]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := node.TotalCalls()
			c.SendRaw([]byte(`{"jsonrpc":"2.0","id":"bad","method":"` + tc.method + `","params":` + tc.params + `}`))
			r := c.Wait(`"bad"`, 10*time.Second)
			if r.ErrCode() != -32602 {
				t.Fatalf("want -32602 invalid params, got %s", r.Raw)
			}
			// The monitor's own health checks may reach the node meanwhile;
			// none of the methods under test may.
			for _, m := range []string{tc.method, "state_subscribeStorage", "state_unsubscribeRuntimeVersion", "chain_unsubscribeNewHeads"} {
				if n := node.Calls(m); n != 0 {
					t.Fatalf("%s reached the node %d times (%d calls in all since the request)", m, n, node.TotalCalls()-before)
				}
			}
		})
	}
	// The subscription survived and the connection still works.
	if r := c.Call("state_unsubscribeRuntimeVersion", []json.RawMessage{sub}); string(r.Result) != "true" {
		t.Fatalf("the subscription did not survive the malformed unsubscribes: %s", r.Raw)
	}
}

// Over HTTP a subscription method gets what a Substrate node answers
// there, word for word, and is never forwarded.
func TestSubscriptionsOverHTTPAnswerLikeANode(t *testing.T) {
	gw, node := start(t, "")
	const message = "Subscriptions are not available on this transport."
	// Not the head subscriptions: the health monitor holds those.
	for _, m := range []string{"chain_subscribeAllHeads", "state_subscribeStorage", "chain_unsubscribeAllHeads",
		"author_submitAndWatchExtrinsic", "chainHead_v1_follow", "myPallet_subscribeEvents"} {
		t.Run(m, func(t *testing.T) {
			for name, body := range map[string]string{
				"call":  `{"jsonrpc":"2.0","id":7,"method":"` + m + `","params":[]}`,
				"batch": `[{"jsonrpc":"2.0","id":7,"method":"` + m + `","params":[]}]`,
			} {
				status, out := testgw.Post(t, gw.HTTP("/dev"), []byte(body))
				if status != http.StatusOK {
					t.Fatalf("%s: status %d", name, status)
				}
				out = bytes.TrimSuffix(bytes.TrimPrefix(out, []byte("[")), []byte("]"))
				r := decodeReply(t, out)
				if r.ErrCode() != -32090 || r.Error.Message != message || string(r.ID) != "7" {
					t.Errorf("%s: got %s, want id 7, code -32090, message %q", name, out, message)
				}
			}
			if n := node.Calls(m); n != 0 {
				t.Errorf("%s reached the node %d times", m, n)
			}
		})
	}
}

// GET without an upgrade, HEAD and other methods on a chain path get 405
// with an Allow header; the body, where there is one, is a JSON-RPC error.
func TestChainPathRefusesOtherHTTPMethods(t *testing.T) {
	gw, _ := start(t, "")
	cases := []struct {
		method, path string
		body         bool
	}{
		{http.MethodGet, "/dev", true},
		{http.MethodGet, "/dev/0123456789abcdef0123456789abcdef", true},
		{http.MethodHead, "/dev", false},
		{http.MethodPut, "/dev", true},
		{http.MethodDelete, "/dev", true},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, gw.HTTP(tc.path), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("status %d, want 405", resp.StatusCode)
			}
			allow := map[string]bool{}
			for _, m := range strings.Split(resp.Header.Get("Allow"), ",") {
				allow[strings.TrimSpace(m)] = true
			}
			if len(allow) != 3 || !allow["GET"] || !allow["POST"] || !allow["OPTIONS"] {
				t.Errorf("Allow: %q, want GET, POST and OPTIONS", resp.Header.Get("Allow"))
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if !tc.body {
				if len(body) != 0 {
					t.Errorf("HEAD answered with a body: %q", body)
				}
				return
			}
			r := decodeReply(t, body)
			if r.ErrCode() != -32600 || r.Error.Message == "" || string(r.ID) != "null" {
				t.Errorf("body %s, want a JSON-RPC error -32600 with id null", body)
			}
		})
	}
}

// A client whose WebSocket answers pings stays; one that never reads, and
// so never answers, is dropped after two ping intervals and its
// subscriptions are released.
func TestClientKeepalive(t *testing.T) {
	const interval = 200 * time.Millisecond
	gw, node := start(t, "\telara_rpc {\n\t\tping_interval 200ms\n\t}")
	const method = "state_subscribeRuntimeVersion"

	// testgw's client reads all the time; gorilla answers pings from there.
	reader := testgw.Dial(t, gw.WS("/dev"))
	sub := reader.Subscribe(method, nil)
	waitFor(t, "the reader's upstream subscription", func() bool { return node.ActiveSubscriptions(method) == 1 })

	silent := dialRaw(t, gw.WS("/dev"))
	if err := silent.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"state_subscribeStorage","params":[["0x12"]]}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the silent client's subscription to reach the node", func() bool { return node.Calls("state_subscribeStorage") == 1 })
	waitFor(t, "the silent client to be dropped", func() bool { return node.ActiveSubscriptions("state_subscribeStorage") == 0 })
	// Reading at last finds the reply, then the closed connection.
	_ = silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	var err error
	for err == nil {
		_, _, err = silent.ReadMessage()
	}
	if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
		t.Fatalf("the silent client's connection is still open: %v", err)
	}

	// The reader has been through several intervals by now, and more.
	time.Sleep(5 * interval)
	select {
	case err := <-reader.Closed:
		t.Fatalf("a client answering pings was disconnected: %v", err)
	default:
	}
	if node.ActiveSubscriptions(method) != 1 {
		t.Fatal("the reader's subscription was released")
	}
	if r := reader.Call("state_unsubscribeRuntimeVersion", []json.RawMessage{sub}); string(r.Result) != "true" {
		t.Fatalf("the reader's subscription is gone: %s", r.Raw)
	}
}

// The chain and project a request names are request variables: access
// logs and other handlers use them as {http.vars.elara.chain} and
// {http.vars.elara.project}.
func TestChainAndProjectReachTheAccessLog(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "access.log")
	gw, _ := start(t, fmt.Sprintf(`
	log {
		output file %s
		format json
	}
	log_append project {http.vars.elara.project}
	log_append chain {http.vars.elara.chain}
	elara_rpc`, logFile))
	const project = "0123456789ABCDEF0123456789abcdef"
	cases := []struct {
		name, path  string
		ws          bool
		wantProject any // nil: the field is absent or null
	}{
		{"http with project", "/dev/" + project, false, strings.ToLower(project)},
		{"http without project", "/dev", false, nil},
		{"websocket with project", "/dev/" + project + "?ws", true, strings.ToLower(project)},
	}
	for _, tc := range cases {
		if tc.ws {
			c := testgw.Dial(t, gw.WS(tc.path))
			if r := c.Call("system_chain", nil); r.Error != nil {
				t.Fatalf("%s: %s", tc.name, r.Raw)
			}
			// A WebSocket request is logged once the connection ends.
			_ = c.Conn.Close()
		} else if r := testgw.PostCall(t, gw.HTTP(tc.path), "system_chain", nil); r.Error != nil {
			t.Fatalf("%s: %s", tc.name, r.Raw)
		}
	}
	entries := map[string]map[string]any{}
	waitFor(t, "access log entries", func() bool {
		f, err := os.Open(logFile)
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var e struct {
				Request struct {
					URI string `json:"uri"`
				} `json:"request"`
			}
			var all map[string]any
			if json.Unmarshal(sc.Bytes(), &e) == nil && json.Unmarshal(sc.Bytes(), &all) == nil {
				entries[e.Request.URI] = all
			}
		}
		// Other requests (the test gateway's readiness probe) are logged too:
		// wait for each case's own entry, not for a count.
		for _, tc := range cases {
			if _, ok := entries[tc.path]; !ok {
				return false
			}
		}
		return true
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, ok := entries[tc.path]
			if !ok {
				t.Fatalf("no access log entry for %s among %v", tc.path, entries)
			}
			if e["chain"] != "dev" {
				t.Errorf("chain = %v, want dev", e["chain"])
			}
			if e["project"] != tc.wantProject {
				t.Errorf("project = %v, want %v", e["project"], tc.wantProject)
			}
		})
	}
}

// Node URLs may come from the environment at provisioning time.
func TestNodeURLFromEnvironment(t *testing.T) {
	node := fakenode.Start(t)
	t.Setenv("ELARA_TEST_NODE_URL", node.URL())
	gw := testgw.Start(t, chainBlock("dev", testChainOpts, "{env.ELARA_TEST_NODE_URL}"), "\telara_rpc")
	if r := testgw.PostCall(t, gw.HTTP("/dev"), "system_chain", nil); string(r.Result) != `"Fake Dev"` {
		t.Fatalf("%s", r.Raw)
	}
	if node.Calls("system_chain") == 0 {
		t.Fatal("the call did not reach the node named by the environment")
	}

	// An unset variable is an error that says so, not a node named "".
	g := &testgw.Gateway{Port: testgw.FreePort(t)}
	cfg, err := testgw.Adapt(g.Caddyfile(chainBlock("dev", testChainOpts, "{env.ELARA_TEST_UNSET_NODE_URL}"), "\telara_rpc"))
	if err != nil {
		t.Fatal(err)
	}
	var c caddy.Config
	if err := json.Unmarshal(cfg, &c); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&c); err == nil || !strings.Contains(err.Error(), "unset environment variable") {
		t.Fatalf("unset variable: %v", err)
	}
}

// A node that serves HTTP only answers calls through the gateway, over
// HTTP and WebSocket; subscriptions get an error, never a hang.
func TestHTTPOnlyNode(t *testing.T) {
	node := fakenode.Start(t)
	gw := testgw.Start(t, chainBlock("dev", testChainOpts, node.HTTPURL()), "\telara_rpc")
	if r := testgw.PostCall(t, gw.HTTP("/dev"), "system_chain", nil); string(r.Result) != `"Fake Dev"` {
		t.Fatalf("HTTP client: %s", r.Raw)
	}
	c := testgw.Dial(t, gw.WS("/dev"))
	if r := c.Call("chain_getBlockHash", []int{0}); r.Error != nil || len(r.Result) < 60 {
		t.Fatalf("WebSocket client: %s", r.Raw)
	}
	if r := c.Call("chain_subscribeNewHeads", nil); r.Error == nil {
		t.Fatalf("subscription through an HTTP-only node: %s", r.Raw)
	}
	if node.Calls("system_chain") == 0 || node.Calls("chain_getBlockHash") == 0 {
		t.Fatal("calls did not reach the node")
	}
	if n := node.Connections(); n != 0 {
		t.Fatalf("the gateway opened %d WebSocket connections to an http:// node", n)
	}
}

// Like TestHTTPIDsComeBackAsSent, over WebSocket, on the raw frames.
func TestWebSocketIDsComeBackAsSent(t *testing.T) {
	gw, _ := start(t, "")
	conn := dialRaw(t, gw.WS("/dev"))
	for _, id := range []string{`0`, `1`, `-7`, `12345678901234567890123`, `1.5`, `1e3`, `"abc"`, `""`, `"a\"b\u00e9"`, `null`} {
		t.Run(id, func(t *testing.T) {
			if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":`+id+`,"method":"system_chain","params":[]}`)); err != nil {
				t.Fatal(err)
			}
			got := readFrame(t, conn, 10*time.Second)
			want := `{"jsonrpc":"2.0","id":` + id + `,"result":"Fake Dev"}`
			if string(got) != want {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
}

// An unsubscribe names the subscription by its value, however the client
// writes the JSON string.
func TestUnsubscribeMatchesTheDecodedID(t *testing.T) {
	gw, node := start(t, "")
	const method = "state_subscribeRuntimeVersion"
	// escapeFirst writes the id's first character as a \u escape.
	escapeFirst := func(id string) string {
		return fmt.Sprintf(`"\u%04x%s`, id[1], id[2:])
	}
	cases := []struct {
		name  string
		write func(id string) string // the params, from the id as JSON
		want  string
	}{
		{"as given", func(id string) string { return "[" + id + "]" }, "true"},
		{"with a JSON escape", func(id string) string { return "[" + escapeFirst(id) + "]" }, "true"},
		{"with every letter escaped", func(id string) string {
			var b strings.Builder
			b.WriteByte('"')
			for _, r := range id[1 : len(id)-1] {
				fmt.Fprintf(&b, `\u%04X`, r)
			}
			b.WriteByte('"')
			return "[" + b.String() + "]"
		}, "true"},
		{"with whitespace around it", func(id string) string { return "[ \n\t" + id + " \r\n]" }, "true"},
		{"with a space inside the string", func(id string) string { return `[" ` + id[1:] + "]" }, "false"},
		{"another id", func(id string) string { return "[" + id[:len(id)-1] + `x"]` }, "false"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			waitFor(t, "no upstream subscription", func() bool { return node.ActiveSubscriptions(method) == 0 })
			c := testgw.Dial(t, gw.WS("/dev")) // closed with the subtest
			sub := c.Subscribe(method, nil)
			waitFor(t, "the upstream subscription", func() bool { return node.ActiveSubscriptions(method) == 1 })
			c.SendRaw([]byte(`{"jsonrpc":"2.0","id":"u","method":"state_unsubscribeRuntimeVersion","params":` + tc.write(string(sub)) + `}`))
			if r := c.Wait(`"u"`, 10*time.Second); string(r.Result) != tc.want {
				t.Fatalf("unsubscribe %s: %s, want %s", tc.write(string(sub)), r.Raw, tc.want)
			}
			if tc.want == "false" {
				if r := c.Call("state_unsubscribeRuntimeVersion", []json.RawMessage{sub}); string(r.Result) != "true" {
					t.Fatalf("the subscription did not survive: %s", r.Raw)
				}
			}
			waitFor(t, "the upstream subscription released", func() bool { return node.ActiveSubscriptions(method) == 0 })
		})
	}
}
