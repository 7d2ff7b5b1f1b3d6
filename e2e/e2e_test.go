// Package e2e runs the built Elara gateway (Caddy with the Elara modules) in
// front of a real Substrate JSON-RPC node (Chopsticks running the Westend dev
// runtime, offline) and talks to it with the real polkadot.js client and with
// raw HTTP/WebSocket JSON-RPC. See README.md in this folder.
package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Caddyfile templates: the one place to adapt when the gateway's Caddyfile
// syntax changes. @@NAME@@ markers are replaced by startGateway
// (ADMIN_PORT, HTTP_PORT, NODE_URL) and by the vars a test passes.

// globalOptionsHead opens the global options and the elara app with the
// one chain every test serves; a test adds its own app options and closes
// both blocks (see globalOptionsTemplate).
const globalOptionsHead = `{
	admin 127.0.0.1:@@ADMIN_PORT@@
	default_bind 127.0.0.1
	auto_https off
	skip_install_trust
	elara {
		chain westend {
			node @@NODE_URL@@ {
				pool 2
			}
		}
`

const globalOptionsTemplate = globalOptionsHead + `	}
}
`

// publicCaddyfile: the gateway as the public sees it.
const publicCaddyfile = globalOptionsTemplate + `
http://127.0.0.1:@@HTTP_PORT@@ {
	elara_rpc
}
`

// operatorCaddyfile: /operator/* behind basic auth and a loopback-only
// matcher, where some unsafe methods are allowed; everything else public.
const operatorCaddyfile = globalOptionsTemplate + `
http://127.0.0.1:@@HTTP_PORT@@ {
	@operator {
		path /operator/*
		remote_ip 127.0.0.1/8
	}
	handle @operator {
		basic_auth {
			@@OPERATOR_USER@@ @@OPERATOR_HASH@@
		}
		uri strip_prefix /operator
		elara_rpc {
			allow @@OPERATOR_ALLOW@@
		}
	}
	handle {
		elara_rpc
	}
}
`

const (
	operatorUser     = "operator"
	operatorPassword = "e2e-operator-secret"
	// what the operator route allows: every safe method (`*`) plus these
	// unsafe ones, which the gateway lifts only when named exactly
	// (dev_newBlock is the one Chopsticks implements, which proves
	// forwarding; the author_* ones it does not implement).
	operatorAllow = "* author_rotateKeys author_insertKey author_hasSessionKeys dev_newBlock"

	projectID = "0123456789abcdef0123456789abcdef"
)

var chainURLPath = "/" + chainPath

// methods a public gateway must refuse, with harmless parameters.
var deniedCalls = []struct {
	method string
	params any
}{
	{"author_insertKey", []any{"babe", "//Alice", "0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"}},
	{"author_rotateKeys", []any{}},
	{"author_hasKey", []any{"0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d", "babe"}},
	{"author_hasSessionKeys", []any{"0x00"}},
	{"dev_newBlock", []any{map[string]any{"count": 1}}},
	{"dev_setStorage", []any{[]any{}}},
	{"dev_setHead", []any{1}},
	{"dev_setBlockBuildMode", []any{"Manual"}},
	{"system_addReservedPeer", []any{"/ip4/127.0.0.1/tcp/30333/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"}},
	{"offchain_localStorageSet", []any{"PERSISTENT", "0x00", "0x00"}},
}

const unknownMethod = "elara_e2eNoSuchMethod"

// ---------------------------------------------------------------------------

type pjsSide[T any] struct {
	Gateway T `json:"gateway"`
	Direct  T `json:"direct"`
}

type pjsDigest struct {
	Length int    `json:"length"`
	SHA256 string `json:"sha256"`
}

type pjsHead struct {
	Number uint64 `json:"number"`
	Hash   string `json:"hash"`
}

