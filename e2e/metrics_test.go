package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// quickstartTemplate is caddyfile_examples/quickstart.Caddyfile as users
// run it, its environment defaults pointed at this test's ports and node.
func quickstartTemplate(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot, "caddyfile_examples", "quickstart.Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	out := strings.NewReplacer(
		"{$ELARA_ADMIN:localhost:2019}", "127.0.0.1:@@ADMIN_PORT@@",
		"{$ELARA_PORT:8080}", "@@HTTP_PORT@@",
		"{$ELARA_BIND:127.0.0.1}", "127.0.0.1",
		"{$ELARA_UPSTREAM:ws://127.0.0.1:9944}", "@@NODE_URL@@",
		"{$ELARA_CHAIN:polkadot}", chainPath,
	).Replace(string(src))
	if strings.Contains(out, "{$ELARA_") {
		t.Fatalf("quickstart.Caddyfile has a placeholder this test does not set:\n%s", out)
	}
	return out
}

// scrapeMetrics reads the gateway's /metrics into series → value, each
// series written as Prometheus writes it: name{label="value",...}, labels
// sorted by name.
func scrapeMetrics(t *testing.T, g *gateway) map[string]float64 {
	t.Helper()
	resp, err := httpClient.Get(g.httpURL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d, %v: %s", resp.StatusCode, err, truncate(string(body), 500))
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func metricSeries(name string, labels ...string) string {
	var parts []string
	for i := 0; i+1 < len(labels); i += 2 {
		parts = append(parts, fmt.Sprintf("%s=%q", labels[i], labels[i+1]))
	}
	slices.Sort(parts)
	return name + "{" + strings.Join(parts, ",") + "}"
}

// TestQuickstartMetricsWithPolkadotJS runs the quickstart example as users
// do, in front of the real runtime, with polkadot.js (HTTP and WebSocket,
// subscriptions, a signed transfer): the quickstart caches, and its
// /metrics shows the calls, the node and the clients coming and going.
func TestQuickstartMetricsWithPolkadotJS(t *testing.T) {
	n := realNode(t)
	g := startGateway(t, n, quickstartTemplate(t), nil, chainURLPath)

	var r pjsResult
	if run := runScript(t, 150*time.Second, nil, &r, "pjs_compare.mjs", g.wsURL(chainURLPath), n.wsURL(), g.httpURL(chainURLPath)); !r.OK || run.err != nil {
		t.Fatalf("pjs_compare.mjs through the quickstart failed (%v) after steps %v: %s\nstderr:\n%s", run.err, r.Steps, r.Error, run.stderr)
	}

	// The quickstart caches: the genesis hash asked again is a cache hit.
	var genesis [2]string
	for i := range genesis {
		if err := rpcResult(g.httpURL(chainURLPath), "chain_getBlockHash", []int{0}, &genesis[i]); err != nil {
			t.Fatal(err)
		}
	}
	if genesis[0] != r.GenesisHash.Direct || genesis[1] != genesis[0] {
		t.Fatalf("genesis hash through the gateway %v, node %s", genesis, r.GenesisHash.Direct)
	}

	// The script has closed its connections: sessions and subscriptions
	// are released.
	var m map[string]float64
	deadline := time.Now().Add(20 * time.Second)
	for {
		m = scrapeMetrics(t, g)
		if m[metricSeries("elara_client_websocket_sessions", "chain", chainPath)] == 0 &&
			m[metricSeries("elara_client_subscriptions", "chain", chainPath)] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the client left: %v websocket sessions, %v subscriptions, want 0",
				m[metricSeries("elara_client_websocket_sessions", "chain", chainPath)], m[metricSeries("elara_client_subscriptions", "chain", chainPath)])
		}
		time.Sleep(50 * time.Millisecond)
	}

	calls := func(method, transport string) string {
		return metricSeries("elara_calls_total", "chain", chainPath, "method", method, "transport", transport, "outcome", "ok")
	}
	node := strings.TrimPrefix(n.wsURL(), "ws://")
	atLeastOne := []struct{ what, series string }{
		{"metadata over WebSocket", calls("state_getMetadata", "ws")},
		// polkadot.js subscribes with the legacy name.
		{"new heads subscription", calls("chain_subscribeNewHead", "ws")},
		{"storage subscription", calls("state_subscribeStorage", "ws")},
		{"the transfer's watch", calls("author_submitAndWatchExtrinsic", "ws")},
		{"HttpProvider call", calls("system_chain", "http")},
		{"latency of metadata calls", metricSeries("elara_call_duration_seconds_count", "chain", chainPath, "transport", "ws", "method", "state_getMetadata")},
		{"cache hit on the genesis hash", metricSeries("elara_cache_hits_total", "chain", chainPath, "method", "chain_getBlockHash")},
		{"node answered", metricSeries("elara_upstream_calls_total", "chain", chainPath, "node", node, "outcome", "ok")},
		{"node latency", metricSeries("elara_upstream_call_duration_seconds_count", "chain", chainPath, "node", node)},
	}
	for _, c := range atLeastOne {
		if m[c.series] < 1 {
			t.Errorf("%s: %s is %v, want at least 1", c.what, c.series, m[c.series])
		}
	}
	if got := m[metricSeries("elara_upstream_ready", "chain", chainPath, "node", node)]; got != 1 {
		t.Errorf("node readiness %v, want 1", got)
	}
}
