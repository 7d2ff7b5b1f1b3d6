package e2e

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// hardeningCaddyfile puts a forwarder (NODE_A) between the gateway and
// Chopsticks, so the test counts the upstream connections the gateway
// opens and the requests that reach the node.
const hardeningCaddyfile = `{
	admin 127.0.0.1:@@ADMIN_PORT@@
	default_bind 127.0.0.1
	auto_https off
	skip_install_trust
	elara {
		chain westend {
			node @@NODE_A@@ {
				pool 2
			}
			health_interval 1m
			head_timeout 0s
		}
	}
}

http://127.0.0.1:@@HTTP_PORT@@ {
	elara_rpc
}
`

// badUTF8Call is a state_getStorage call whose params hold a byte that is
// not UTF-8, as the flooding client sent.
func badUTF8Call(id int) string {
	return fmt.Sprintf("{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"state_getStorage\",\"params\":[\"0x26aa\xff%d\"]}", id, id)
}

// A node closes a WebSocket whose text frame is not UTF-8 (checked here
// against Chopsticks itself); through the gateway such calls are refused
// with -32700 and never reach it: no upstream connection is lost, and
// another client's calls all succeed meanwhile.
func TestInvalidUTF8NeverCostsAnUpstreamConnection(t *testing.T) {
	n := realNode(t)

	t.Run("the node itself closes on it", func(t *testing.T) {
		ws, err := wsDial(n.wsURL(), nil, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		if err := ws.writeText(badUTF8Call(1)); err != nil {
			t.Fatal(err)
		}
		_, msg, err := ws.readMessage(time.Now().Add(callTimeout))
		var ce *wsCloseError
		if !errors.As(err, &ce) || ce.Code != 1007 {
			t.Fatalf("node answered %q, %v; want a close with 1007", msg, err)
		}
	})

	f := startForwarder(t, n.addr(), "")
	g := startGateway(t, n, hardeningCaddyfile, map[string]string{"NODE_A": f.wsURL()}, chainURLPath)
	// The gateway's connections to the node, once settled (the pool and
	// the health monitor's).
	live := f.liveConns()
	for deadline := time.Now().Add(30 * time.Second); ; {
		time.Sleep(time.Second)
		if now := f.liveConns(); now == live && live > 0 {
			break
		} else {
			live = now
		}
		if time.Now().After(deadline) {
			t.Fatalf("upstream connections never settled (%d)", live)
		}
	}
	f.mu.Lock()
	dialled := f.nextID
	f.mu.Unlock()

	// Another client works all along.
	good, err := wsDial(g.wsURL(chainURLPath), nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	var wg sync.WaitGroup
	failures := make(chan string, 100)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 40 {
			id := fmt.Sprint(1000 + i)
			resp, raw, err := wsCall(good, string(request(1000+i, "system_chain", nil)), id)
			if err != nil || resp.Error != nil {
				failures <- fmt.Sprintf("%v %s", err, raw)
			}
		}
	}()

	bad, err := wsDial(g.wsURL(chainURLPath), nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	const want = `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: invalid UTF-8"}}`
	for i := range 20 {
		if err := bad.writeText(badUTF8Call(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		_, msg, err := bad.readMessage(time.Now().Add(callTimeout))
		if err != nil || string(msg) != want {
			t.Fatalf("reply %d: %q, %v; want %s", i, msg, err, want)
		}
	}
	// The same bytes as a binary frame, and over HTTP.
	if err := bad.writeBinary([]byte(badUTF8Call(99))); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := bad.readMessage(time.Now().Add(callTimeout)); err != nil || !strings.Contains(string(msg), `"code":-32700`) {
		t.Fatalf("binary frame: %q, %v", msg, err)
	}
	r, err := postRaw(g.httpURL(chainURLPath), []byte(badUTF8Call(100)), nil)
	if err != nil || string(r.Body) != want {
		t.Fatalf("HTTP: %v %v", r, err)
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Errorf("another client's call failed: %s", f)
	}

	g.alive(t)
	f.mu.Lock()
	nowDialled := f.nextID
	f.mu.Unlock()
	if nowDialled != dialled || f.liveConns() != live {
		t.Errorf("upstream connections: %d dialled (was %d), %d live (was %d); want none lost", nowDialled, dialled, f.liveConns(), live)
	}
	if c := f.requestCount("state_getStorage"); c != 0 {
		t.Errorf("the node received %d of the refused calls", c)
	}
}

// hardeningPolicyCaddyfile limits one route by family and bounds the send
// queue in bytes, so both are checked against the node.
const hardeningPolicyCaddyfile = globalOptionsTemplate + `
http://127.0.0.1:@@HTTP_PORT@@ {
	elara_rpc {
		deny chain_subscribeNewHeads
		send_queue_bytes 4MiB
	}
}
`

// Through the built binary: a deny entry covers the method's aliases, and
// a client that does not read while runtime metadata replies queue is
// closed with 1008 naming send_queue_bytes.
func TestPolicyFamilyAndSendQueueBytes(t *testing.T) {
	n := realNode(t)
	g := startGateway(t, n, hardeningPolicyCaddyfile, nil, chainURLPath)

	t.Run("deny covers aliases", func(t *testing.T) {
		ws, err := wsDial(g.wsURL(chainURLPath), nil, callTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		for i, m := range []string{"chain_subscribeNewHeads", "chain_subscribeNewHead", "subscribe_newHead", "unsubscribe_newHead"} {
			id := fmt.Sprint(i + 1)
			resp, raw, err := wsCall(ws, string(request(i+1, m, nil)), id)
			if err != nil || resp.Error == nil || resp.Error.code() != -32601 {
				t.Errorf("%s: %s %v, want -32601", m, raw, err)
			}
		}
		resp, raw, err := wsCall(ws, string(request(9, "chain_subscribeFinalizedHeads", nil)), "9")
		if err != nil || resp.Error != nil {
			t.Errorf("another family: %s %v", raw, err)
		}
	})

	t.Run("a client that does not read is closed at send_queue_bytes", func(t *testing.T) {
		ws, err := wsDial(g.wsURL(chainURLPath), nil, callTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		// Westend's metadata is about 1 MiB of hex: 300 replies are far
		// more than socket buffers and the 4 MiB bound hold.
		for i := range 300 {
			if err := ws.writeText(string(request(i, "state_getMetadata", nil))); err != nil {
				break // the gateway may have closed already
			}
		}
		time.Sleep(3 * time.Second) // replies pile up while nothing reads
		deadline := time.Now().Add(60 * time.Second)
		replies := 0
		for {
			_, _, err := ws.readMessage(deadline)
			if err == nil {
				replies++
				continue
			}
			var ce *wsCloseError
			if !errors.As(err, &ce) || ce.Code != 1008 || !strings.Contains(ce.Reason, "send_queue_bytes") {
				t.Fatalf("after %d replies: %v; want close 1008 naming send_queue_bytes", replies, err)
			}
			t.Logf("closed with %d %q after %d replies", ce.Code, ce.Reason, replies)
			break
		}
		g.alive(t)
	})
}
