package handler_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// slowNode is a node whose slowMethod takes about d on one of workers: like a
// real node it runs a few calls at once and queues the rest in arrival
// order. peak is the most calls it held (running or queued) at once.
type slowNode struct {
	*fakenode.Node
	held, peak atomic.Int64
}

const slowMethod = "system_accountNextIndex" // a read, never cached

func startSlowNode(t *testing.T, workers int, d time.Duration) *slowNode {
	n := &slowNode{Node: fakenode.Start(t)}
	sem := make(chan struct{}, workers)
	n.Handle(slowMethod, func(json.RawMessage) (any, *fakenode.Error) {
		h := n.held.Add(1)
		defer n.held.Add(-1)
		for p := n.peak.Load(); h > p && !n.peak.CompareAndSwap(p, h); p = n.peak.Load() {
		}
		sem <- struct{}{} // waiting senders are served in order
		// 0.8d to 1.2d: calls started together do not all end together,
		// as on a real node.
		time.Sleep(d*4/5 + rand.N(d*2/5))
		<-sem
		return 1, nil
	})
	return n
}

// flood keeps depth calls of slowMethod in flight on a new WebSocket
// until stop is called.
func flood(t *testing.T, url string, depth int, ip string, failed *atomic.Int64) (stop func()) {
	conn := dialFrom(t, url, ip)
	slots := make(chan struct{}, depth)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // replies free slots
		defer wg.Done()
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if bytes.Contains(msg, []byte(`"error"`)) {
				failed.Add(1)
			}
			<-slots
		}
	}()
	go func() {
		defer wg.Done()
		for id := 0; ; id++ {
			select {
			case slots <- struct{}{}:
			case <-done:
				return
			}
			msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":["5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"]}`, id, slowMethod)
			if conn.WriteMessage(websocket.TextMessage, []byte(msg)) != nil {
				return
			}
		}
	}()
	return func() {
		close(done)
		_ = conn.Close()
		wg.Wait()
	}
}

// callLatencies makes n calls of slowMethod one after the other and
// returns the slowest (with n < 100, the p99).
func callLatencies(t *testing.T, conn *websocket.Conn, n int) time.Duration {
	t.Helper()
	var took []time.Duration
	for i := range n {
		start := time.Now()
		msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":["5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"]}`, i, slowMethod)
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, reply, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":1}`, i); string(reply) != want {
			t.Fatalf("victim's call: %s, want %s", reply, want)
		}
		took = append(took, time.Since(start))
	}
	return slices.Max(took)
}