type pjsResult struct {
	OK             bool                     `json:"ok"`
	Error          string                   `json:"error"`
	Steps          []string                 `json:"steps"`
	Chain          pjsSide[string]          `json:"chain"`
	GenesisHash    pjsSide[string]          `json:"genesisHash"`
	RuntimeVersion pjsSide[json.RawMessage] `json:"runtimeVersion"`
	AliceAccount   struct {
		Address string          `json:"address"`
		Gateway json.RawMessage `json:"gateway"`
		Direct  json.RawMessage `json:"direct"`
	} `json:"aliceAccount"`
	Metadata struct {
		Gateway        pjsDigest `json:"gateway"`
		Direct         pjsDigest `json:"direct"`
		GatewayDecoded pjsDigest `json:"gatewayDecoded"`
		GatewayVersion int       `json:"gatewayVersion"`
	} `json:"metadata"`
	HTTPChain        string `json:"httpChain"`
	HTTPHeaderNumber uint64 `json:"httpHeaderNumber"`
	Subscription     struct {
		StartNumber uint64    `json:"startNumber"`
		Made        []pjsHead `json:"made"`
		Seen        []pjsHead `json:"seen"`
		Finalized   []pjsHead `json:"finalized"`
	} `json:"subscription"`
	Transfer struct {
		InBlock        string   `json:"inBlock"`
		Events         []string `json:"events"`
		Statuses       []string `json:"statuses"`
		Amount         string   `json:"amount"`
		BobBefore      string   `json:"bobBefore"`
		BobAfter       string   `json:"bobAfter"`
		BobAfterDirect string   `json:"bobAfterDirect"`
		BobSub         []string `json:"bobSubscription"`
		Delta          string   `json:"delta"`
	} `json:"transfer"`
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// TestPolkadotJSThroughGateway runs testdata/pjs_compare.mjs: polkadot.js
// through the gateway and directly against the node must see the same chain,
// the subscription through the gateway must deliver blocks made on the node,
// and a signed transfer sent through the gateway must get into a block.
func TestPolkadotJSThroughGateway(t *testing.T) {
	n := realNode(t)
	g := startGateway(t, n, publicCaddyfile, nil, chainURLPath)

	var r pjsResult
	run := runScript(t, 150*time.Second, nil, &r, "pjs_compare.mjs", g.wsURL(chainURLPath), n.wsURL(), g.httpURL(chainURLPath))
	if !r.OK || run.err != nil {
		t.Errorf("pjs_compare.mjs failed (exit: %v) after steps %v: %s\nstderr tail:\n%s", run.err, r.Steps, r.Error, run.stderr)
	}

	// static facts
	if r.Chain.Gateway == "" || r.Chain.Gateway != r.Chain.Direct {
		t.Errorf("system.chain(): gateway %q, direct %q", r.Chain.Gateway, r.Chain.Direct)
	}
	if r.GenesisHash.Gateway == "" || r.GenesisHash.Gateway != r.GenesisHash.Direct {
		t.Errorf("genesis hash: gateway %q, direct %q", r.GenesisHash.Gateway, r.GenesisHash.Direct)
	}
	if len(r.RuntimeVersion.Gateway) == 0 || !jsonEqual(r.RuntimeVersion.Gateway, r.RuntimeVersion.Direct) {
		t.Errorf("state.getRuntimeVersion(): gateway %s, direct %s", truncate(string(r.RuntimeVersion.Gateway), 300), truncate(string(r.RuntimeVersion.Direct), 300))
	}
	md := r.Metadata
	if md.Direct.Length < 1000 || md.Gateway != md.Direct || md.GatewayDecoded != md.Direct {
		t.Errorf("state_getMetadata differs: gateway raw %+v, gateway decoded %+v, direct %+v", md.Gateway, md.GatewayDecoded, md.Direct)
	}
	if len(r.AliceAccount.Gateway) == 0 || !jsonEqual(r.AliceAccount.Gateway, r.AliceAccount.Direct) {
		t.Errorf("system.account(//Alice): gateway %s, direct %s", r.AliceAccount.Gateway, r.AliceAccount.Direct)
	}
	if r.HTTPChain != r.Chain.Direct {
		t.Errorf("system_chain over HTTP (polkadot.js HttpProvider) through the gateway: %q, want %q", r.HTTPChain, r.Chain.Direct)
	}

	// subscription: every block made directly on the node reached the
	// subscriber through the gateway, in order
	if len(r.Subscription.Made) != 3 {
		t.Errorf("expected 3 blocks made by dev_newBlock, got %+v", r.Subscription.Made)
	}
	last := -1
	for _, m := range r.Subscription.Made {
		i := slices.IndexFunc(r.Subscription.Seen, func(s pjsHead) bool { return s.Hash == m.Hash })
		if i < 0 {
			t.Errorf("chain_subscribeNewHeads through the gateway missed block #%d %s (seen %+v)", m.Number, m.Hash, r.Subscription.Seen)
			continue
		}
		if i <= last {
			t.Errorf("new heads out of order: %+v", r.Subscription.Seen)
		}
		last = i
	}

	if len(r.Subscription.Made) > 0 {
		lastMade := r.Subscription.Made[len(r.Subscription.Made)-1]
		if !slices.ContainsFunc(r.Subscription.Finalized, func(s pjsHead) bool { return s.Hash == lastMade.Hash }) {
			t.Errorf("chain_subscribeFinalizedHeads through the gateway missed block #%d (seen %+v)", lastMade.Number, r.Subscription.Finalized)
		}
	}

	// signed transfer
	tr := r.Transfer
	if !slices.Contains(tr.BobSub, tr.BobAfter) {
		t.Errorf("state_subscribeStorage of Bob's account through the gateway saw %v, never the new balance %s", tr.BobSub, tr.BobAfter)
	}
	if !slices.Contains(tr.Statuses, "InBlock") || tr.InBlock == "" {
		t.Errorf("transfer watched through the gateway never reached InBlock: statuses %v", tr.Statuses)
	}
	if !slices.Contains(tr.Events, "balances.Transfer") || !slices.Contains(tr.Events, "system.ExtrinsicSuccess") {
		t.Errorf("transfer events %v lack balances.Transfer / system.ExtrinsicSuccess", tr.Events)
	}
	if tr.Amount == "" || tr.Delta != tr.Amount {
		t.Errorf("Bob's free balance through the gateway changed by %s (before %s, after %s), want +%s", tr.Delta, tr.BobBefore, tr.BobAfter, tr.Amount)
	}
	if tr.BobAfter != tr.BobAfterDirect {
		t.Errorf("Bob's balance after the transfer: gateway %s, direct %s", tr.BobAfter, tr.BobAfterDirect)
	}
	if t.Failed() {
		t.Logf("node log tail:\n%s", logTail(n.logPath, 30))
	} else {
		t.Logf("polkadot.js: chain %q, metadata v%d %d hex chars, blocks %d..%d via subscription, transfer in %s",
			r.Chain.Gateway, md.GatewayVersion, md.Gateway.Length, r.Subscription.StartNumber, r.Subscription.Made[len(r.Subscription.Made)-1].Number, tr.InBlock)
	}
}

// ---------------------------------------------------------------------------

// substrateNotFound is what a production Substrate node (jsonrpsee) answers
// for a method it does not have.
const substrateNotFound = `{"code":-32601,"message":"Method not found"}`

// sameAsUnknown checks that a refusal is -32601 and cannot be told apart from
// an unknown method: it equals, apart from the method name, the gateway's
// reply for a method nobody has (ref), or else exactly what a production
// Substrate node answers for an unknown method. (Chopsticks, unlike
// Substrate, names the method in its message, so ref may carry the name.)
func sameAsUnknown(t *testing.T, where, method string, got *rpcResponse, ref *rpcResponse) {
	t.Helper()
	if got.Result != nil || got.Error == nil {
		t.Errorf("%s: %s was not refused: result %s error %s", where, method, truncate(string(got.Result), 200), got.Error)
		return
	}
	if got.Error.code() != -32601 {
		t.Errorf("%s: %s refused with %s, want code -32601 (method not found)", where, method, got.Error)
		return
	}
	if ref == nil || ref.Error == nil {
		return
	}
	norm := func(e *rpcError, name string) string {
		return strings.ReplaceAll(e.Message, name, "<method>") + "|" + strings.ReplaceAll(string(e.Data), name, "<method>")
	}
	if norm(got.Error, method) == norm(ref.Error, unknownMethod) || got.Error.String() == substrateNotFound {
		return
	}
	t.Errorf("%s: refusal of %s %s is distinguishable both from the unknown method's %s and from Substrate's %s",
		where, method, got.Error, ref.Error, substrateNotFound)
}

// TestDeniedMethodsRefused: unsafe and dev_* methods answer like unknown
// methods over HTTP and WebSocket, alone, in batches and with escaped names,
// and never reach the node.
func TestDeniedMethodsRefused(t *testing.T) {
	n := realNode(t)
	g := startGateway(t, n, publicCaddyfile, nil, chainURLPath)
	url := g.httpURL(chainURLPath)
	before := n.bestNumber(t)

	// the reference: a method nobody implements
	refHTTP, err := postRaw(url, request(1, unknownMethod, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	refResp, err := refHTTP.single()
	if err != nil {
		t.Fatal(err)
	}
	if refResp.Error.code() != -32601 {
		t.Errorf("unknown method over HTTP: %s, want error -32601", refHTTP)
	}

	ws, err := wsDial(g.wsURL(chainURLPath), nil, callTimeout)
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	defer ws.Close()
	refWS, _, err := wsCall(ws, string(request(1, unknownMethod, nil)), "1")
	if err != nil {
		t.Fatalf("unknown method over websocket: %v", err)
	}
	if refWS.Error.code() != -32601 {
		t.Errorf("unknown method over websocket: error %s, want -32601", refWS.Error)
	}

	t.Run("single", func(t *testing.T) {
		g.alive(t)
		for i, c := range deniedCalls {
			id := 100 + i
			r, err := postRaw(url, request(id, c.method, c.params), nil)
			if err != nil {
				t.Errorf("HTTP %s: %v", c.method, err)
				continue
			}
			if r.Status != refHTTP.Status {
				t.Errorf("HTTP %s: status %d, unknown method gets %d", c.method, r.Status, refHTTP.Status)
			}
			resp, err := r.single()
			if err != nil {
				t.Errorf("HTTP %s: %v", c.method, err)
				continue
			}
			if string(resp.ID) != fmt.Sprint(id) {
				t.Errorf("HTTP %s: reply id %s, want %d", c.method, resp.ID, id)
			}
			sameAsUnknown(t, "HTTP", c.method, resp, refResp)

			wsResp, raw, err := wsCall(ws, string(request(id, c.method, c.params)), fmt.Sprint(id))
			if err != nil {
				t.Errorf("WS %s: %v %s", c.method, err, raw)
				continue
			}
			sameAsUnknown(t, "WS", c.method, wsResp, refWS)
		}
	})

	t.Run("escaped-names", func(t *testing.T) {
		g.alive(t)
		// JSON unicode escapes decode to the denied names.
		bodies := map[string]string{
			"201": `{"jsonrpc":"2.0","id":201,"method":"dev\u005fnewBlock","params":[{"count":1}]}`,
			"202": `{"jsonrpc":"2.0","id":202,"method":"\u0064ev_newBlock","params":[{"count":1}]}`,
			"203": `{"jsonrpc":"2.0","id":203,"method":"author\u005FinsertKey","params":["babe","//Alice","0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"]}`,
			"204": `{"jsonrpc":"2.0","id":204,"method":"\u0061\u0075\u0074\u0068\u006f\u0072_rotateKeys","params":[]}`,
			"205": `{"jsonrpc":"2.0","id":205,"method":"dev_\u006eewBlock","params":[]}`,
		}
		for id, body := range bodies {
			r, err := postRaw(url, []byte(body), nil)
			if err != nil {
				t.Errorf("HTTP %s: %v", body, err)
				continue
			}
			resp, err := r.single()
			if err != nil {
				t.Errorf("HTTP %s: %v", body, err)
				continue
			}
			if resp.Error.code() != -32601 || resp.Result != nil {
				t.Errorf("HTTP %s: got %s, want error -32601", body, r)
			}
			wsResp, raw, err := wsCall(ws, body, id)
			if err != nil {
				t.Errorf("WS %s: %v %s", body, err, raw)
				continue
			}
			if wsResp.Error.code() != -32601 || wsResp.Result != nil {
				t.Errorf("WS %s: got %s, want error -32601", body, raw)
			}
		}
	})

	t.Run("duplicate-method-key", func(t *testing.T) {
		g.alive(t)
		// Parsers disagree on duplicate keys; whichever the gateway picks, a
		// denied method must not reach the node (checked by the block number
		// below) and the reply must not be a new block hash.
		for _, body := range []string{
			`{"jsonrpc":"2.0","id":301,"method":"system_chain","method":"dev_newBlock","params":[{"count":1}]}`,
			`{"jsonrpc":"2.0","id":302,"method":"dev_newBlock","method":"system_chain","params":[{"count":1}]}`,
		} {
			r, err := postRaw(url, []byte(body), nil)
			if err != nil {
				t.Errorf("HTTP %s: %v", body, err)
				continue
			}
			if resp, err := r.single(); err == nil && resp.Result != nil && string(resp.Result) != `"westend_dev"` {
				t.Errorf("HTTP %s: result %s: the denied method was executed", body, resp.Result)
			}
			if err := ws.writeText(body); err != nil {
				t.Fatal(err)
			}
		}
		// flush the websocket replies (whatever they are) with a marker
		// call; replies on one connection may come in any order, so also
		// wait (briefly) for the two replies above, lest they be read by a
		// later subtest.
		if err := ws.writeText(string(request(399, "system_chain", nil))); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		deadline := time.Now().Add(callTimeout)
		for !(seen["399"] && seen["301"] && seen["302"]) {
			_, raw, err := ws.readMessage(deadline)
			if err != nil {
				if !seen["399"] {
					t.Errorf("WS system_chain after duplicate keys: %v", err)
				}
				break
			}
			var resp rpcResponse
			if json.Unmarshal(raw, &resp) != nil || resp.Method != "" {
				continue
			}
			id := string(resp.ID)
			seen[id] = true
			switch id {
			case "399":
				if resp.Error != nil {
					t.Errorf("WS system_chain after duplicate keys: %s", raw)
				}
				deadline = time.Now().Add(2 * time.Second)
			case "301", "302":
				if resp.Result != nil && string(resp.Result) != `"westend_dev"` {
					t.Errorf("WS id %s: result %s: the denied method was executed", id, resp.Result)
				}
			}
		}
	})

	t.Run("notification", func(t *testing.T) {
		g.alive(t)
		// no id: nothing may be forwarded either
		body := `{"jsonrpc":"2.0","method":"dev_newBlock","params":[{"count":1}]}`
		if _, err := postRaw(url, []byte(body), nil); err != nil {
			t.Errorf("HTTP notification: %v", err)
		}
		if err := ws.writeText(body); err != nil {
			t.Fatal(err)
		}
		if resp, raw, err := wsCall(ws, string(request(499, "system_chain", nil)), "499"); err != nil || resp.Error != nil {
			t.Errorf("WS system_chain after a notification: %v %s", err, raw)
		}
	})

	t.Run("batch", func(t *testing.T) {
		g.alive(t)
		batch := `[` + strings.Join([]string{
			string(request(501, "system_chain", nil)),
			string(request(502, "dev_newBlock", []any{map[string]any{"count": 1}})),
			string(request(503, "author_rotateKeys", nil)),
			`{"jsonrpc":"2.0","id":504,"method":"dev\u005fsetHead","params":[1]}`,
			string(request(505, "author_insertKey", deniedCalls[0].params)),
			string(request(506, "system_chain", nil)),
		}, ",") + `]`
		check := func(where string, resps []rpcResponse, raw string) {
			if len(resps) != 6 {
				t.Errorf("%s batch: %d replies, want 6: %s", where, len(resps), truncate(raw, 800))
			}
			for _, r := range resps {
				switch id := string(r.ID); id {
				case "501", "506":
					if string(r.Result) != `"westend_dev"` {
						t.Errorf("%s batch: id %s (system_chain) got result %s error %s", where, id, r.Result, r.Error)
					}
				case "502", "503", "504", "505":
					if r.Result != nil || r.Error.code() != -32601 {
						t.Errorf("%s batch: id %s (denied) got result %s error %s, want -32601", where, id, r.Result, r.Error)
					}
				default:
					t.Errorf("%s batch: unexpected reply id %s", where, id)
				}
			}
		}
		r, err := postRaw(url, []byte(batch), nil)
		if err != nil {
			t.Fatalf("HTTP batch: %v", err)
		}
		resps, err := r.batch()
		if err != nil {
			t.Errorf("HTTP batch: %v", err)
		} else {
			check("HTTP", resps, string(r.Body))
		}
		if err := ws.writeText(batch); err != nil {
			t.Fatal(err)
		}
		wsResps, raw, err := wsReadBatch(ws)
		if err != nil {
			t.Errorf("WS batch: %v", err)
		} else {
			check("WS", wsResps, string(raw))
		}
	})

	t.Run("rpc_methods", func(t *testing.T) {
		g.alive(t)
		var res struct {
			Methods []string `json:"methods"`
		}
		if err := rpcResult(url, "rpc_methods", nil, &res); err != nil {
			t.Fatalf("rpc_methods: %v", err)
		}
		for _, m := range res.Methods {
			if strings.HasPrefix(m, "dev_") || strings.HasPrefix(m, "offchain_") ||
				slices.ContainsFunc(deniedCalls, func(c struct {
					method string
					params any
				}) bool {
					return c.method == m
				}) {
				t.Errorf("rpc_methods through the gateway lists denied method %s", m)
			}
		}
		for _, want := range []string{"system_chain", "chain_getHeader", "state_getMetadata", "author_submitAndWatchExtrinsic"} {
			if !slices.Contains(res.Methods, want) {
				t.Errorf("rpc_methods through the gateway lacks %s (%d methods)", want, len(res.Methods))
			}
		}
	})

	time.Sleep(500 * time.Millisecond) // let anything wrongly forwarded land
	if after := n.bestNumber(t); after != before {
		t.Errorf("best block number moved from %d to %d: a denied method reached the node", before, after)
	}
	g.alive(t)
}

// ---------------------------------------------------------------------------

func hashPassword(t *testing.T, password string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, gatewayBinary(t), "hash-password", "--plaintext", password).Output()
	if err != nil {
		t.Fatalf("caddy hash-password: %v", err)
	}
	lines := strings.Fields(strings.TrimSpace(string(out)))
	if len(lines) == 0 {
		t.Fatalf("caddy hash-password printed nothing")
	}
	return lines[len(lines)-1]
}

func basicAuth(user, pass string) http.Header {
	return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}}
}

