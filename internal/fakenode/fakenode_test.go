package fakenode

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// --- test clients ---

// rpcMsg is any message a node sends: a reply or a notification.
type rpcMsg struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
	Method string `json:"method"`
	Params struct {
		Subscription string          `json:"subscription"`
		Result       json.RawMessage `json:"result"`
	} `json:"params"`
	raw string
}

func (m rpcMsg) isNotification() bool { return m.Method != "" }

type wsClient struct {
	t      testing.TB
	conn   *websocket.Conn
	in     chan rpcMsg
	closed chan struct{} // closed when the read loop ends
	mu     sync.Mutex
	nextID int
	held   []rpcMsg // messages read by call() while looking for its reply
}

func dial(t testing.TB, n *Node) *wsClient {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(n.URL(), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c := &wsClient{t: t, conn: conn, in: make(chan rpcMsg, 1024), closed: make(chan struct{})}
	go func() {
		defer close(c.closed)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var m rpcMsg
			if data[0] == '[' { // a batch reply: tests look at raw
				m.raw = string(data)
				c.in <- m
				continue
			}
			if err := json.Unmarshal(data, &m); err != nil {
				panic(fmt.Sprintf("bad message %s: %v", data, err))
			}
			m.raw = string(data)
			c.in <- m
		}
	}()
	t.Cleanup(c.close)
	return c
}

func (c *wsClient) close() {
	_ = c.conn.Close()
	<-c.closed
}

func (c *wsClient) sendRaw(s string) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// send sends a request and returns its id.
func (c *wsClient) send(method string, params ...any) int {
	c.t.Helper()
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	c.mu.Unlock()
	c.sendRaw(requestJSON(id, method, params...))
	return id
}

func requestJSON(id int, method string, params ...any) string {
	if params == nil {
		params = []any{}
	}
	p, _ := json.Marshal(params)
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, id, method, p)
}

// next returns the next message, held ones first.
func (c *wsClient) next(timeout time.Duration) (rpcMsg, bool) {
	if len(c.held) > 0 {
		m := c.held[0]
		c.held = c.held[1:]
		return m, true
	}
	select {
	case m := <-c.in:
		return m, true
	case <-time.After(timeout):
		return rpcMsg{}, false
	}
}

func (c *wsClient) mustNext() rpcMsg {
	c.t.Helper()
	m, ok := c.next(2 * time.Second)
	if !ok {
		c.t.Fatal("timed out waiting for a message")
	}
	return m
}

func (c *wsClient) expectNothing(d time.Duration) {
	c.t.Helper()
	if m, ok := c.next(d); ok {
		c.t.Fatalf("unexpected message %s", m.raw)
	}
}

// call sends a request and waits for its reply, holding any notifications
// that arrive first for later next() calls.
func (c *wsClient) call(method string, params ...any) rpcMsg {
	c.t.Helper()
	id := c.send(method, params...)
	var skipped []rpcMsg
	defer func() { c.held = append(skipped, c.held...) }()
	deadline := time.Now().Add(3 * time.Second)
	for {
		select {
		case m := <-c.in:
			if string(m.ID) == fmt.Sprint(id) {
				return m
			}
			skipped = append(skipped, m)
		case <-time.After(time.Until(deadline)):
			c.t.Fatalf("no reply to %s", method)
		}
	}
}

// subscribe returns the subscription id and the first notification.
func (c *wsClient) subscribe(method string, params ...any) (string, rpcMsg) {
	c.t.Helper()
	r := c.call(method, params...)
	var id string
	if r.Error != nil || json.Unmarshal(r.Result, &id) != nil {
		c.t.Fatalf("%s: %s", method, r.raw)
	}
	return id, c.mustNext()
}

var httpClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func httpPost(t testing.TB, n *Node, body string) (int, string) {
	t.Helper()
	resp, err := httpClient.Post(n.HTTPURL(), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func httpCall(t testing.TB, n *Node, method string, params ...any) rpcMsg {
	t.Helper()
	_, body := httpPost(t, n, requestJSON(1, method, params...))
	var m rpcMsg
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("%s: bad reply %q", method, body)
	}
	m.raw = body
	return m
}

func jsonEqual(t testing.TB, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("bad JSON %s", got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON %s", want)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func headerOf(t testing.TB, raw json.RawMessage) Header {
	t.Helper()
	var h Header
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("not a header: %s", raw)
	}
	return h
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// --- tests ---

func TestHeaderJSON(t *testing.T) {
	c := NewChainWithSeed(7)
	h, _ := c.HeaderByNumber(1)
	g, _ := c.HeaderByNumber(0)
	js, _ := json.Marshal(h)
	want := fmt.Sprintf(`{"parentHash":"%s","number":"0x1","stateRoot":"%s","extrinsicsRoot":"%s","digest":{"logs":[]}}`,
		g.Hash, h.StateRoot, h.ExtrinsicsRoot)
	if string(js) != want {
		t.Fatalf("got %s\nwant %s", js, want)
	}
	hashRE := regexp.MustCompile(`^0x[0-9a-f]{64}$`)
	for _, s := range []string{h.Hash, h.ParentHash, h.StateRoot, h.ExtrinsicsRoot} {
		if !hashRE.MatchString(s) {
			t.Fatalf("bad hash %q", s)
		}
	}
	for range 0x1a - 1 {
		c.NewBlock()
	}
	b := c.Best()
	js, _ = json.Marshal(b)
	if !strings.Contains(string(js), `"number":"0x1a"`) {
		t.Fatalf("number not hex: %s", js)
	}
	var back Header
	if err := json.Unmarshal(js, &back); err != nil || back.Number != 0x1a || back.ParentHash != b.ParentHash {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	// Determinism: same seed, same hashes; different seed, different hashes.
	if c2 := NewChainWithSeed(7); c2.Best().Hash != h.Hash {
		t.Fatal("same seed gave different hashes")
	}
	if NewChain().GenesisHash() == NewChain().GenesisHash() {
		t.Fatal("two chains share a genesis hash")
	}
}

func TestChain(t *testing.T) {
	c := NewChain()
	if c.Best().Number != 1 || c.Finalized().Number != 1 {
		t.Fatalf("start: best %d finalized %d", c.Best().Number, c.Finalized().Number)
	}
	h2 := c.NewBlock()
	if h2.Number != 2 || h2.ParentHash != mustHeader(t, c, 1).Hash || c.Finalized().Number != 1 {
		t.Fatalf("NewBlock: %+v", h2)
	}
	c.NewBlock()
	c.Finalize(10) // capped at best
	if c.Finalized().Number != 3 {
		t.Fatalf("finalized %d", c.Finalized().Number)
	}
	c.Finalize(2) // going back does nothing
	if c.Finalized().Number != 3 {
		t.Fatal("finalized went back")
	}
	if h := c.NewBlockFinalized(); c.Finalized().Hash != h.Hash {
		t.Fatal("NewBlockFinalized did not finalize")
	}
	if got, ok := c.HeaderByHash(strings.ToUpper(h2.Hash[2:])); ok {
		t.Fatalf("hash without 0x found: %+v", got)
	}
	if got, ok := c.HeaderByHash("0x" + strings.ToUpper(h2.Hash[2:])); !ok || got.Number != 2 {
		t.Fatal("HeaderByHash is case sensitive")
	}
	if _, ok := c.HeaderByNumber(99); ok {
		t.Fatal("block 99 exists")
	}
}

func mustHeader(t testing.TB, c *Chain, n uint64) Header {
	t.Helper()
	h, ok := c.HeaderByNumber(n)
	if !ok {
		t.Fatalf("no block %d", n)
	}
	return h
}

// TestCalls runs every case over both HTTP and WebSocket.
func TestCalls(t *testing.T) {
	n := Start(t)
	c := n.Chain()
	c.SetStorage("0xAA", "0x0102")
	g, b1 := mustHeader(t, c, 0), mustHeader(t, c, 1)
	b1JSON, _ := json.Marshal(b1)
	unknown := "0x" + strings.Repeat("ab", 32)

	cases := []struct {
		name    string
		method  string
		params  []any
		want    string // JSON result
		wantErr int
		check   func(t *testing.T, result json.RawMessage)
	}{
		{name: "system_name", method: "system_name", want: `"fake-substrate"`},
		{name: "system_version", method: "system_version", want: `"1.0.0"`},
		{name: "system_chain", method: "system_chain", want: `"Fake Dev"`},
		{name: "system_chainType", method: "system_chainType", want: `"Development"`},
		{name: "system_properties", method: "system_properties", want: `{"ss58Format":42,"tokenDecimals":12,"tokenSymbol":"UNIT"}`},
		{name: "system_health", method: "system_health", want: `{"peers":3,"isSyncing":false,"shouldHavePeers":true}`},
		{name: "system_syncState", method: "system_syncState", want: `{"startingBlock":0,"currentBlock":1,"highestBlock":1}`},
		{name: "system_accountNextIndex", method: "system_accountNextIndex", params: []any{"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"}, want: `0`},
		{name: "system_accountNextIndex without account", method: "system_accountNextIndex", wantErr: CodeInvalidParams},
		{name: "system_peers", method: "system_peers", want: `[]`},
		{name: "chain_getBlockHash genesis", method: "chain_getBlockHash", params: []any{0}, want: `"` + g.Hash + `"`},
		{name: "chain_getBlockHash best", method: "chain_getBlockHash", want: `"` + b1.Hash + `"`},
		{name: "chain_getBlockHash null", method: "chain_getBlockHash", params: []any{nil}, want: `"` + b1.Hash + `"`},
		{name: "chain_getBlockHash hex", method: "chain_getBlockHash", params: []any{"0x1"}, want: `"` + b1.Hash + `"`},
		{name: "chain_getBlockHash list", method: "chain_getBlockHash", params: []any{[]any{0, 1, 99}}, want: `["` + g.Hash + `","` + b1.Hash + `",null]`},
		{name: "chain_getBlockHash unknown", method: "chain_getBlockHash", params: []any{99}, want: `null`},
		{name: "chain_getBlockHash bad", method: "chain_getBlockHash", params: []any{-1}, wantErr: CodeInvalidParams},
		{name: "chain_getHead", method: "chain_getHead", want: `"` + b1.Hash + `"`},
		{name: "chain_getFinalizedHead", method: "chain_getFinalizedHead", want: `"` + b1.Hash + `"`},
		{name: "chain_getFinalisedHead", method: "chain_getFinalisedHead", want: `"` + b1.Hash + `"`},
		{name: "chain_getHeader best", method: "chain_getHeader", want: string(b1JSON)},
		{name: "chain_getHeader by hash", method: "chain_getHeader", params: []any{g.Hash}, check: func(t *testing.T, r json.RawMessage) {
			if h := headerOf(t, r); h.Number != 0 || h.ParentHash != zeroHash {
				t.Fatalf("genesis header %s", r)
			}
		}},
		{name: "chain_getHeader unknown", method: "chain_getHeader", params: []any{unknown}, want: `null`},
		{name: "chain_getHeader malformed", method: "chain_getHeader", params: []any{"0x12"}, wantErr: CodeInvalidParams},
		{name: "chain_getBlock", method: "chain_getBlock", params: []any{b1.Hash}, want: `{"block":{"header":` + string(b1JSON) + `,"extrinsics":[]},"justifications":null}`},
		{name: "state_getRuntimeVersion", method: "state_getRuntimeVersion",
			want: `{"specName":"fake","implName":"fake","authoringVersion":1,"specVersion":100,"implVersion":0,"apis":[],"transactionVersion":1,"stateVersion":1}`},
		{name: "chain_getRuntimeVersion", method: "chain_getRuntimeVersion", params: []any{g.Hash}, check: func(t *testing.T, r json.RawMessage) {
			if !strings.Contains(string(r), `"specVersion":100`) {
				t.Fatal(string(r))
			}
		}},
		{name: "state_getMetadata", method: "state_getMetadata", check: func(t *testing.T, r json.RawMessage) {
			var s string
			_ = json.Unmarshal(r, &s)
			if len(s) != 2+2*MetadataSize || !strings.HasPrefix(s, "0x6d6574610e") || s != Metadata(100) {
				t.Fatalf("metadata: %d chars, prefix %.12s", len(s), s)
			}
		}},
		{name: "state_getStorage", method: "state_getStorage", params: []any{"0xaa"}, want: `"0x0102"`},
		{name: "state_getStorageAt", method: "state_getStorageAt", params: []any{"0xaa", b1.Hash}, want: `"0x0102"`},
		{name: "state_getStorage before it was set", method: "state_getStorage", params: []any{"0xaa", g.Hash}, want: `null`},
		{name: "state_getStorage missing", method: "state_getStorage", params: []any{"0xbb"}, want: `null`},
		{name: "state_getStorage unknown block", method: "state_getStorage", params: []any{"0xaa", unknown}, wantErr: 4003},
		{name: "state_getStorageSize", method: "state_getStorageSize", params: []any{"0xaa"}, want: `2`},
		{name: "state_queryStorageAt", method: "state_queryStorageAt", params: []any{[]string{"0xaa", "0xbb"}},
			want: `[{"block":"` + b1.Hash + `","changes":[["0xaa","0x0102"],["0xbb",null]]}]`},
		{name: "state_getKeysPaged", method: "state_getKeysPaged", params: []any{"0x", 10}, want: `["0xaa"]`},
		{name: "state_getKeysPaged too many", method: "state_getKeysPaged", params: []any{"0x", 1001}, wantErr: 4002},
		{name: "state_call", method: "state_call", params: []any{"Core_version", "0x"}, want: `"0x"`},
		{name: "childstate_getStorage", method: "childstate_getStorage", params: []any{"0x01", "0x02"}, want: `null`},
		{name: "author_rotateKeys", method: "author_rotateKeys", check: func(t *testing.T, r json.RawMessage) {
			if !regexp.MustCompile(`^"0x[0-9a-f]{64}"$`).Match(r) {
				t.Fatal(string(r))
			}
		}},
		{name: "author_insertKey", method: "author_insertKey", params: []any{"aura", "//Alice", "0x01"}, want: `null`},
		{name: "author_hasKey", method: "author_hasKey", params: []any{"0x01", "aura"}, want: `false`},
		{name: "author_hasSessionKeys", method: "author_hasSessionKeys", params: []any{"0x01"}, want: `false`},
		{name: "system_addReservedPeer", method: "system_addReservedPeer", params: []any{"/ip4/1.2.3.4/tcp/1"}, want: `null`},
		{name: "offchain_localStorageGet", method: "offchain_localStorageGet", params: []any{"PERSISTENT", "0x01"}, want: `null`},
		{name: "unknown method", method: "nope_nope", wantErr: CodeMethodNotFound},
		{name: "no params", method: "chain_getHeader", params: nil, want: string(b1JSON)},
	}
	for _, transport := range []string{"http", "ws"} {
		ws := dial(t, n)
		t.Run(transport, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					var m rpcMsg
					if transport == "http" {
						m = httpCall(t, n, tc.method, tc.params...)
					} else {
						m = ws.call(tc.method, tc.params...)
					}
					if tc.wantErr != 0 {
						if m.Error == nil || m.Error.Code != tc.wantErr {
							t.Fatalf("want error %d, got %s", tc.wantErr, m.raw)
						}
						return
					}
					if m.Error != nil {
						t.Fatalf("error: %s", m.raw)
					}
					if tc.check != nil {
						tc.check(t, m.Result)
					} else {
						jsonEqual(t, m.Result, tc.want)
					}
				})
			}
		})
	}
}

