package handler_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// chainBlock is the elara global option for one chain on the given nodes;
// opts are extra chain options, one per line.
func chainBlock(name string, opts string, urls ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\t\tchain %s {\n", name)
	for _, u := range urls {
		fmt.Fprintf(&b, "\t\t\tnode %s {\n\t\t\t\tpool 2\n\t\t\t}\n", u)
	}
	for _, o := range strings.Split(opts, "\n") {
		if o = strings.TrimSpace(o); o != "" {
			fmt.Fprintf(&b, "\t\t\t%s\n", o)
		}
	}
	b.WriteString("\t\t}\n")
	// These tests assert what reaches the node (calls, subscriptions,
	// failures), which the default response cache would answer itself;
	// the cache has its own tests in app/.
	b.WriteString("\t\tcache off\n")
	return b.String()
}

// testChainOpts keep tests quick: short timeouts, frequent health checks,
// and shared subscriptions released as soon as their last client leaves.
const testChainOpts = `request_timeout 2s
health_interval 200ms
subscription_grace 0s`

// start runs a gateway with one chain "dev" on a fresh fake node.
func start(t *testing.T, site string) (*testgw.Gateway, *fakenode.Node) {
	t.Helper()
	node := fakenode.Start(t)
	if site == "" {
		site = "\telara_rpc"
	}
	gw := testgw.Start(t, chainBlock("dev", testChainOpts, node.URL()), site)
	return gw, node
}

func TestHTTPIDsComeBackAsSent(t *testing.T) {
	gw, _ := start(t, "")
	for _, id := range []string{`0`, `1`, `-7`, `12345678901234567890123`, `1.5`, `1e3`, `"abc"`, `""`, `"a\"b\u00e9"`, `null`} {
		t.Run(id, func(t *testing.T) {
			status, body := testgw.Post(t, gw.HTTP("/dev"), []byte(`{"jsonrpc":"2.0","id":`+id+`,"method":"system_chain","params":[]}`))
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			want := `{"jsonrpc":"2.0","id":` + id + `,"result":"Fake Dev"}`
			if string(body) != want {
				t.Fatalf("got  %s\nwant %s", body, want)
			}
		})
	}
}

func TestHTTPBadInput(t *testing.T) {
	gw, node := start(t, "")
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	huge := `{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic","params":["0x` + strings.Repeat("00", 5<<20) + `"]}`
	var batch101 []string
	for i := range 101 {
		batch101 = append(batch101, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"system_name"}`, i))
	}
	cases := []struct {
		name       string
		path, body string
		status     int
		code       int
	}{
		{"malformed json", "/dev", `{"jsonrpc":"2.0","id":1,"method":`, 200, -32700},
		{"not an object", "/dev", `"hello"`, 200, -32600},
		{"method is a number", "/dev", `{"jsonrpc":"2.0","id":1,"method":5}`, 200, -32600},
		{"params is a string", "/dev", `{"jsonrpc":"2.0","id":1,"method":"system_name","params":"x"}`, 200, -32600},
		{"wrong version", "/dev", `{"jsonrpc":"1.0","id":1,"method":"system_name"}`, 200, -32600},
		{"id is an object", "/dev", `{"jsonrpc":"2.0","id":{},"method":"system_name"}`, 200, -32600},
		{"empty batch", "/dev", `[]`, 200, -32600},
		{"batch over the limit", "/dev", "[" + strings.Join(batch101, ",") + "]", 200, -32600},
		{"deeply nested params", "/dev", `{"jsonrpc":"2.0","id":1,"method":"system_name","params":` + deep + `}`, 200, -32600},
		{"10 MB body", "/dev", huge, 413, -32600},
		{"unknown chain", "/nochain", `{"jsonrpc":"2.0","id":1,"method":"system_name"}`, 404, -32600},
		{"bad project id", "/dev/xyz", `{"jsonrpc":"2.0","id":1,"method":"system_name"}`, 404, -32600},
		{"subscription over http", "/dev", `{"jsonrpc":"2.0","id":1,"method":"state_subscribeStorage"}`, 200, -32090},
		{"unknown method", "/dev", `{"jsonrpc":"2.0","id":1,"method":"no_suchMethod"}`, 200, -32601},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node.ResetCounters()
			status, body := testgw.Post(t, gw.HTTP(tc.path), []byte(tc.body))
			if status != tc.status {
				t.Fatalf("status %d, want %d: %.200s", status, tc.status, body)
			}
			var r testgw.Response
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatalf("body is not one JSON-RPC object: %.200s", body)
			}
			if r.ErrCode() != tc.code {
				t.Fatalf("code %d, want %d: %.300s", r.ErrCode(), tc.code, body)
			}
			// Only methods the gateway's own monitor never calls count.
			forwarded := node.Calls("system_name") + node.Calls("author_submitExtrinsic") + node.Calls("state_subscribeStorage")
			if tc.code != -32601 && forwarded != 0 {
				t.Fatalf("bad input reached the node (%d calls)", forwarded)
			}
			// The gateway keeps serving.
			if r := testgw.PostCall(t, gw.HTTP("/dev"), "system_chain", nil); string(r.Result) != `"Fake Dev"` {
				t.Fatalf("gateway stopped serving after bad input: %s", r.Raw)
			}
		})
	}
}

func TestHTTPMethodsAndPaths(t *testing.T) {
	gw, _ := start(t, "")
	resp, err := http.Get(gw.HTTP("/dev"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET: status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, path := range []string{"/dev", "/dev/", "/dev?x=1", "/dev/0123456789abcdef0123456789ABCDEF"} {
		if r := testgw.PostCall(t, gw.HTTP(path), "system_chain", nil); string(r.Result) != `"Fake Dev"` {
			t.Fatalf("%s: %s", path, r.Raw)
		}
	}
}

func TestHTTPBatch(t *testing.T) {
	gw, _ := start(t, "")
	body := `[
		{"jsonrpc":"2.0","id":"a","method":"system_chain"},
		{"jsonrpc":"2.0","method":"system_chain"},
		{"jsonrpc":"2.0","id":2,"method":"author_rotateKeys"},
		{"jsonrpc":"2.0","id":3,"method":7},
		5,
		{"jsonrpc":"2.0","id":4,"method":"system_name","params":[]}
	]`
	status, out := testgw.Post(t, gw.HTTP("/dev"), []byte(body))
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	var replies []testgw.Response
	if err := json.Unmarshal(out, &replies); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	want := []struct {
		id   string
		code int
	}{{`"a"`, 0}, {`2`, -32601}, {`3`, -32600}, {`null`, -32600}, {`4`, 0}}
	if len(replies) != len(want) {
		t.Fatalf("got %d replies, want %d (notification gets none): %s", len(replies), len(want), out)
	}
	for i, w := range want {
		if string(replies[i].ID) != w.id || replies[i].ErrCode() != w.code {
			t.Errorf("reply %d: id %s code %d, want id %s code %d", i, replies[i].ID, replies[i].ErrCode(), w.id, w.code)
		}
	}
	// A batch of notifications only gets no body.
	status, out = testgw.Post(t, gw.HTTP("/dev"), []byte(`[{"jsonrpc":"2.0","method":"system_chain"}]`))
	if status != http.StatusNoContent || len(out) != 0 {
		t.Fatalf("notification-only batch: status %d body %q", status, out)
	}
}

func TestDeniedMethodsNeverForwarded(t *testing.T) {
	gw, node := start(t, "")
	denied := []string{"author_insertKey", "author_rotateKeys", "author_hasKey", "author_hasSessionKeys",
		"author_removeExtrinsic", "system_addReservedPeer", "system_nodeRoles", "system_localPeerId",
		"offchain_localStorageSet", "offchain_localStorageGet", "system_reservedPeers", "system_unstable_networkState", "dev_newBlock",
		"babe_epochAuthorship", "statement_dump", "statement_remove"}
	ws := testgw.Dial(t, gw.WS("/dev"))
	for _, m := range denied {
		escaped := strings.Replace(m, "_", `\u005f`, 1)
		for name, body := range map[string]string{
			"http":          `{"jsonrpc":"2.0","id":1,"method":"` + m + `","params":[]}`,
			"json escapes":  `{"jsonrpc":"2.0","id":1,"method":"` + escaped + `","params":[]}`,
			"duplicate key": `{"jsonrpc":"2.0","id":1,"method":"system_chain","method":"` + m + `","params":[]}`,
		} {
			_, out := testgw.Post(t, gw.HTTP("/dev"), []byte(body))
			if !bytes.Contains(out, []byte(`"code":-32601`)) {
				t.Errorf("%s via %s: %s", m, name, out)
			}
		}
		_, out := testgw.Post(t, gw.HTTP("/dev"), []byte(`[{"jsonrpc":"2.0","id":1,"method":"system_chain"},{"jsonrpc":"2.0","id":2,"method":"`+m+`"}]`))
		if !bytes.Contains(out, []byte(`"id":2,"error":{"code":-32601`)) {
			t.Errorf("%s in batch: %s", m, out)
		}
		if r := ws.Call(m, []any{}); r.ErrCode() != -32601 || r.Error.Message != "Method not found" {
			t.Errorf("%s via websocket: %s", m, r.Raw)
		}
		if n := node.Calls(m); n != 0 {
			t.Errorf("%s reached the node %d times", m, n)
		}
	}
	// Denied methods answer exactly like an unknown one.
	_, unknown := testgw.Post(t, gw.HTTP("/dev"), []byte(`{"jsonrpc":"2.0","id":1,"method":"zzz_unknown"}`))
	_, denial := testgw.Post(t, gw.HTTP("/dev"), []byte(`{"jsonrpc":"2.0","id":1,"method":"author_rotateKeys"}`))
	if !bytes.Equal(unknown, denial) {
		t.Errorf("denial %s differs from unknown method %s", denial, unknown)
	}
	// rpc_methods offers none of them.
	r := testgw.PostCall(t, gw.HTTP("/dev"), "rpc_methods", nil)
	var list struct{ Methods []string }
	if err := json.Unmarshal(r.Result, &list); err != nil || len(list.Methods) < 10 {
		t.Fatalf("rpc_methods: %s", r.Raw)
	}
	for _, m := range list.Methods {
		for _, d := range denied {
			if m == d || strings.HasPrefix(m, "dev_") {
				t.Errorf("rpc_methods offers denied %s", m)
			}
		}
	}
	if !containsStr(list.Methods, "chain_getHeader") {
		t.Errorf("rpc_methods lost safe methods: %v", list.Methods)
	}
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestAllowAndDenyLists(t *testing.T) {
	node := fakenode.Start(t)
	gw := testgw.Start(t, chainBlock("dev", testChainOpts, node.URL()), `
	@operator path /operator/*
	handle @operator {
		uri strip_prefix /operator
		elara_rpc {
			allow author_rotateKeys author_hasSessionKeys system_*
		}
	}
	@wildcard path /wild/*
	handle @wildcard {
		uri strip_prefix /wild
		elara_rpc {
			allow *
		}
	}
	handle {
		elara_rpc {
			deny state_* chain_getBlock
		}
	}`)
	cases := []struct {
		path, method string
		allowed      bool
	}{
		{"/dev", "system_chain", true},
		{"/dev", "state_getMetadata", false},
		{"/dev", "chain_getBlock", false},
		{"/dev", "chain_getHeader", true},
		{"/dev", "author_rotateKeys", false},
		{"/operator/dev", "author_rotateKeys", true},
		{"/operator/dev", "author_hasSessionKeys", true},
		{"/operator/dev", "author_insertKey", false},
		{"/operator/dev", "system_chain", true},
		{"/operator/dev", "chain_getHeader", false},
		{"/wild/dev", "chain_getHeader", true},
		{"/wild/dev", "author_rotateKeys", false},
		{"/wild/dev", "dev_newBlock", false},
	}
	for _, tc := range cases {
		t.Run(tc.path+" "+tc.method, func(t *testing.T) {
			before := node.Calls(tc.method)
			params := "[]"
			if tc.method == "author_hasSessionKeys" {
				params = `["0x00"]`
			}
			_, out := testgw.Post(t, gw.HTTP(tc.path), []byte(`{"jsonrpc":"2.0","id":1,"method":"`+tc.method+`","params":`+params+`}`))
			forwarded := node.Calls(tc.method) > before
			if forwarded != tc.allowed {
				t.Fatalf("forwarded=%v, want %v: %s", forwarded, tc.allowed, out)
			}
			if !tc.allowed && !bytes.Contains(out, []byte(`-32601`)) {
				t.Fatalf("denied without -32601: %s", out)
			}
		})
	}
}

func TestWebSocketCallsAndSharedPool(t *testing.T) {
	gw, node := start(t, "")
	clients := make([]*testgw.WSClient, 50)
	for i := range clients {
		clients[i] = testgw.Dial(t, gw.WS("/dev"))
	}
	done := make(chan error, len(clients))
	for i, c := range clients {
		go func() {
			// Every client uses the same ids: the gateway must keep them apart.
			for j := range 20 {
				id := fmt.Sprintf(`"c%d-%d"`, i%2, j)
				c.SendRaw([]byte(`{"jsonrpc":"2.0","id":` + id + `,"method":"chain_getBlockHash","params":[0]}`))
			}
			for j := range 20 {
				id := fmt.Sprintf(`"c%d-%d"`, i%2, j)
				r := c.Wait(id, 10*time.Second)
				if r.Error != nil || len(r.Result) < 60 {
					done <- fmt.Errorf("client %d id %s: %s", i, id, r.Raw)
					return
				}
			}
			done <- nil
		}()
	}
	for range clients {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := node.Connections(); got != 2 {
		t.Fatalf("node has %d connections for 50 clients, want the pool size 2", got)
	}
}

func TestWebSocketSubscriptionLifecycle(t *testing.T) {
	gw, node := start(t, "")
	// The gateway's health monitor holds head subscriptions of its own.
	waitFor(t, "health monitor", func() bool { return node.ActiveSubscriptions("chain_subscribeFinalizedHeads") == 1 })
	baseHeads, baseAll := node.ActiveSubscriptions("chain_subscribeNewHeads"), node.TotalActiveSubscriptions()
	c := testgw.Dial(t, gw.WS("/dev"))
	sub := c.Subscribe("chain_subscribeNewHeads", nil)
	first := c.Next(5 * time.Second)
	if !bytes.Equal(first.Params.Subscription, sub) || first.Method != "chain_newHead" {
		t.Fatalf("first notification %s for subscription %s", first.Raw, sub)
	}
	h := node.Chain().NewBlock()
	n := c.Next(5 * time.Second)
	if !bytes.Contains(n.Params.Result, []byte(fmt.Sprintf(`"number":"0x%x"`, h.Number))) {
		t.Fatalf("new head notification %s, want number %d", n.Raw, h.Number)
	}
	if node.ActiveSubscriptions("chain_subscribeNewHeads") != baseHeads+1 {
		t.Fatalf("upstream subscriptions: %d", node.ActiveSubscriptions("chain_subscribeNewHeads"))
	}
	if r := c.Call("chain_unsubscribeNewHeads", []json.RawMessage{sub}); string(r.Result) != "true" {
		t.Fatalf("unsubscribe: %s", r.Raw)
	}
	if r := c.Call("chain_unsubscribeNewHeads", []json.RawMessage{sub}); string(r.Result) != "false" {
		t.Fatalf("second unsubscribe: %s", r.Raw)
	}
	if r := c.Call("chain_unsubscribeNewHeads", []string{"nope"}); string(r.Result) != "false" {
		t.Fatalf("unknown id: %s", r.Raw)
	}
	waitFor(t, "upstream unsubscribe", func() bool { return node.ActiveSubscriptions("chain_subscribeNewHeads") == baseHeads })
	node.Chain().NewBlock()
	c.NoNotification(200 * time.Millisecond)

	// A client that leaves releases all its upstream subscriptions.
	c2 := testgw.Dial(t, gw.WS("/dev"))
	c2.Subscribe("chain_subscribeNewHeads", nil)
	c2.Subscribe("chain_subscribeFinalizedHeads", nil)
	c2.Subscribe("state_subscribeRuntimeVersion", nil)
	waitFor(t, "three subscriptions", func() bool { return node.TotalActiveSubscriptions() == baseAll+3 })
	c2.Conn.Close()
	waitFor(t, "subscriptions released on disconnect", func() bool { return node.TotalActiveSubscriptions() == baseAll })
}

func TestWebSocketEarlyNotificationsAreDeliveredAfterReply(t *testing.T) {
	gw, node := start(t, "")
	node.SetEarlyNotifications(true)
	c := testgw.Dial(t, gw.WS("/dev"))
	for range 20 {
		c.SendRaw([]byte(`{"jsonrpc":"2.0","id":"s","method":"chain_subscribeNewHeads","params":[]}`))
		// The reply must come first, then the notification: read raw frames.
		r := c.Wait(`"s"`, 5*time.Second)
		n := c.Next(5 * time.Second)
		if !bytes.Equal(n.Params.Subscription, r.Result) {
			t.Fatalf("notification %s does not belong to %s", n.Raw, r.Result)
		}
		c.Call("chain_unsubscribeNewHeads", []json.RawMessage{r.Result})
	}
}

func TestWebSocketEarlyNotificationOrderOnTheWire(t *testing.T) {
	gw, node := start(t, "")
	node.SetEarlyNotifications(true)
	conn, _, err := websocket.DefaultDialer.Dial(gw.WS("/dev"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"chain_subscribeNewHeads","params":[]}`))
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, first, err := conn.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(first, []byte(`"id":1,"result"`)) {
		t.Fatalf("first frame is not the subscribe reply: %s", first)
	}
	_, second, err := conn.ReadMessage()
	if err != nil || !bytes.Contains(second, []byte(`"method":"chain_newHead"`)) {
		t.Fatalf("second frame: %s %v", second, err)
	}
}

func TestWebSocketLimitsAndBadFrames(t *testing.T) {
	gw, _ := start(t, `
	elara_rpc {
		max_subscriptions 2
		max_request_size 64KiB
	}`)
	c := testgw.Dial(t, gw.WS("/dev"))
	c.Subscribe("chain_subscribeNewHeads", nil)
	c.Subscribe("chain_subscribeNewHeads", nil)
	if r := c.Call("chain_subscribeNewHeads", nil); r.ErrCode() != -32005 {
		t.Fatalf("third subscription: %s", r.Raw)
	}
	if err := c.Conn.WriteMessage(websocket.BinaryMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"system_chain"}`)); err != nil {
		t.Fatal(err)
	}
	if r := c.Wait("null", 5*time.Second); r.ErrCode() != -32700 {
		t.Fatalf("binary frame: %s", r.Raw)
	}
	c.SendRaw([]byte(`{"jsonrpc":"2.0","id":2,"method":`))
	c.SendRaw([]byte(`[]`))
	if r := c.Call("system_chain", nil); string(r.Result) != `"Fake Dev"` {
		t.Fatalf("connection unusable after bad frames: %s", r.Raw)
	}
	// A message over the limit closes the connection with 1009. The
	// gateway may close it before the client has written all of it, so
	// the write itself may fail.
	_ = c.Conn.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"system_chain","params":["`+strings.Repeat("a", 70<<10)+`"]}`))
	select {
	case err := <-c.Closed:
		var ce *websocket.CloseError
		if !errorAs(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
			t.Fatalf("closed with %v, want code 1009", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("oversized message did not close the connection")
	}
	// Others keep being served.
	if r := testgw.Dial(t, gw.WS("/dev")).Call("system_chain", nil); r.Error != nil {
		t.Fatalf("%s", r.Raw)
	}
}

func TestWebSocketBatch(t *testing.T) {
	gw, _ := start(t, "")
	c := testgw.Dial(t, gw.WS("/dev"))
	c.SendRaw([]byte(`[{"jsonrpc":"2.0","id":1,"method":"system_chain"},{"jsonrpc":"2.0","id":2,"method":"dev_newBlock"},{"jsonrpc":"2.0","id":3,"method":"chain_subscribeNewHeads"}]`))
	raw := c.RawBatch(5 * time.Second)
	var replies []testgw.Response
	if err := json.Unmarshal(raw, &replies); err != nil || len(replies) != 3 {
		t.Fatalf("batch reply %s", raw)
	}
	if string(replies[0].Result) != `"Fake Dev"` || replies[1].ErrCode() != -32601 || len(replies[2].Result) == 0 {
		t.Fatalf("batch reply %s", raw)
	}
	n := c.Next(5 * time.Second)
	if !bytes.Equal(n.Params.Subscription, replies[2].Result) {
		t.Fatalf("notification %s for %s", n.Raw, replies[2].Result)
	}
}

// Caddy wraps the response writer in handlers that run first; the
// upgrade must still work behind them.
func TestWebSocketBehindOtherHandlers(t *testing.T) {
	node := fakenode.Start(t)
	hash, err := bcryptHash("secret")
	if err != nil {
		t.Fatal(err)
	}
	gw := testgw.Start(t, chainBlock("dev", testChainOpts, node.URL()), `
	log
	encode gzip zstd
	header X-Gateway elara
	basic_auth {
		user `+hash+`
	}
	elara_rpc`)
	hdr := http.Header{}
	hdr.Set("Authorization", "Basic dXNlcjpzZWNyZXQ=") // user:secret
	hdr.Set("Accept-Encoding", "gzip")
	conn, resp, err := websocket.DefaultDialer.Dial(gw.WS("/dev"), hdr)
	if err != nil {
		t.Fatalf("dial through encode/header/basic_auth/log: %v (resp %v)", err, resp)
	}
	defer conn.Close()
	conn.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"system_chain"}`))
	_, msg, err := conn.ReadMessage()
	if err != nil || !bytes.Contains(msg, []byte(`"Fake Dev"`)) {
		t.Fatalf("reply %s %v", msg, err)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(gw.WS("/dev"), nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("no credentials: want 401, got %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitForT(t, what, cond)
}
