package handler_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/elara-gateway/elara/cacher/cachertest"
	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
	"github.com/elara-gateway/elara/jobs"
)

func statsSummary(t *testing.T, admin, query string) jobs.Summary {
	t.Helper()
	status, body := adminDo(t, "GET", admin+"/elara/stats/summary?"+query, "")
	if status != 200 {
		t.Fatalf("summary: %d %s", status, body)
	}
	var s jobs.Summary
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// noteCounter is a raw WebSocket client that counts the notifications it
// receives until the connection ends.
type noteCounter struct {
	conn *websocket.Conn
	got  atomic.Int64
	done chan struct{}
}

func dialNoteCounter(t *testing.T, url string) *noteCounter {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &noteCounter{conn: conn, done: make(chan struct{})}
	t.Cleanup(func() { _ = conn.Close() })
	go func() {
		defer close(c.done)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if strings.HasPrefix(string(data), `{"jsonrpc":"2.0","method":`) {
				c.got.Add(1)
			}
		}
	}()
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"chain_subscribeNewHeads","params":[]}`)); err != nil {
		t.Fatal(err)
	}
	return c
}

// await makes blocks until the client received n notifications.
func (c *noteCounter) await(t *testing.T, node *fakenode.Node, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.got.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d notifications, want %d", c.got.Load(), n)
		}
		node.Chain().NewBlock()
		time.Sleep(20 * time.Millisecond)
	}
}

// closed waits until the gateway closed the connection.
func (c *noteCounter) closed(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the WebSocket was not closed by the stop")
	}
}

// TestStatsSessionEndsSurviveStop: caddy stop closes open WebSockets and
// what they record as they end (the notifications summed, the
// subscriptions and connections closed) still reaches the store, whatever
// order Caddy cleans the modules up in (a map's: several rounds). With
// Redis the current connections and subscriptions come back to 0.
func TestStatsSessionEndsSurviveStop(t *testing.T) {
	for _, store := range []string{"bolt", "redis"} {
		t.Run(store, func(t *testing.T) {
			node := fakenode.Start(t)
			dir := t.TempDir()
			port, adminPort := testgw.FreePort(t), testgw.FreePort(t)
			admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
			start := func() *testgw.Gateway { return startStatsGateway(t, node, dir, port, adminPort) }
			if store == "redis" {
				rd := cachertest.StartRedis(t)
				start = func() *testgw.Gateway {
					g := &testgw.Gateway{Port: port}
					global := chainBlock("dev", testChainOpts, node.URL()) + fmt.Sprintf("\t\tredis %s\n", rd.Addr)
					testgw.Load(t, strings.Replace(g.Caddyfile(global, "	elara_rpc"), "admin off", fmt.Sprintf("admin 127.0.0.1:%d", adminPort), 1))
					return g
				}
			}
			t.Cleanup(func() { stopCaddy(t) })
			var delivered int64
			// settled waits for the aggregates of what the clients saw.
			settled := func(stage string) {
				t.Helper()
				deadline := time.Now().Add(15 * time.Second)
				for {
					s := statsSummary(t, admin, "chain=dev")
					if s.Total.Notifications == delivered && s.Connections.Current == 0 && s.Subscriptions.Current == 0 {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: %d notifications stored, want %d (the ones delivered before each stop); connections %+v subscriptions %+v",
							stage, s.Total.Notifications, delivered, s.Connections, s.Subscriptions)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			for round := range 6 {
				gw := start()
				settled(fmt.Sprintf("round %d", round))
				c := dialNoteCounter(t, gw.WS("/dev"))
				c.await(t, node, 3)
				// The session is still open: stopping closes it.
				stopCaddy(t)
				c.closed(t)
				delivered += c.got.Load()
			}
			start()
			settled("after the last stop")
		})
	}
}

// TestStatsBinaryFrame: a binary WebSocket frame is refused with a parse
// error and recorded as a failed call, like a body that is not JSON.
func TestStatsBinaryFrame(t *testing.T) {
	node := fakenode.Start(t)
	dir := t.TempDir()
	port, adminPort := testgw.FreePort(t), testgw.FreePort(t)
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	gw := startStatsGateway(t, node, dir, port, adminPort)
	t.Cleanup(func() { stopCaddy(t) })
	ws := testgw.Dial(t, gw.WS("/dev"))
	if err := ws.Conn.WriteMessage(websocket.BinaryMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"system_chain"}`)); err != nil {
		t.Fatal(err)
	}
	if r := ws.Wait("null", 10*time.Second); r.Error == nil || r.Error.Code != -32700 {
		t.Fatalf("binary frame: %s, want a -32700 error", r.Raw)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := statsSummary(t, admin, "chain=dev")
		if s.Total.Calls == 1 && s.Total.Errors == 1 && s.ErrorsByCode["-32700"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the binary frame is not a failed call in the statistics: %+v", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStatsSessionKeptAcrossReloadEndsInTheNewPipeline: a reload that
// changes the statistics settings keeps a WebSocket (its chain is the
// same); its records then go to the new pipeline, and when caddy stop
// closes it, its end is still written.
func TestStatsSessionKeptAcrossReloadEndsInTheNewPipeline(t *testing.T) {
	node := fakenode.Start(t)
	dir := t.TempDir()
	port, adminPort := testgw.FreePort(t), testgw.FreePort(t)
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	load := func(flush string) *testgw.Gateway {
		g := &testgw.Gateway{Port: port}
		global := chainBlock("dev", testChainOpts, node.URL()) +
			fmt.Sprintf("\t\tstats {\n\t\t\tdir %s\n\t\t\tflush_interval %s\n\t\t}\n", dir, flush)
		testgw.Load(t, strings.Replace(g.Caddyfile(global, "\telara_rpc"), "admin off", fmt.Sprintf("admin 127.0.0.1:%d", adminPort), 1))
		return g
	}
	t.Cleanup(func() { stopCaddy(t) })
	var delivered int64
	for round := range 4 {
		gw := load("100ms")
		c := dialNoteCounter(t, gw.WS("/dev"))
		c.await(t, node, 1)
		load("150ms") // another pipeline; the session is kept
		c.await(t, node, 3)
		stopCaddy(t)
		c.closed(t)
		delivered += c.got.Load()
		load("100ms")
		if got := statsSummary(t, admin, "chain=dev").Total.Notifications; got != delivered {
			t.Fatalf("round %d: %d notifications stored, want %d", round, got, delivered)
		}
		stopCaddy(t)
	}
}
