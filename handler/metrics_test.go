package handler_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// metricsSite serves the gateway and Caddy's /metrics on one site.
const metricsSite = "\thandle /metrics {\n\t\tmetrics\n\t}\n\thandle {\n\t\telara_rpc\n\t}"

// scrape reads /metrics into series → value; a series is written as
// name{label="value",...} with the labels sorted, as Prometheus writes them.
func scrape(t *testing.T, gw *testgw.Gateway) (map[string]float64, string) {
	t.Helper()
	resp, err := http.Get(gw.HTTP("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: status %d: %s", resp.StatusCode, body.String())
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out, body.String()
}

// series names one series; labels are name, value pairs.
func series(name string, labels ...string) string {
	var parts []string
	for i := 0; i+1 < len(labels); i += 2 {
		parts = append(parts, fmt.Sprintf("%s=%q", labels[i], labels[i+1]))
	}
	slices.Sort(parts)
	return name + "{" + strings.Join(parts, ",") + "}"
}

func calls(chain, method, transport, outcome string) string {
	return series("elara_calls_total", "chain", chain, "method", method, "transport", transport, "outcome", outcome)
}

// Every path a call can take is counted once, under bounded labels, and
// the gauges follow sessions and subscriptions as clients come and go.
func TestMetricsCountEveryCall(t *testing.T) {
	node := fakenode.Start(t)
	// A chain name no other test uses: the collectors are process-wide.
	const chain = "metricsdev"
	global := chainBlock(chain, "request_timeout 300ms\nhealth_interval 200ms\nsubscription_grace 0s", node.URL())
	gw := testgw.Start(t, global, metricsSite)
	node.SetDrop("chain_getBlock", true)
	nodeLabel := node.Addr()
	url := gw.HTTP("/" + chain)
	post := func(body string) []byte {
		t.Helper()
		_, out := testgw.PostWithin(t, url, []byte(body), 30*time.Second)
		return out
	}

	before, _ := scrape(t, gw)
	subsKey := series("elara_upstream_subscriptions", "chain", chain, "node", nodeLabel)
	waitFor(t, "node ready", func() bool {
		m, _ := scrape(t, gw)
		before = m
		return m[series("elara_upstream_ready", "chain", chain, "node", nodeLabel)] == 1
	})

	// HTTP: single calls, a batch with a notification, refusals, bad input.
	post(`{"jsonrpc":"2.0","id":1,"method":"system_chain"}`)
	post(`{"jsonrpc":"2.0","id":2,"method":"system_chain"}`)
	post(`{"jsonrpc":"2.0","id":3,"method":"author_rotateKeys"}`)
	post(`{"jsonrpc":"2.0","id":4,"method":"made_upMethod"}`)
	post(`{"jsonrpc":"2.0","id":5,"method":"another_inventedName"}`)
	post(`[{"jsonrpc":"2.0","id":6,"method":"system_name"},{"jsonrpc":"2.0","id":7,"method":"system_chain"},{"jsonrpc":"2.0","method":"system_name"}]`)
	post(`{"jsonrpc":"2.0","id":8,"method":"chain_getBlock"}`)
	post(`{"jsonrpc":"2.0","id":9,"method":`)
	post(`{"jsonrpc":"2.0","id":10,"method":"chain_subscribeNewHeads"}`)

	// WebSocket: a call, a batch, a shared subscription, a sticky chainHead
	// follow with a call scoped to it.
	ws := testgw.Dial(t, gw.WS("/"+chain))
	ws.Call("system_chain", nil)
	ws.SendRaw([]byte(`[{"jsonrpc":"2.0","id":"b1","method":"system_name"},{"jsonrpc":"2.0","id":"b2","method":"author_rotateKeys"}]`))
	ws.RawBatch(10 * time.Second)
	subID := ws.Subscribe("chain_subscribeNewHeads", nil)
	follow := ws.Subscribe("chainHead_v1_follow", []any{false})
	// A block may be named once the follow has announced it.
	best := node.Chain().Best().Hash
	for n := ws.Next(5 * time.Second); !bytes.Contains(n.Raw, []byte(best)); n = ws.Next(5 * time.Second) {
	}
	if r := ws.Call("chainHead_v1_header", []any{follow, best}); r.Error != nil {
		t.Fatalf("chainHead_v1_header: %s", r.Raw)
	}

	during, _ := scrape(t, gw)
	if got := during[series("elara_client_websocket_sessions", "chain", chain)]; got != 1 {
		t.Errorf("websocket sessions %v, want 1", got)
	}
	if got := during[series("elara_client_subscriptions", "chain", chain)]; got != 2 {
		t.Errorf("client subscriptions %v, want 2", got)
	}
	if got, was := during[subsKey], before[subsKey]; got != was+2 {
		t.Errorf("upstream subscriptions %v, want %v (+1 shared new heads, +1 chainHead follow)", got, was+2)
	}

	if r := ws.Call("chain_unsubscribeNewHeads", []any{subID}); string(r.Result) != "true" {
		t.Fatalf("unsubscribe: %s", r.Raw)
	}
	_ = ws.Conn.Close()
	waitFor(t, "session and subscriptions released", func() bool {
		m, _ := scrape(t, gw)
		return m[series("elara_client_websocket_sessions", "chain", chain)] == 0 &&
			m[series("elara_client_subscriptions", "chain", chain)] == 0 && m[subsKey] == before[subsKey]
	})

	after, body := scrape(t, gw)
	cases := []struct {
		name   string
		series string
		want   float64
	}{
		{"http calls", calls(chain, "system_chain", "http", "ok"), 3},
		{"batch entries and a notification", calls(chain, "system_name", "http", "ok"), 2},
		{"denied over http", calls(chain, "author_rotateKeys", "http", "denied"), 1},
		{"unknown names are other", calls(chain, "other", "http", "-32601"), 2},
		{"upstream timeout", calls(chain, "chain_getBlock", "http", "timeout"), 1},
		{"parse error", calls(chain, "other", "http", "-32700"), 1},
		{"subscription over http", calls(chain, "chain_subscribeNewHeads", "http", "-32090"), 1},
		{"websocket call", calls(chain, "system_chain", "ws", "ok"), 1},
		{"websocket batch entry", calls(chain, "system_name", "ws", "ok"), 1},
		{"denied in a websocket batch", calls(chain, "author_rotateKeys", "ws", "denied"), 1},
		{"subscribe", calls(chain, "chain_subscribeNewHeads", "ws", "ok"), 1},
		{"unsubscribe", calls(chain, "chain_unsubscribeNewHeads", "ws", "ok"), 1},
		{"sticky follow", calls(chain, "chainHead_v1_follow", "ws", "ok"), 1},
		{"call scoped to the follow", calls(chain, "chainHead_v1_header", "ws", "ok"), 1},
		{"latency per call", series("elara_call_duration_seconds_count", "chain", chain, "transport", "http", "method", "system_chain"), 3},
		{"latency of websocket calls", series("elara_call_duration_seconds_count", "chain", chain, "transport", "ws", "method", "system_chain"), 1},
	}
	for _, tc := range cases {
		if got := after[tc.series] - before[tc.series]; got != tc.want {
			t.Errorf("%s: %s went up by %v, want %v", tc.name, tc.series, got, tc.want)
		}
	}
	for _, name := range []string{"made_upMethod", "another_inventedName"} {
		if strings.Contains(body, name) {
			t.Errorf("/metrics names %s: method labels must stay bounded", name)
		}
	}

	// Upstream: the node's calls by outcome, with latency; its label is
	// host:port.
	upOK := series("elara_upstream_calls_total", "chain", chain, "node", nodeLabel, "outcome", "ok")
	// system_chain ×4, system_name ×3 (the notification too), unknown ×2,
	// the follow's header and both subscribes and the unsubscribe reach
	// the node; health checks add more.
	if got := after[upOK] - before[upOK]; got < 12 {
		t.Errorf("%s went up by %v, want at least 12", upOK, got)
	}
	upTimeout := series("elara_upstream_calls_total", "chain", chain, "node", nodeLabel, "outcome", "timeout")
	if got := after[upTimeout] - before[upTimeout]; got != 1 {
		t.Errorf("%s went up by %v, want 1", upTimeout, got)
	}
	upErr := series("elara_upstream_calls_total", "chain", chain, "node", nodeLabel, "outcome", "error")
	if got := after[upErr] - before[upErr]; got != 2 {
		t.Errorf("%s went up by %v, want 2 (the unknown methods)", upErr, got)
	}
	upLatency := series("elara_upstream_call_duration_seconds_count", "chain", chain, "node", nodeLabel)
	if after[upLatency] < after[upOK] {
		t.Errorf("%s is %v, below the %v answered calls", upLatency, after[upLatency], after[upOK])
	}

	// A reload registers the collectors again: it must not fail, and the
	// counts carry on.
	testgw.Load(t, gw.Caddyfile(global, metricsSite+"\n"))
	post(`{"jsonrpc":"2.0","id":11,"method":"system_chain"}`)
	reloaded, _ := scrape(t, gw)
	if got, want := reloaded[calls(chain, "system_chain", "http", "ok")], after[calls(chain, "system_chain", "http", "ok")]+1; got != want {
		t.Errorf("after a reload: system_chain count %v, want %v", got, want)
	}
	if got := reloaded[series("elara_upstream_ready", "chain", chain, "node", nodeLabel)]; got != 1 {
		t.Errorf("after a reload: node readiness %v, want 1", got)
	}
}

// A node that cannot be reached reports readiness 0, and calls that find
// no node are counted as no_node.
func TestMetricsNodeNotReady(t *testing.T) {
	node := fakenode.Start(t)
	const chain = "metricsdown"
	gw := testgw.Start(t, chainBlock(chain, "request_timeout 300ms\nhealth_interval 200ms", node.URL()), metricsSite)
	ready := series("elara_upstream_ready", "chain", chain, "node", node.Addr())
	waitFor(t, "node ready", func() bool { m, _ := scrape(t, gw); return m[ready] == 1 })
	node.Stop()
	waitFor(t, "node not ready", func() bool { m, _ := scrape(t, gw); return m[ready] == 0 })
	before, _ := scrape(t, gw)
	r := testgw.PostCall(t, gw.HTTP("/"+chain), "system_chain", nil)
	if r.ErrCode() != -32000 {
		t.Fatalf("call with no node: %s", r.Raw)
	}
	after, _ := scrape(t, gw)
	key := calls(chain, "system_chain", "http", "no_node")
	if got := after[key] - before[key]; got != 1 {
		t.Errorf("%s went up by %v, want 1", key, got)
	}
}

// A call refused by a gateway limit is counted as limited.
func TestMetricsLimited(t *testing.T) {
	node := fakenode.Start(t)
	const chain = "metricslimited"
	gw := testgw.Start(t, chainBlock(chain, testChainOpts, node.URL()),
		"\thandle /metrics {\n\t\tmetrics\n\t}\n\thandle {\n\t\telara_rpc {\n\t\t\tmax_subscriptions 1\n\t\t}\n\t}")
	ws := testgw.Dial(t, gw.WS("/"+chain))
	ws.Subscribe("chain_subscribeNewHeads", nil)
	if r := ws.Call("chain_subscribeFinalizedHeads", nil); r.ErrCode() != -32005 {
		t.Fatalf("second subscription on a connection limited to one: %s", r.Raw)
	}
	m, _ := scrape(t, gw)
	if got := m[calls(chain, "chain_subscribeFinalizedHeads", "ws", "limited")]; got != 1 {
		t.Errorf("limited subscribe counted %v times, want 1", got)
	}
	if got := m[series("elara_client_subscriptions", "chain", chain)]; got != 1 {
		t.Errorf("client subscriptions %v, want 1 (the refused one holds none)", got)
	}
}