// TestOperatorRoute: the operator route needs basic auth and forwards the
// unsafe methods it allows; the public route on the same server still refuses
// them.
func TestOperatorRoute(t *testing.T) {
	n := realNode(t)
	hash := hashPassword(t, operatorPassword)
	g := startGateway(t, n, operatorCaddyfile, map[string]string{
		"OPERATOR_USER":  operatorUser,
		"OPERATOR_HASH":  hash,
		"OPERATOR_ALLOW": operatorAllow,
	}, chainURLPath)
	opURL := g.httpURL("/operator" + chainURLPath)
	pubURL := g.httpURL(chainURLPath)
	auth := basicAuth(operatorUser, operatorPassword)
	newBlock := request(1, "dev_newBlock", []any{map[string]any{"count": 1}})

	t.Run("auth-required", func(t *testing.T) {
		g.alive(t)
		before := n.bestNumber(t)
		for name, hdr := range map[string]http.Header{
			"no credentials":  nil,
			"wrong password":  basicAuth(operatorUser, "wrong"),
			"wrong user":      basicAuth("admin", operatorPassword),
			"malformed basic": {"Authorization": {"Basic !!!"}},
		} {
			r, err := postRaw(opURL, newBlock, hdr)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if r.Status != http.StatusUnauthorized {
				t.Errorf("operator route with %s: %s, want HTTP 401", name, r)
			}
			_, err = wsDial(g.wsURL("/operator"+chainURLPath), hdr, callTimeout)
			var he *wsHandshakeError
			if !errors.As(err, &he) || he.Status != http.StatusUnauthorized {
				t.Errorf("operator websocket with %s: %v, want handshake refused with 401", name, err)
			}
		}
		if after := n.bestNumber(t); after != before {
			t.Errorf("block number moved %d -> %d without operator credentials", before, after)
		}
	})

	t.Run("forwards-allowed-unsafe", func(t *testing.T) {
		g.alive(t)
		before := n.bestNumber(t)
		r, err := postRaw(opURL, newBlock, auth)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := r.single()
		if err != nil {
			t.Fatal(err)
		}
		var hash string
		if resp.Error != nil || json.Unmarshal(resp.Result, &hash) != nil || len(hash) != 66 {
			t.Errorf("dev_newBlock via the operator route over HTTP: %s, want a block hash", r)
		}
		if after := n.bestNumber(t); after != before+1 {
			t.Errorf("operator HTTP dev_newBlock: block number %d -> %d, want +1", before, after)
		}

		ws, err := wsDial(g.wsURL("/operator"+chainURLPath), auth, callTimeout)
		if err != nil {
			t.Fatalf("operator websocket: %v", err)
		}
		defer ws.Close()
		wsResp, raw, err := wsCall(ws, string(request(2, "dev_newBlock", []any{map[string]any{"count": 1}})), "2")
		if err != nil || wsResp.Error != nil || json.Unmarshal(wsResp.Result, &hash) != nil || len(hash) != 66 {
			t.Errorf("dev_newBlock via the operator route over WS: %v %s, want a block hash", err, raw)
		}
		if after := n.bestNumber(t); after != before+2 {
			t.Errorf("operator WS dev_newBlock: block number %d -> %d, want +2", before, after)
		}
		// safe methods work on the operator route too
		if resp, raw, err := wsCall(ws, string(request(3, "system_chain", nil)), "3"); err != nil || string(resp.Result) != `"westend_dev"` {
			t.Errorf("system_chain via the operator route: %v %s", err, raw)
		}

		// author_rotateKeys: Chopsticks does not implement it, so the node's
		// own "not found" must come back (not the gateway's denial).
		direct, err := postRaw(n.httpURL(), request(4, "author_rotateKeys", nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		op, err := postRaw(opURL, request(4, "author_rotateKeys", nil), auth)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := postRaw(pubURL, request(4, "author_rotateKeys", nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		dResp, derr := direct.single()
		oResp, oerr := op.single()
		pResp, perr := pub.single()
		switch {
		case derr != nil || oerr != nil || perr != nil:
			t.Errorf("author_rotateKeys: bad replies: %v %v %v", derr, oerr, perr)
		case string(oResp.ID) != "4":
			t.Errorf("author_rotateKeys via the operator route: id %s, want 4", oResp.ID)
		case dResp.Error != nil && (oResp.Error == nil || oResp.Error.Message != dResp.Error.Message):
			t.Errorf("author_rotateKeys via the operator route was not forwarded: got %s, the node itself says %s", op, direct)
		case dResp.Error == nil && oResp.Result == nil:
			t.Errorf("author_rotateKeys via the operator route: %s, the node itself returns a result", op)
		case bytes.Equal(op.Body, pub.Body) || (pResp.Error != nil && oResp.Error != nil && pResp.Error.String() == oResp.Error.String()):
			t.Errorf("author_rotateKeys: operator reply %s is the public route's denial %s", op, pub)
		}
		t.Logf("author_rotateKeys: direct %v | operator %v | public %v", direct, op, pub)
	})

	t.Run("public-still-refuses", func(t *testing.T) {
		g.alive(t)
		before := n.bestNumber(t)
		for _, hdr := range []http.Header{nil, auth} { // credentials do not unlock the public route
			for _, m := range []string{"dev_newBlock", "author_rotateKeys", "author_insertKey", "author_hasSessionKeys"} {
				params := any(nil)
				if m == "dev_newBlock" {
					params = []any{map[string]any{"count": 1}}
				}
				r, err := postRaw(pubURL, request(7, m, params), hdr)
				if err != nil {
					t.Errorf("public %s: %v", m, err)
					continue
				}
				if resp, err := r.single(); err != nil || resp.Result != nil || resp.Error.code() != -32601 {
					t.Errorf("public route %s (auth header: %v): %s, want -32601", m, hdr != nil, r)
				}
			}
		}
		ws, err := wsDial(g.wsURL(chainURLPath), nil, callTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		if resp, raw, err := wsCall(ws, string(newBlock), "1"); err != nil || resp.Result != nil || resp.Error.code() != -32601 {
			t.Errorf("public websocket dev_newBlock: %v %s, want -32601", err, raw)
		}
		time.Sleep(300 * time.Millisecond)
		if after := n.bestNumber(t); after != before {
			t.Errorf("public route: block number moved %d -> %d", before, after)
		}
	})
	g.alive(t)
}

// ---------------------------------------------------------------------------

// TestBadInput: hostile or broken requests get clear errors and leave the
// gateway working.
func TestBadInput(t *testing.T) {
	n := realNode(t)
	g := startGateway(t, n, publicCaddyfile, nil, chainURLPath)
	url := g.httpURL(chainURLPath)
	wsURL := g.wsURL(chainURLPath)

	healthy := func(t *testing.T, after string) {
		t.Helper()
		g.alive(t)
		var chain string
		if err := rpcResult(url, "system_chain", nil, &chain); err != nil || chain != "westend_dev" {
			t.Errorf("after %s: HTTP system_chain: %q %v", after, chain, err)
		}
		ws, err := wsDial(wsURL, nil, callTimeout)
		if err != nil {
			t.Errorf("after %s: websocket: %v", after, err)
			return
		}
		defer ws.Close()
		if resp, raw, err := wsCall(ws, string(request(9, "system_chain", nil)), "9"); err != nil || string(resp.Result) != `"westend_dev"` {
			t.Errorf("after %s: WS system_chain: %v %s", after, err, raw)
		}
	}

	// errorReply: the reply is an HTTP error status or a JSON-RPC error
	// (object or array of errors); never a result.
	errorReply := func(r *httpReply) (codes []int, ok bool) {
		if r.Status >= 400 {
			return nil, true
		}
		body := bytes.TrimSpace(r.Body)
		if len(body) > 0 && body[0] == '[' {
			resps, err := r.batch()
			if err != nil || len(resps) == 0 {
				return nil, false
			}
			for _, x := range resps {
				if x.Result != nil || x.Error == nil {
					return nil, false
				}
				codes = append(codes, x.Error.code())
			}
			return codes, true
		}
		resp, err := r.single()
		if err != nil || resp.Result != nil || resp.Error == nil {
			return nil, false
		}
		return []int{resp.Error.code()}, true
	}

	t.Run("malformed-json", func(t *testing.T) {
		g.alive(t)
		for _, body := range []string{`{"jsonrpc":"2.0","id":1,"method":`, `not json at all`, `{"jsonrpc":"2.0","id":1,"method":"system_chain","params":[}`} {
			r, err := postRaw(url, []byte(body), nil)
			if err != nil {
				t.Errorf("HTTP %q: %v", body, err)
				continue
			}
			if resp, err := r.single(); err != nil || resp.Error.code() != -32700 || resp.Result != nil {
				t.Errorf("HTTP %q: %s, want error -32700", body, r)
			} else if string(resp.ID) != "null" {
				t.Errorf("HTTP %q: parse error reply id %s, want null", body, resp.ID)
			}
		}
		ws, err := wsDial(wsURL, nil, callTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		if resp, raw, err := wsCall(ws, `{"jsonrpc":"2.0","id":1,"method":`, "null"); err != nil || resp.Error.code() != -32700 {
			t.Errorf("WS malformed JSON: %v %s, want error -32700 with id null", err, raw)
		}
		// the same connection keeps working
		if resp, raw, err := wsCall(ws, string(request(2, "system_chain", nil)), "2"); err != nil || string(resp.Result) != `"westend_dev"` {
			t.Errorf("WS system_chain on the same connection after a parse error: %v %s", err, raw)
		}
		healthy(t, "malformed JSON")
	})

	t.Run("wrong-types", func(t *testing.T) {
		g.alive(t)
		cases := []struct {
			body  string
			codes []int
		}{
			{`{"jsonrpc":"2.0","id":1,"method":123,"params":[]}`, []int{-32600}},
			{`{"jsonrpc":"2.0","id":1,"method":null,"params":[]}`, []int{-32600}},
			{`{"jsonrpc":"2.0","id":1,"method":["system_chain"],"params":[]}`, []int{-32600}},
			{`{"jsonrpc":"2.0","id":1,"params":[]}`, []int{-32600}},
			{`{"jsonrpc":"2.0","id":{"a":1},"method":"system_chain","params":[]}`, []int{-32600}},
			{`{"jsonrpc":"2.0","id":1,"method":"system_chain","params":"x"}`, []int{-32600, -32602}},
			{`42`, []int{-32600}},
			{`"system_chain"`, []int{-32600}},
			{`[]`, []int{-32600}},
			{`[1,2]`, []int{-32600}},
		}
		ws, err := wsDial(wsURL, nil, callTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		for _, c := range cases {
			r, err := postRaw(url, []byte(c.body), nil)
			if err != nil {
				t.Errorf("HTTP %s: %v", c.body, err)
				continue
			}
			codes, ok := errorReply(r)
			if !ok || len(codes) == 0 || slices.ContainsFunc(codes, func(code int) bool { return !slices.Contains(c.codes, code) }) {
				t.Errorf("HTTP %s: %s, want JSON-RPC error %v", c.body, r, c.codes)
			}
			// over WS: the reply (object or array) must be errors with the same codes
			if err := ws.writeText(c.body); err != nil {
				t.Fatal(err)
			}
			_, raw, err := ws.readMessage(time.Now().Add(callTimeout))
			if err != nil {
				t.Errorf("WS %s: %v", c.body, err)
				continue
			}
			wcodes, ok := errorReply(&httpReply{Status: 200, Body: raw})
			if !ok || len(wcodes) == 0 || slices.ContainsFunc(wcodes, func(code int) bool { return !slices.Contains(c.codes, code) }) {
				t.Errorf("WS %s: %s, want JSON-RPC error %v", c.body, truncate(string(raw), 300), c.codes)
			}
		}
		healthy(t, "wrong types")
	})

	t.Run("10MB-body", func(t *testing.T) {
		g.alive(t)
		big := []byte(`{"jsonrpc":"2.0","id":1,"method":"system_chain","params":["` + strings.Repeat("a", 10<<20) + `"]}`)
		r, err := postRaw(url, big, nil)
		if err != nil {
			t.Errorf("HTTP 10 MB body: transport error %v, want HTTP 413 or a JSON-RPC error", err)
		} else if _, ok := errorReply(r); !ok {
			t.Errorf("HTTP 10 MB body: %s, want HTTP 413 or a JSON-RPC error", r)
		} else {
			t.Logf("HTTP 10 MB body: %s", truncate(r.String(), 200))
		}
		healthy(t, "10 MB HTTP body")

		ws, err := wsDial(wsURL, nil, callTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		werr := make(chan error, 1)
		go func() { werr <- ws.writeText(string(big)) }()
		_, raw, err := ws.readMessage(time.Now().Add(callTimeout))
		var ce *wsCloseError
		switch {
		case errors.As(err, &ce):
			t.Logf("WS 10 MB message: closed with %d %q", ce.Code, ce.Reason)
		case isTimeout(err):
			t.Errorf("WS 10 MB message: no reply and no close within %v", callTimeout)
		case err != nil:
			t.Logf("WS 10 MB message: connection dropped (%v; write: %v)", err, <-werr)
		default:
			if _, ok := errorReply(&httpReply{Status: 200, Body: raw}); !ok {
				t.Errorf("WS 10 MB message: %s, want an error or a close", truncate(string(raw), 300))
			}
		}
		healthy(t, "10 MB WS message")
	})

	t.Run("batch-too-large", func(t *testing.T) {
		g.alive(t)
		calls := make([]string, 101)
		for i := range calls {
			calls[i] = string(request(i+1, "system_chain", nil))
		}
		batch := "[" + strings.Join(calls, ",") + "]"
		r, err := postRaw(url, []byte(batch), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := errorReply(r); !ok {
			t.Errorf("HTTP batch of 101: %s, want an error", truncate(r.String(), 300))
		}
		ws, err := wsDial(wsURL, nil, callTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		if err := ws.writeText(batch); err != nil {
			t.Fatal(err)
		}
		_, raw, err := ws.readMessage(time.Now().Add(callTimeout))
		var ce *wsCloseError
		if errors.As(err, &ce) {
			t.Logf("WS batch of 101: closed with %d %q", ce.Code, ce.Reason)
		} else if err != nil {
			t.Errorf("WS batch of 101: %v", err)
		} else if _, ok := errorReply(&httpReply{Status: 200, Body: raw}); !ok {
			t.Errorf("WS batch of 101: %s, want an error", truncate(string(raw), 300))
		}
		// a small batch still works
		r, err = postRaw(url, []byte("["+strings.Join(calls[:3], ",")+"]"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resps, err := r.batch(); err != nil || len(resps) != 3 || resps[0].Result == nil {
			t.Errorf("HTTP batch of 3: %s", truncate(r.String(), 300))
		}
		healthy(t, "batch of 101")
	})

	t.Run("deep-nesting", func(t *testing.T) {
		g.alive(t)
		const depth = 100000
		bodies := map[string]string{
			"closed":   `{"jsonrpc":"2.0","id":1,"method":"system_chain","params":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`,
			"unclosed": `{"jsonrpc":"2.0","id":1,"method":"system_chain","params":` + strings.Repeat("[", depth),
			"objects":  `{"jsonrpc":"2.0","id":1,"method":"system_chain","params":[` + strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth) + `]}`,
		}
		ws, err := wsDial(wsURL, nil, callTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		for name, body := range bodies {
			r, err := postRaw(url, []byte(body), nil)
			if err != nil {
				t.Errorf("HTTP nesting %s: %v", name, err)
			} else if _, ok := errorReply(r); !ok {
				t.Errorf("HTTP nesting %s: %s, want an error", name, truncate(r.String(), 300))
			}
			if ws == nil {
				continue
			}
			if err := ws.writeText(body); err != nil {
				t.Errorf("WS nesting %s: write: %v", name, err)
				ws = nil
				continue
			}
			_, raw, err := ws.readMessage(time.Now().Add(callTimeout))
			var ce *wsCloseError
			if errors.As(err, &ce) {
				t.Logf("WS nesting %s: closed with %d %q", name, ce.Code, ce.Reason)
				ws = nil
			} else if err != nil {
				t.Errorf("WS nesting %s: %v", name, err)
				ws = nil
			} else if _, ok := errorReply(&httpReply{Status: 200, Body: raw}); !ok {
				t.Errorf("WS nesting %s: %s, want an error", name, truncate(string(raw), 300))
			}
		}
		healthy(t, "deep nesting")
	})

	t.Run("binary-frame", func(t *testing.T) {
		g.alive(t)
		ws, err := wsDial(wsURL, nil, callTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		if err := ws.writeBinary(request(1, "system_chain", nil)); err != nil {
			t.Fatal(err)
		}
		_, raw, err := ws.readMessage(time.Now().Add(callTimeout))
		var ce *wsCloseError
		switch {
		case errors.As(err, &ce):
			if ce.Code == 1005 || ce.Code == 1000 {
				t.Errorf("binary frame: closed with code %d %q, want a close code that gives the reason (e.g. 1003)", ce.Code, ce.Reason)
			} else {
				t.Logf("binary frame: closed with %d %q", ce.Code, ce.Reason)
			}
		case err != nil:
			t.Errorf("binary frame: %v (want an error reply or a close frame with a reason)", err)
		default:
			if _, ok := errorReply(&httpReply{Status: 200, Body: raw}); !ok {
				t.Errorf("binary frame: reply %s, want an error or a close with a reason", truncate(string(raw), 300))
			} else {
				t.Logf("binary frame: %s", truncate(string(raw), 300))
			}
		}
		healthy(t, "binary frame")
	})

	t.Run("paths", func(t *testing.T) {
		g.alive(t)
		// unknown chain: HTTP 404 with a JSON-RPC error body
		r, err := postRaw(g.httpURL("/nosuchchain"), request(1, "system_chain", nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != http.StatusNotFound {
			t.Errorf("unknown chain: %s, want HTTP 404", r)
		}
		if resp, err := r.single(); err != nil || resp.Error == nil || resp.Result != nil {
			t.Errorf("unknown chain: body %q is not a JSON-RPC error", truncate(string(r.Body), 300))
		}
		_, err = wsDial(g.wsURL("/nosuchchain"), nil, callTimeout)
		var he *wsHandshakeError
		if !errors.As(err, &he) || he.Status != http.StatusNotFound {
			t.Errorf("websocket to an unknown chain: %v, want handshake refused with 404", err)
		}

		// project id path
		var chain string
		if err := rpcResult(g.httpURL(chainURLPath+"/"+projectID), "system_chain", nil, &chain); err != nil || chain != "westend_dev" {
			t.Errorf("HTTP %s/%s: %q %v", chainURLPath, projectID, chain, err)
		}
		ws, err := wsDial(g.wsURL(chainURLPath+"/"+projectID), nil, callTimeout)
		if err != nil {
			t.Fatalf("websocket %s/%s: %v", chainURLPath, projectID, err)
		}
		defer ws.Close()
		if resp, raw, err := wsCall(ws, string(request(1, "system_chain", nil)), "1"); err != nil || string(resp.Result) != `"westend_dev"` {
			t.Errorf("WS %s/%s system_chain: %v %s", chainURLPath, projectID, err, raw)
		}
		healthy(t, "paths")
	})

	g.alive(t)
}