func TestProtocolErrors(t *testing.T) {
	n := Start(t)
	ws := dial(t, n)
	cases := []struct {
		name, body, want string // want: the exact reply ("" = no reply)
	}{
		{"malformed", `{"jsonrpc":"2.0",`, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`},
		{"garbage", `hello`, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`},
		{"empty batch", `[]`, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid request"}}`},
		{"no jsonrpc", `{"id":5,"method":"system_name"}`, `{"jsonrpc":"2.0","id":5,"error":{"code":-32600,"message":"Invalid request"}}`},
		{"unknown method", `{"jsonrpc":"2.0","id":"x","method":"foo"}`, `{"jsonrpc":"2.0","id":"x","error":{"code":-32601,"message":"Method not found"}}`},
		{"string id", `{"jsonrpc":"2.0","id":"abc","method":"system_version"}`, `{"jsonrpc":"2.0","id":"abc","result":"1.0.0"}`},
		{"batch with invalid entry", `[{"jsonrpc":"2.0","id":1,"method":"system_version"},7]`,
			`[{"jsonrpc":"2.0","id":1,"result":"1.0.0"},{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid request"}}]`},
		{"null id", `{"jsonrpc":"2.0","id":null,"method":"system_version"}`, `{"jsonrpc":"2.0","id":null,"result":"1.0.0"}`},
		{"notification", `{"jsonrpc":"2.0","method":"system_version"}`, ``},
	}
	for _, tc := range cases {
		t.Run(tc.name+"/http", func(t *testing.T) {
			status, body := httpPost(t, n, tc.body)
			if status != http.StatusOK || body != tc.want {
				t.Fatalf("got %d %s\nwant %s", status, body, tc.want)
			}
		})
		t.Run(tc.name+"/ws", func(t *testing.T) {
			ws.sendRaw(tc.body)
			if tc.want == "" {
				ws.expectNothing(50 * time.Millisecond)
				return
			}
			if m := ws.mustNext(); m.raw != tc.want {
				t.Fatalf("got  %s\nwant %s", m.raw, tc.want)
			}
		})
	}
	t.Run("subscription over HTTP", func(t *testing.T) {
		for _, method := range []string{"chain_subscribeNewHeads", "chain_unsubscribeNewHeads"} {
			if m := httpCall(t, n, method, "x"); m.Error == nil || m.Error.Code != CodeInternalError || m.Error.Message != "Internal error" {
				t.Fatalf("%s over HTTP: %s", method, m.raw)
			}
		}
	})
	t.Run("content type", func(t *testing.T) {
		resp, err := httpClient.Post(n.HTTPURL(), "text/plain", strings.NewReader(requestJSON(1, "system_name")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("GET", func(t *testing.T) {
		for path, want := range map[string]int{"/": 405, "/health": 200, "/health/readiness": 200} {
			resp, err := httpClient.Get(n.HTTPURL() + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Fatalf("GET %s: %d", path, resp.StatusCode)
			}
		}
	})
}

func TestBatch(t *testing.T) {
	n := Start(t)
	body := `[{"jsonrpc":"2.0","id":1,"method":"system_name"},{"jsonrpc":"2.0","id":2,"method":"system_chain"},{"jsonrpc":"2.0","method":"system_chain"},{"jsonrpc":"2.0","id":3,"method":"nope"}]`
	want := `[{"jsonrpc":"2.0","id":1,"result":"fake-substrate"},{"jsonrpc":"2.0","id":2,"result":"Fake Dev"},{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"Method not found"}}]`
	if _, got := httpPost(t, n, body); got != want {
		t.Fatalf("http batch:\n%s", got)
	}
	ws := dial(t, n)
	ws.sendRaw(body)
	if m := ws.mustNext(); m.raw != want {
		t.Fatalf("ws batch:\n%s", m.raw)
	}
	if n.Calls("system_chain") != 4 || n.Calls("nope") != 2 {
		t.Fatalf("batch entries not counted individually: %d %d", n.Calls("system_chain"), n.Calls("nope"))
	}

	// A subscription in a batch: the batch reply comes before its first notification.
	ws.sendRaw(`[{"jsonrpc":"2.0","id":9,"method":"chain_subscribeNewHeads"},{"jsonrpc":"2.0","id":10,"method":"system_name"}]`)
	if m := ws.mustNext(); !strings.HasPrefix(m.raw, `[{"jsonrpc":"2.0","id":9,"result":"`) {
		t.Fatalf("batch subscribe reply: %s", m.raw)
	}
	if m := ws.mustNext(); m.Method != "chain_newHead" {
		t.Fatalf("want notification, got %s", m.raw)
	}
}

var subIDRE = regexp.MustCompile(`^[a-zA-Z0-9]{16}$`)

func TestHeadSubscriptions(t *testing.T) {
	cases := []struct {
		subscribe, notif, unsubscribe string
		finalized                     bool
	}{
		{"chain_subscribeNewHeads", "chain_newHead", "chain_unsubscribeNewHeads", false},
		{"chain_subscribeNewHead", "chain_newHead", "chain_unsubscribeNewHead", false},
		{"subscribe_newHead", "chain_newHead", "unsubscribe_newHead", false},
		{"chain_subscribeAllHeads", "chain_allHead", "chain_unsubscribeAllHeads", false},
		{"chain_subscribeFinalizedHeads", "chain_finalizedHead", "chain_unsubscribeFinalizedHeads", true},
		{"chain_subscribeFinalisedHeads", "chain_finalizedHead", "chain_unsubscribeFinalisedHeads", true},
	}
	for _, tc := range cases {
		t.Run(tc.subscribe, func(t *testing.T) {
			n := Start(t)
			c := n.Chain()
			ws := dial(t, n)
			id, first := ws.subscribe(tc.subscribe)
			if !subIDRE.MatchString(id) {
				t.Fatalf("subscription id %q is not 16 alphanumerics", id)
			}
			want := fmt.Sprintf(`{"jsonrpc":"2.0","method":"%s","params":{"subscription":"%s","result":`, tc.notif, id)
			if !strings.HasPrefix(first.raw, want) {
				t.Fatalf("notification shape: %s", first.raw)
			}
			if h := headerOf(t, first.Params.Result); h.Number != 1 {
				t.Fatalf("first notification is block %d", h.Number)
			}
			if n.ActiveSubscriptions(tc.subscribe) != 1 {
				t.Fatal("subscription not counted")
			}

			b2 := c.NewBlock()
			if tc.finalized {
				ws.expectNothing(30 * time.Millisecond) // not final yet
				c.NewBlock()
				c.Finalize(3) // skips 2: only the new finalized head is sent
				if h := headerOf(t, ws.mustNext().Params.Result); h.Number != 3 {
					t.Fatalf("finalized notification for %d", h.Number)
				}
			} else if m := ws.mustNext(); headerOf(t, m.Params.Result).ParentHash != mustHeader(t, c, 1).Hash || m.Params.Subscription != id {
				t.Fatalf("new head notification %s (want block %s)", m.raw, b2.Hash)
			}

			if r := ws.call(tc.unsubscribe, id); string(r.Result) != "true" {
				t.Fatalf("unsubscribe: %s", r.raw)
			}
			if r := ws.call(tc.unsubscribe, id); string(r.Result) != "false" {
				t.Fatalf("second unsubscribe: %s", r.raw)
			}
			c.NewBlockFinalized()
			ws.expectNothing(30 * time.Millisecond)
			if n.ActiveSubscriptions(tc.subscribe) != 0 || n.TotalActiveSubscriptions() != 0 {
				t.Fatal("subscription still counted")
			}
		})
	}
}

func TestUnsubscribe(t *testing.T) {
	n := Start(t)
	ws, other := dial(t, n), dial(t, n)
	heads, _ := ws.subscribe("chain_subscribeNewHeads")
	cases := []struct {
		name, method string
		param        any
		want         string
	}{
		{"unknown id", "chain_unsubscribeNewHeads", "abcdefghijklmnop", "false"},
		{"wrong kind", "chain_unsubscribeFinalizedHeads", heads, "false"},
		{"number id", "chain_unsubscribeNewHeads", 42, "false"},
		{"known id", "chain_unsubscribeNewHeads", heads, "true"},
		{"again", "chain_unsubscribeNewHeads", heads, "false"},
	}
	// Another connection cannot cancel our subscription.
	mine, _ := ws.subscribe("chain_subscribeAllHeads")
	if r := other.call("chain_unsubscribeAllHeads", mine); string(r.Result) != "false" {
		t.Fatalf("foreign unsubscribe: %s", r.raw)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if r := ws.call(tc.method, tc.param); string(r.Result) != tc.want {
				t.Fatalf("got %s", r.raw)
			}
		})
	}
	if r := ws.call("chain_unsubscribeNewHeads"); r.Error == nil || r.Error.Code != CodeInvalidParams {
		t.Fatalf("unsubscribe without id: %s", r.raw)
	}
}

func TestEarlyNotifications(t *testing.T) {
	for _, early := range []bool{false, true} {
		t.Run(fmt.Sprint(early), func(t *testing.T) {
			n := Start(t)
			n.SetEarlyNotifications(early)
			ws := dial(t, n)
			for _, method := range []string{"chain_subscribeNewHeads", "chain_subscribeFinalizedHeads", "state_subscribeRuntimeVersion", "state_subscribeStorage"} {
				params := []any{}
				if method == "state_subscribeStorage" {
					params = []any{[]string{"0x01"}}
				}
				ws.send(method, params...)
				a, b := ws.mustNext(), ws.mustNext()
				if early && (!a.isNotification() || b.isNotification()) {
					t.Fatalf("%s: want notification first, got %s then %s", method, a.raw, b.raw)
				}
				if !early && (a.isNotification() || !b.isNotification()) {
					t.Fatalf("%s: want reply first, got %s then %s", method, a.raw, b.raw)
				}
				var reply, note rpcMsg = a, b
				if early {
					reply, note = b, a
				}
				if string(reply.Result) != `"`+note.Params.Subscription+`"` {
					t.Fatalf("%s: ids differ: %s / %s", method, reply.raw, note.raw)
				}
			}
		})
	}
}

func TestReorder(t *testing.T) {
	n := Start(t)
	n.SetReorder(true)
	ws := dial(t, n)
	for _, m := range []string{"system_name", "system_chain", "system_version"} {
		ws.send(m)
	}
	var ids []string
	for range 3 {
		ids = append(ids, string(ws.mustNext().ID))
	}
	if !slices.Equal(ids, []string{"3", "2", "1"}) {
		t.Fatalf("reply order %v", ids)
	}
	// The subscribe reply still precedes its notifications.
	ws.send("chain_subscribeNewHeads")
	ws.send("system_name")
	if a, b, c := ws.mustNext(), ws.mustNext(), ws.mustNext(); string(a.ID) != "5" || string(b.ID) != "4" || !c.isNotification() {
		t.Fatalf("order: %s | %s | %s", a.raw, b.raw, c.raw)
	}
	// HTTP batches come back reversed.
	_, body := httpPost(t, n, `[{"jsonrpc":"2.0","id":1,"method":"system_name"},{"jsonrpc":"2.0","id":2,"method":"system_chain"}]`)
	if !strings.HasPrefix(body, `[{"jsonrpc":"2.0","id":2`) {
		t.Fatalf("batch not reversed: %s", body)
	}
	n.SetReorder(false)
	ws.send("system_name")
	ws.send("system_chain")
	if a, b := ws.mustNext(), ws.mustNext(); string(a.ID) != "6" || string(b.ID) != "7" {
		t.Fatalf("order after reorder off: %s %s", a.raw, b.raw)
	}
}

func TestDelay(t *testing.T) {
	const d = 150 * time.Millisecond
	n := Start(t)
	n.SetDelay("system_name", d)
	ws := dial(t, n)

	start := time.Now()
	ws.send("system_name")
	ws.send("system_chain")
	if m := ws.mustNext(); string(m.Result) != `"Fake Dev"` {
		t.Fatalf("undelayed reply should come first, got %s", m.raw)
	}
	if time.Since(start) >= d {
		t.Fatal("the delay blocked the connection")
	}
	if m := ws.mustNext(); string(m.Result) != `"fake-substrate"` || time.Since(start) < d {
		t.Fatalf("delayed reply %s after %v", m.raw, time.Since(start))
	}

	start = time.Now()
	if m := httpCall(t, n, "system_name"); m.Error != nil || time.Since(start) < d {
		t.Fatalf("HTTP delay: %s after %v", m.raw, time.Since(start))
	}

	// "*" delays everything, a per-method setting wins.
	n.SetDelay("*", d)
	n.SetDelay("system_chain", 0)
	start = time.Now()
	ws.call("system_chain")
	if time.Since(start) >= d {
		t.Fatal("per-method 0 did not override *")
	}
	ws.call("system_version")
	if time.Since(start) < d {
		t.Fatal("* did not delay")
	}

	// A delayed subscribe: the reply still precedes the notifications made meanwhile.
	n.ResetFaults()
	n.SetDelay("chain_subscribeNewHeads", 50*time.Millisecond)
	ws.send("chain_subscribeNewHeads")
	time.Sleep(10 * time.Millisecond)
	n.Chain().NewBlock()
	if m := ws.mustNext(); m.isNotification() {
		t.Fatalf("notification before delayed reply: %s", m.raw)
	}
	if a, b := ws.mustNext(), ws.mustNext(); headerOf(t, a.Params.Result).Number != 1 || headerOf(t, b.Params.Result).Number != 2 {
		t.Fatalf("notifications %s %s", a.raw, b.raw)
	}
}

func TestDrop(t *testing.T) {
	n := Start(t)
	n.SetDrop("system_name", true)
	ws := dial(t, n)
	ws.send("system_name")
	if m := ws.call("system_chain"); string(m.Result) != `"Fake Dev"` {
		t.Fatal(m.raw)
	}
	ws.expectNothing(50 * time.Millisecond)
	if n.Calls("system_name") != 1 {
		t.Fatal("dropped request not counted")
	}

	// HTTP: the request hangs until the client gives up.
	client := &http.Client{Timeout: 100 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	if _, err := client.Post(n.HTTPURL(), "application/json", strings.NewReader(requestJSON(1, "system_name"))); err == nil {
		t.Fatal("dropped HTTP request was answered")
	}
	// Batch: dropped entries are missing.
	if _, body := httpPost(t, n, `[{"jsonrpc":"2.0","id":1,"method":"system_name"},{"jsonrpc":"2.0","id":2,"method":"system_chain"}]`); body != `[{"jsonrpc":"2.0","id":2,"result":"Fake Dev"}]` {
		t.Fatalf("batch with a dropped entry: %s", body)
	}
	// A dropped subscribe creates nothing.
	n.SetDrop("*", true)
	ws.send("chain_subscribeNewHeads")
	ws.expectNothing(50 * time.Millisecond)
	if n.TotalActiveSubscriptions() != 0 {
		t.Fatal("dropped subscribe created a subscription")
	}
	n.SetDrop("*", false)
	if m := ws.call("system_chain"); m.Error != nil {
		t.Fatal(m.raw)
	}
	ws.send("system_name") // its own setting still applies
	ws.expectNothing(50 * time.Millisecond)
}

func TestDisconnectOn(t *testing.T) {
	n := Start(t)
	n.SetDisconnectOn("system_name", true)
	ws := dial(t, n)
	ws.send("system_name")
	select {
	case <-ws.closed:
	case <-time.After(2 * time.Second):
		t.Fatal("connection not closed")
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if _, err := client.Post(n.HTTPURL(), "application/json", strings.NewReader(requestJSON(1, "system_name"))); err == nil {
		t.Fatal("HTTP request answered")
	}
}

func TestDisconnectAll(t *testing.T) {
	n := Start(t)
	a, b := dial(t, n), dial(t, n)
	a.subscribe("chain_subscribeNewHeads")
	waitFor(t, "2 connections", func() bool { return n.Connections() == 2 })
	n.DisconnectAll()
	for _, c := range []*wsClient{a, b} {
		select {
		case <-c.closed:
		case <-time.After(2 * time.Second):
			t.Fatal("client still connected")
		}
	}
	if n.Connections() != 0 || n.TotalActiveSubscriptions() != 0 {
		t.Fatalf("after DisconnectAll: %d connections, %d subscriptions", n.Connections(), n.TotalActiveSubscriptions())
	}
	if m := dial(t, n).call("system_name"); m.Error != nil {
		t.Fatal("node stopped listening")
	}
}

func TestStopRestart(t *testing.T) {
	n := Start(t)
	ws := dial(t, n)
	ws.call("system_name")
	addr := n.Addr()
	n.Stop()
	select {
	case <-ws.closed:
	case <-time.After(2 * time.Second):
		t.Fatal("connection survived Stop")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still listening after Stop")
	}
	if _, _, err := websocket.DefaultDialer.Dial(n.URL(), nil); err == nil {
		t.Fatal("WebSocket dial succeeded after Stop")
	}
	n.Stop() // idempotent
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	if n.Addr() != addr {
		t.Fatal("port changed")
	}
	if m := dial(t, n).call("system_name"); m.Error != nil {
		t.Fatal(m.raw)
	}
	if m := httpCall(t, n, "system_name"); m.Error != nil {
		t.Fatal(m.raw)
	}
	n.Close()
	if err := n.Restart(); err == nil {
		t.Fatal("Restart after Close succeeded")
	}
	n.Close() // idempotent
}

func TestSetFollow(t *testing.T) {
	chain := NewChain()
	leader, lagger := Start(t, WithChain(chain)), Start(t, WithChain(chain), WithName("lagger"))
	lws, gws := dial(t, leader), dial(t, lagger)
	lws.subscribe("chain_subscribeNewHeads")
	gws.subscribe("chain_subscribeNewHeads")
	gws.subscribe("chain_subscribeFinalizedHeads")

	lagger.SetFollow(false)
	start := chain.Best()
	b2 := chain.NewBlock()
	b3 := chain.NewBlockFinalized()
	if h := headerOf(t, lws.mustNext().Params.Result); h.Number != b2.Number {
		t.Fatal("leader missed a block")
	}
	gws.expectNothing(50 * time.Millisecond)
	if m := gws.call("chain_getHeader"); headerOf(t, m.Result).Number != start.Number {
		t.Fatalf("lagging node moved: %s", m.raw)
	}
	if m := gws.call("chain_getHeader", b3.Hash); string(m.Result) != "null" {
		t.Fatalf("lagging node knows a future block: %s", m.raw)
	}
	if m := gws.call("system_syncState"); !strings.Contains(string(m.Result), `"currentBlock":1,"highestBlock":3`) {
		t.Fatalf("syncState %s", m.raw)
	}

	lagger.SetFollow(true) // catches up: one head (the best), one finalized head
	got := map[string]uint64{}
	for range 2 {
		m := gws.mustNext()
		got[m.Method] = headerOf(t, m.Params.Result).Number
	}
	if got["chain_newHead"] != 3 || got["chain_finalizedHead"] != 3 {
		t.Fatalf("catch-up notifications %v", got)
	}
	if m := gws.call("chain_getBlockHash"); string(m.Result) != `"`+b3.Hash+`"` {
		t.Fatalf("after catch-up: %s", m.raw)
	}
	gws.expectNothing(30 * time.Millisecond)
}

func TestCounters(t *testing.T) {
	n := Start(t)
	ws := dial(t, n)
	ws.call("system_name")
	ws.call("system_name", "extra")
	httpCall(t, n, "system_name")
	httpCall(t, n, "nope")
	ws.subscribe("chain_subscribeNewHeads")
	ws.subscribe("chain_subscribeNewHead")

	cases := []struct {
		name string
		got  int
		want int
	}{
		{"Calls(system_name)", n.Calls("system_name"), 3},
		{"Calls(nope)", n.Calls("nope"), 1},
		{"Calls(never)", n.Calls("system_chain"), 0},
		{"TotalCalls", n.TotalCalls(), 6},
		{"ActiveSubscriptions(NewHeads)", n.ActiveSubscriptions("chain_subscribeNewHeads"), 1},
		{"ActiveSubscriptions(alias)", n.ActiveSubscriptions("chain_subscribeNewHead"), 1},
		{"TotalActiveSubscriptions", n.TotalActiveSubscriptions(), 2},
		{"Connections", n.Connections(), 1},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s = %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	if got := string(n.LastRequest("system_name")); got != requestJSON(1, "system_name") {
		t.Errorf("LastRequest = %s", got)
	}
	if n.LastRequest("system_chain") != nil {
		t.Error("LastRequest of an uncalled method")
	}
	n.ResetCounters()
	if n.Calls("system_name") != 0 || n.TotalCalls() != 0 || n.LastRequest("system_name") != nil {
		t.Error("ResetCounters left counts")
	}
	if n.TotalActiveSubscriptions() != 2 {
		t.Error("ResetCounters touched subscriptions")
	}
	ws.close()
	waitFor(t, "cleanup", func() bool { return n.Connections() == 0 && n.TotalActiveSubscriptions() == 0 })
}

func TestStorageSubscription(t *testing.T) {
	n := Start(t)
	c := n.Chain()
	c.SetStorage("0x01", "0xaa")
	ws := dial(t, n)

	watched, first := ws.subscribe("state_subscribeStorage", []string{"0x01", "0x02"})
	best := c.Best().Hash
	jsonEqual(t, first.Params.Result, `{"block":"`+best+`","changes":[["0x01","0xaa"],["0x02",null]]}`)
	var all string
	_ = json.Unmarshal(ws.call("state_subscribeStorage").Result, &all) // all keys: no initial notification
	ws.expectNothing(30 * time.Millisecond)

	cases := []struct {
		name, key, value string
		want             []string // subscriptions notified
	}{
		{"watched key", "0x02", "0xbb", []string{watched, all}},
		{"other key", "0x03", "0xcc", []string{all}},
		{"deletion", "0x01", "", []string{watched, all}},
		{"no change", "0x01", "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.SetStorage(tc.key, tc.value)
			value := `"` + tc.value + `"`
			if tc.value == "" {
				value = "null"
			}
			var got []string
			for {
				m, ok := ws.next(50 * time.Millisecond)
				if !ok {
					break
				}
				jsonEqual(t, m.Params.Result, `{"block":"`+best+`","changes":[["`+tc.key+`",`+value+`]]}`)
				got = append(got, m.Params.Subscription)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Fatalf("notified %v, want %v", got, want)
			}
		})
	}
	if m := ws.call("state_unsubscribeStorage", watched); string(m.Result) != "true" {
		t.Fatal(m.raw)
	}
}

func TestRuntimeVersion(t *testing.T) {
	n := Start(t)
	c := n.Chain()
	ws := dial(t, n)
	id, first := ws.subscribe("chain_subscribeRuntimeVersion")
	if !strings.Contains(string(first.Params.Result), `"specVersion":100`) {
		t.Fatal(first.raw)
	}
	old := c.Best().Hash
	c.NewBlock()
	c.SetRuntimeVersion(101)
	c.SetRuntimeVersion(101) // unchanged: no notification
	if m := ws.mustNext(); m.Method != "state_runtimeVersion" || !strings.Contains(string(m.Params.Result), `"specVersion":101`) {
		t.Fatal(m.raw)
	}
	ws.expectNothing(30 * time.Millisecond)
	var now, before string
	_ = json.Unmarshal(ws.call("state_getMetadata").Result, &now)
	_ = json.Unmarshal(ws.call("state_getMetadata", old).Result, &before)
	if now != Metadata(101) || before != Metadata(100) || now == before {
		t.Fatal("metadata does not follow specVersion")
	}
	if m := ws.call("state_unsubscribeRuntimeVersion", id); string(m.Result) != "true" {
		t.Fatal(m.raw)
	}
}

func TestExtrinsicWatch(t *testing.T) {
	n := Start(t)
	c := n.Chain()
	ws := dial(t, n)
	id, ready := ws.subscribe("author_submitAndWatchExtrinsic", "0x0102")
	if ready.Method != "author_extrinsicUpdate" || string(ready.Params.Result) != `"ready"` {
		t.Fatal(ready.raw)
	}
	if m := ws.call("author_submitExtrinsic", "0x0102"); m.Error == nil || m.Error.Code != 1013 {
		t.Fatalf("duplicate: %s", m.raw)
	}
	b := c.NewBlock()
	if m := ws.mustNext(); string(m.Params.Result) != `{"inBlock":"`+b.Hash+`"}` || m.Params.Subscription != id {
		t.Fatal(m.raw)
	}
	if m := ws.call("chain_getBlock"); !strings.Contains(string(m.Result), `"extrinsics":["0x0102"]`) {
		t.Fatal(m.raw)
	}
	c.NewBlockFinalized()
	if m := ws.mustNext(); string(m.Params.Result) != `{"finalized":"`+b.Hash+`"}` {
		t.Fatal(m.raw)
	}
	if n.TotalActiveSubscriptions() != 0 {
		t.Fatal("finalized watch still open")
	}
	if m := ws.call("author_submitExtrinsic", "0x0304"); m.Error != nil || len(m.Result) != 68 {
		t.Fatal(m.raw)
	}
	if m := ws.call("author_submitExtrinsic", "zz"); m.Error == nil || m.Error.Code != CodeInvalidParams {
		t.Fatal(m.raw)
	}
}

func TestSendRaw(t *testing.T) {
	n := Start(t)
	ws := dial(t, n)
	ws.call("system_name") // the connection is registered once it answered
	n.SendRaw([]byte(`{"jsonrpc":"2.0","method":"chain_newHead","params":{"subscription":"nobody","result":null}}`))
	if m := ws.mustNext(); m.Params.Subscription != "nobody" {
		t.Fatal(m.raw)
	}
}

func TestJustifications(t *testing.T) {
	n := Start(t)
	ws := dial(t, n)
	ws.call("grandpa_subscribeJustifications")
	n.Chain().NewBlock()
	ws.expectNothing(30 * time.Millisecond)
	n.Chain().Finalize(2)
	if m := ws.mustNext(); m.Method != "grandpa_justifications" || string(m.Params.Result) != `"0x00"` {
		t.Fatal(m.raw)
	}
}

func TestRPCMethodsAndDev(t *testing.T) {
	n := Start(t)
	n.Handle("custom_hello", func(json.RawMessage) (any, *Error) { return "hi", nil })
	var res struct{ Methods []string }
	if err := json.Unmarshal(httpCall(t, n, "rpc_methods").Result, &res); err != nil {
		t.Fatal(err)
	}
	if !slices.IsSorted(res.Methods) {
		t.Fatal("rpc_methods not sorted")
	}
	for _, m := range []string{"author_insertKey", "author_rotateKeys", "author_hasKey", "author_hasSessionKeys",
		"author_removeExtrinsic", "system_addReservedPeer", "system_nodeRoles", "system_localPeerId",
		"offchain_localStorageSet", "offchain_localStorageGet", "dev_newBlock", "chain_subscribeNewHeads",
		"state_getMetadata", "rpc_methods", "custom_hello"} {
		if !slices.Contains(res.Methods, m) {
			t.Errorf("rpc_methods lacks %s", m)
		}
	}
	var hash string
	_ = json.Unmarshal(httpCall(t, n, "dev_newBlock").Result, &hash)
	if f := n.Chain().Finalized(); f.Hash != hash || f.Number != 2 {
		t.Fatalf("dev_newBlock: %s vs %+v", hash, f)
	}
	httpCall(t, n, "offchain_localStorageSet", "PERSISTENT", "0x01", "0x02")
	if m := httpCall(t, n, "offchain_localStorageGet", "PERSISTENT", "0x01"); string(m.Result) != `"0x02"` {
		t.Fatal(m.raw)
	}
}

func TestHandle(t *testing.T) {
	n := Start(t)
	release := make(chan struct{})
	n.Handle("system_name", func(p json.RawMessage) (any, *Error) {
		return json.RawMessage(`{"echo":` + string(p) + `}`), nil
	})
	n.Handle("custom_fail", func(json.RawMessage) (any, *Error) {
		return nil, &Error{Code: 1234, Message: "nope", Data: "why"}
	})
	n.Handle("custom_panic", func(json.RawMessage) (any, *Error) { panic("boom") })
	n.Handle("custom_slow", func(json.RawMessage) (any, *Error) {
		<-release
		return 1, nil
	})
	ws := dial(t, n)
	cases := []struct {
		method, want string
	}{
		{"system_name", `{"jsonrpc":"2.0","id":1,"result":{"echo":["x"]}}`},
		{"custom_fail", `{"jsonrpc":"2.0","id":1,"error":{"code":1234,"message":"nope","data":"why"}}`},
		{"custom_panic", `{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"Internal error","data":"boom"}}`},
	}
	for _, tc := range cases {
		if _, body := httpPost(t, n, requestJSON(1, tc.method, "x")); body != tc.want {
			t.Errorf("%s: %s", tc.method, body)
		}
	}
	// A slow handler does not hold up the connection.
	slow := ws.send("custom_slow")
	if m := ws.call("system_version"); m.Error != nil {
		t.Fatal(m.raw)
	}
	close(release)
	if m := ws.mustNext(); string(m.ID) != fmt.Sprint(slow) {
		t.Fatal(m.raw)
	}
	n.Handle("system_name", nil)
	if m := ws.call("system_name"); string(m.Result) != `"fake-substrate"` {
		t.Fatal("Handle(nil) did not restore the built-in")
	}
}

func TestPing(t *testing.T) {
	n := Start(t)
	conn, _, err := websocket.DefaultDialer.Dial(n.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pong := make(chan string, 1)
	conn.SetPongHandler(func(s string) error { pong <- s; return nil })
	if err := conn.WriteControl(websocket.PingMessage, []byte("hey"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// Pongs are handled while reading; a request gives the reader something to return.
	if err := conn.WriteMessage(websocket.TextMessage, []byte(requestJSON(1, "system_name"))); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := conn.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-pong:
		if s != "hey" {
			t.Fatalf("pong %q", s)
		}
	default:
		t.Fatal("no pong")
	}
}

func TestHealth(t *testing.T) {
	n := Start(t)
	n.SetSyncing(true)
	n.SetPeers(0)
	jsonEqual(t, httpCall(t, n, "system_health").Result, `{"peers":0,"isSyncing":true,"shouldHavePeers":true}`)
	resp, err := httpClient.Get(n.HTTPURL() + "/health/readiness")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("readiness while syncing: %d", resp.StatusCode)
	}
}

// TestManyConnections: every one of many concurrent subscribers gets each block.
func TestManyConnections(t *testing.T) {
	const conns = 300
	n := Start(t)
	clients := make([]*wsClient, conns)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			conn, _, err := websocket.DefaultDialer.Dial(n.URL(), nil)
			if err != nil {
				t.Error(err)
				return
			}
			clients[i] = &wsClient{conn: conn}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	defer func() {
		for _, c := range clients {
			c.conn.Close()
		}
	}()
	for _, c := range clients {
		_ = c.conn.WriteMessage(websocket.TextMessage, []byte(requestJSON(1, "chain_subscribeNewHeads")))
	}
	waitFor(t, "subscriptions", func() bool { return n.ActiveSubscriptions("chain_subscribeNewHeads") == conns })
	for range 3 {
		n.Chain().NewBlock()
	}
	errs := make(chan error, conns)
	for _, c := range clients {
		wg.Go(func() {
			_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			for range 5 { // reply, initial head, 3 new heads
				if _, _, err := c.conn.ReadMessage(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	// stable waits until the goroutine count stops changing (or reaches limit).
	stable := func(limit int) int {
		g, same := runtime.NumGoroutine(), 0
		for deadline := time.Now().Add(3 * time.Second); g > limit && same < 5 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			if now := runtime.NumGoroutine(); now == g {
				same++
			} else {
				g, same = now, 0
			}
		}
		return g
	}
	before := stable(0)

	func() {
		n, err := New()
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		n.SetDelay("system_chain", time.Hour)
		n.SetDrop("system_version", true)
		n.Handle("custom_x", func(json.RawMessage) (any, *Error) { return 1, nil })
		n.SetReorder(true)
		for range 5 {
			ws := dial(t, n)
			ws.subscribe("chain_subscribeNewHeads")
			ws.send("system_chain")   // pending delayed reply
			ws.send("system_version") // dropped
			ws.call("custom_x")
		}
		n.Chain().NewBlock()
		// An HTTP request left hanging on a dropped method.
		go func() {
			_, _ = httpClient.Post(n.HTTPURL(), "application/json", strings.NewReader(requestJSON(1, "system_version")))
		}()
		waitFor(t, "hanging HTTP request", func() bool { return n.Calls("system_version") == 6 })
		httpCall(t, n, "system_name")
		n.Stop()
		if err := n.Restart(); err != nil {
			t.Fatal(err)
		}
		dial(t, n).call("system_name")
	}() // Close runs here; the clients' cleanups run at test end, but their connections are already gone.

	if after := stable(before); after > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d after Close\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

func TestSharedChain(t *testing.T) {
	chain := NewChain()
	a, b := Start(t, WithChain(chain)), Start(t, WithChain(chain))
	wa, wb := dial(t, a), dial(t, b)
	wa.subscribe("chain_subscribeNewHeads")
	wb.subscribe("chain_subscribeNewHeads")
	h := chain.NewBlock()
	for _, ws := range []*wsClient{wa, wb} {
		if got := headerOf(t, ws.mustNext().Params.Result); got.Number != h.Number || got.ParentHash != h.ParentHash {
			t.Fatal("nodes disagree")
		}
	}
	if ra, rb := httpCall(t, a, "chain_getBlockHash"), httpCall(t, b, "chain_getBlockHash"); !bytes.Equal(ra.Result, rb.Result) {
		t.Fatal("hashes differ between nodes of one chain")
	}
}

func TestRequestSizeLimit(t *testing.T) {
	n := Start(t)
	big := `{"jsonrpc":"2.0","id":1,"method":"system_name","params":["` + strings.Repeat("a", maxRequestSize) + `"]}`
	status, _ := httpPost(t, n, big)
	if status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", status)
	}
}

func BenchmarkWSCall(b *testing.B) {
	n := Start(b)
	conn, _, err := websocket.DefaultDialer.Dial(n.URL(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	req := []byte(requestJSON(1, "chain_getHeader"))
	b.ReportAllocs()
	for b.Loop() {
		if err := conn.WriteMessage(websocket.TextMessage, req); err != nil {
			b.Fatal(err)
		}
		if _, _, err := conn.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHTTPCall(b *testing.B) {
	n := Start(b)
	client := &http.Client{}
	defer client.CloseIdleConnections()
	req := requestJSON(1, "system_health")
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Post(n.HTTPURL(), "application/json", strings.NewReader(req))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// A text frame that is not UTF-8 fails the connection with 1007, as
// jsonrpsee does; binary frames and valid text keep it open.
func TestInvalidUTF8ClosesConnection(t *testing.T) {
	n := Start(t)
	conn, _, err := websocket.DefaultDialer.Dial(n.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.WriteMessage(websocket.TextMessage, []byte(requestJSON(1, "system_name"))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := conn.ReadMessage(); err != nil {
		t.Fatalf("valid frame: %v", err)
	}
	if n.InvalidFrames() != 0 || n.ConnectionsAccepted() != 1 {
		t.Fatalf("before: invalid %d accepted %d", n.InvalidFrames(), n.ConnectionsAccepted())
	}
	bad := "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"system_name\",\"params\":[\"\xff\"]}"
	if err := conn.WriteMessage(websocket.TextMessage, []byte(bad)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseInvalidFramePayloadData {
		t.Fatalf("after an invalid frame: %v, want close 1007", err)
	}
	if n.InvalidFrames() != 1 {
		t.Fatalf("InvalidFrames = %d", n.InvalidFrames())
	}
}