// dialFrom opens a WebSocket as client ip (X-Forwarded-For, which the
// gateways of these tests trust from loopback); "" dials as loopback.
func dialFrom(t *testing.T, url, ip string) *websocket.Conn {
	t.Helper()
	hdr := http.Header{}
	if ip != "" {
		hdr.Set("X-Forwarded-For", ip)
	}
	conn, resp, err := websocket.DefaultDialer.Dial(url, hdr)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial as %q: %v (status %d)", ip, err, status)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// startTrusting runs a gateway that takes the client IP from
// X-Forwarded-For when the request comes from loopback.
func startTrusting(t *testing.T, chainOpts, site string, nodeURL string) *testgw.Gateway {
	t.Helper()
	gw := &testgw.Gateway{Port: testgw.FreePort(t)}
	cf := gw.Caddyfile(chainBlock("dev", chainOpts, nodeURL), site)
	cf = strings.Replace(cf, "\telara {", "\tservers {\n\t\ttrusted_proxies static 127.0.0.1/8\n\t}\n\telara {", 1)
	testgw.Load(t, cf)
	t.Cleanup(func() { stopCaddy(t) })
	return gw
}

// One connection's (or one IP's) flood of an uncached slow method must not
// delay another connection's calls, and the flooder's own calls over its
// bound wait rather than fail: with fair admission (the defaults' per-connection
// bound and a chain bound near what the node runs at once) the second
// client's p99 stays near its p99 without the flood, measured in the same
// run. The same scenario with both bounds turned off shows the node's
// queue behind the flood, so the test fails if fairness breaks.
func TestFloodingConnectionDoesNotDelayOthers(t *testing.T) {
	const (
		workers = 8
		service = 100 * time.Millisecond
		depth   = 64 // a connection's concurrent calls (the reader's cap)
		floods  = 2
	)
	cases := []struct {
		name      string
		chainOpts string
		site      string
		calls     int
		// floodIP is where the flood comes from ("": the victim's IP).
		floodIP string
		floods  int
		// fair: p99 with flood <= 3x without; unfair: > 3x.
		fair bool
	}{
		{"connections of one IP", "max_upstream_calls " + fmt.Sprint(workers), "\telara_rpc", 20, "", floods, true},
		{"another IP with many connections", "max_upstream_calls " + fmt.Sprint(workers), "\telara_rpc", 20, "203.0.113.1", 6, true},
		{"bounds off", "max_upstream_calls 100000", "\telara_rpc {\n\t\tmax_calls_in_flight 100000\n\t}", 3, "", floods, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := startSlowNode(t, workers, service)
			gw := startTrusting(t, "request_timeout 30s\nhealth_interval 200ms\n"+tc.chainOpts, tc.site, node.URL())
			victim := dialFrom(t, gw.WS("/dev"), "")
			callLatencies(t, victim, 1) // warm-up: upstream connections
			base := callLatencies(t, victim, tc.calls)

			var failed atomic.Int64
			var stops []func()
			for range tc.floods {
				stops = append(stops, flood(t, gw.WS("/dev"), depth, tc.floodIP, &failed))
			}
			// Let the flood fill whatever queue it can.
			deadline := time.Now().Add(5 * time.Second)
			for node.held.Load() < int64(workers) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(3 * service)
			flooded := callLatencies(t, victim, tc.calls)
			peak := node.peak.Load()
			for _, stop := range stops {
				stop()
			}
			t.Logf("p99 alone %v, with %d connections flooding %v (%.1fx); node held at most %d calls",
				base, tc.floods, flooded, float64(flooded)/float64(base), peak)
			if n := failed.Load(); n > 0 {
				t.Errorf("%d of the flooders' calls failed: calls over a bound must wait", n)
			}
			if tc.fair {
				if flooded > 3*base {
					t.Errorf("with the flood, p99 %v > 3x the p99 alone (%v)", flooded, base)
				}
				// max_upstream_calls holds: the node saw no more at once
				// (the victim's included).
				if peak > workers {
					t.Errorf("node held %d calls at once, max_upstream_calls is %d", peak, workers)
				}
			} else if flooded <= 3*base {
				t.Errorf("without the bounds the flood should delay the victim (p99 %v, alone %v): the scenario shows nothing", flooded, base)
			}
		})
	}
}

// A connection has at most max_calls_in_flight calls at the nodes; the
// rest of its calls wait their turn and then succeed.
func TestCallsInFlightPerConnection(t *testing.T) {
	cases := []struct {
		name string
		site string
		want int64
	}{
		{"default", "\telara_rpc", 32},
		{"configured", "\telara_rpc {\n\t\tmax_calls_in_flight 5\n\t}", 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := startSlowNode(t, 1000, 30*time.Millisecond)
			gw := startTrusting(t, "request_timeout 30s\nhealth_interval 200ms\nmax_upstream_calls 100000", tc.site, node.URL())
			var failed atomic.Int64
			stop := flood(t, gw.WS("/dev"), 64, "", &failed)
			waitFor(t, "the node to hold the connection's calls", func() bool { return node.held.Load() >= tc.want })
			time.Sleep(200 * time.Millisecond)
			stop()
			if peak := node.peak.Load(); peak != tc.want {
				t.Errorf("node held at most %d calls of the connection, want %d (max_calls_in_flight)", peak, tc.want)
			}
			if n := failed.Load(); n > 0 {
				t.Errorf("%d calls over the bound failed instead of waiting", n)
			}
		})
	}
}
