package e2e

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fairCaddyfile serves Chopsticks with the chain and handler options a
// test gives.
const fairCaddyfile = `{
	admin 127.0.0.1:@@ADMIN_PORT@@
	default_bind 127.0.0.1
	auto_https off
	skip_install_trust
	elara {
		@@APP_OPTS@@
		chain westend {
			node @@NODE_URL@@
			health_interval 1m
			head_timeout 0s
			@@CHAIN_OPTS@@
		}
	}
}

http://127.0.0.1:@@HTTP_PORT@@ {
	elara_rpc {
		@@SITE_OPTS@@
	}
}
`

// The per-IP bounds in the built binary, for clients from loopback (not
// exempt): a WebSocket over max_connections_per_ip is refused with 429
// and -32029, a subscribe over max_subscriptions_per_ip gets -32029 and
// the connection goes on serving.
func TestPerIPBoundsInTheBinary(t *testing.T) {
	n := realNode(t)
	g := startGateway(t, n, fairCaddyfile, map[string]string{
		"APP_OPTS":   "",
		"CHAIN_OPTS": "",
		"SITE_OPTS":  "max_connections_per_ip 3\n\t\tmax_subscriptions_per_ip 2",
	}, chainURLPath)
	var conns []*wsConn
	for i := range 3 {
		ws, err := wsDial(g.wsURL(chainURLPath), nil, callTimeout)
		if err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		defer ws.Close()
		conns = append(conns, ws)
	}
	_, err := wsDial(g.wsURL(chainURLPath), nil, callTimeout)
	var he *wsHandshakeError
	if !errors.As(err, &he) || he.Status != 429 || !strings.Contains(he.Body, `"code":-32029`) || !strings.Contains(he.Body, "max_connections_per_ip") {
		t.Fatalf("4th connection: %v; want 429 with -32029 naming max_connections_per_ip", err)
	}

	subs := []struct {
		ws     *wsConn
		method string
		params any
	}{
		{conns[0], "chain_subscribeNewHeads", []any{}},
		{conns[1], "state_subscribeStorage", []any{[]string{"0x26aa394eea5630e07c48ae0c9558cef702a5c1b19ab7a04f536c519aca4983ac"}}},
	}
	for i, s := range subs {
		resp, raw, err := wsCall(s.ws, string(request(10+i, s.method, s.params)), fmt.Sprint(10+i))
		if err != nil || resp.Error != nil {
			t.Fatalf("%s under the bound: %v %s", s.method, err, raw)
		}
	}
	resp, raw, err := wsCall(conns[2], string(request(20, "chain_subscribeFinalizedHeads", []any{})), "20")
	if err != nil || resp.Error == nil || resp.Error.code() != -32029 || !strings.Contains(resp.Error.Message, "max_subscriptions_per_ip") {
		t.Fatalf("3rd subscription: %v %s; want -32029 naming max_subscriptions_per_ip", err, raw)
	}
	resp, raw, err = wsCall(conns[2], string(request(21, "system_chain", nil)), "21")
	if err != nil || resp.Error != nil {
		t.Fatalf("the refused client's connection should go on serving: %v %s", err, raw)
	}
	g.alive(t)
}

// The flood's call: with the cache off, a read every node answers from
// its database (a runtime call takes Chopsticks most of a second on a
// busy machine, too long to measure a queue of them).
const floodMethod = "chain_getBlockHash"

var floodParams = []any{0}

// floodBinary keeps depth uncached calls in flight on a new connection
// until stop; failed counts error replies.
func floodBinary(t *testing.T, url string, depth int, failed *atomic.Int64) (stop func()) {
	ws, err := wsDial(url, nil, callTimeout)
	if err != nil {
		t.Fatal(err)
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		id := 0
		send := func() bool {
			id++
			return ws.writeText(string(request(id, floodMethod, floodParams))) == nil
		}
		for range depth {
			if !send() {
				return
			}
		}
		for !done.Load() {
			_, msg, err := ws.readMessage(time.Now().Add(60 * time.Second))
			if err != nil {
				return
			}
			if strings.Contains(string(msg), `"error"`) {
				failed.Add(1)
			}
			if !send() {
				return
			}
		}
	}()
	return func() {
		done.Store(true)
		_ = ws.Close()
		wg.Wait()
	}
}

// victimLatencies makes n uncached calls one after the other and returns
// their median and slowest (with n < 100, the p99).
func victimLatencies(t *testing.T, ws *wsConn, n, base int) (p50, p99 time.Duration) {
	t.Helper()
	var took []time.Duration
	for i := range n {
		start := time.Now()
		id := base + i
		resp, raw, err := wsCall(ws, string(request(id, floodMethod, floodParams)), fmt.Sprint(id))
		if err != nil || resp.Error != nil {
			t.Fatalf("victim's call: %v %s", err, raw)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	return took[len(took)/2], took[len(took)-1]
}

// One client flooding an uncached method through the built binary, in
// front of Chopsticks, delays another client's uncached calls far less
// with the fair-share bounds than with them turned off, in the same run,
// and none of the flood's calls fail. Sub-millisecond calls on a shared
// machine make p99s noisy, so the comparison is on medians; the p99
// bound itself is asserted in-process (handler
// TestFloodingConnectionDoesNotDelayOthers).
func TestFloodingClientInTheBinary(t *testing.T) {
	n := realNode(t)
	cases := []struct {
		name, chainOpts, siteOpts string
	}{
		{"fair", "max_upstream_calls 2", ""},
		{"bounds off", "max_upstream_calls 100000", "max_calls_in_flight 100000"},
	}
	// The flood only delays the victim while it keeps its calls in
	// flight, which needs CPU for the test's own client: under CI's
	// parallel packages it sometimes does not, and the unbounded case
	// then looks fair too. So the pair of runs is tried up to three times;
	// a gateway without fairness fails all three.
	const attempts = 3
	for attempt := 1; attempt <= attempts; attempt++ {
		median := map[string]time.Duration{}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%d", tc.name, attempt), func(t *testing.T) {
				g := startGateway(t, n, fairCaddyfile, map[string]string{"APP_OPTS": "cache off", "CHAIN_OPTS": tc.chainOpts, "SITE_OPTS": tc.siteOpts}, chainURLPath)
				victim, err := wsDial(g.wsURL(chainURLPath), nil, callTimeout)
				if err != nil {
					t.Fatal(err)
				}
				defer victim.Close()
				victimLatencies(t, victim, 3, 1) // warm-up
				a50, a99 := victimLatencies(t, victim, 30, 100)
				var failed atomic.Int64
				stop := floodBinary(t, g.wsURL(chainURLPath), 64, &failed)
				time.Sleep(time.Second) // the flood fills what it can
				f50, f99 := victimLatencies(t, victim, 30, 200)
				stop()
				median[tc.name] = f50
				t.Logf("victim alone: median %v, p99 %v; with one connection flooding: median %v, p99 %v", a50, a99, f50, f99)
				if n := failed.Load(); n > 0 {
					t.Errorf("%d of the flood's calls failed", n)
				}
				g.alive(t)
			})
		}
		if t.Failed() {
			return
		}
		// 5-8x on an idle machine; under CI's parallel packages the fair
		// case's median grows with the load, so the bound is 2x.
		if median["bounds off"] >= 2*median["fair"] {
			return
		}
		msg := fmt.Sprintf("with the flood, the victim's median is %v with the bounds and %v without: fairness should make it much less",
			median["fair"], median["bounds off"])
		if attempt == attempts {
			t.Error(msg)
		} else {
			t.Logf("attempt %d: %s; trying again", attempt, msg)
		}
	}
}
