package e2e

// Issue 4 with a real node: the response cache. polkadot.js through the
// caching gateway must get the same answers as directly from the node —
// metadata, runtime version, headers, blocks, storage at a hash and at the
// latest block — also after the latest state changes (a transfer) and after
// real runtime-version changes (sudo(system.setCode) with a runtime whose
// spec_version is bumped, then back). Repeated calls must not reach the
// node: a forwarder between gateway and node counts the requests.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cacheCaddyfile: one chain behind a counting forwarder, the memory cache
// with every default, and Caddy's metrics (the cache's counters) on /metrics.
const cacheCaddyfile = `{
	admin 127.0.0.1:@@ADMIN_PORT@@
	default_bind 127.0.0.1
	auto_https off
	skip_install_trust
	elara {
		chain westend {
			node @@NODE_A@@ {
				pool 2
			}
			# Chopsticks makes blocks only on request: with a short interval
			# the health monitor probes chain_getHeader() whenever no head
			# came, and the test below counts every request at the node.
			health_interval 1m
			head_timeout 0s
		}
		cache
	}
}

http://127.0.0.1:@@HTTP_PORT@@ {
	handle /metrics {
		metrics
	}
	handle {
		elara_rpc
	}
}
`

// cacheMetric sums a counter of the cache over the chain's series, by method.
func cacheMetric(t *testing.T, g *gateway, name string) map[string]float64 {
	t.Helper()
	resp, err := httpClient.Get(g.httpURL("/metrics"))
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 32<<20))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok || !strings.Contains(rest, `chain="`+chainPath+`"`) {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		method := ""
		for _, l := range strings.Split(labels, ",") {
			if v, ok := strings.CutPrefix(l, `method="`); ok {
				method = strings.TrimSuffix(v, `"`)
			}
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err == nil {
			out[method] += f
		}
	}
	return out
}

type cacheCompare struct {
	CaughtUpMs     int                        `json:"caughtUpMs"`
	Gateway        map[string]json.RawMessage `json:"gateway"`
	Direct         map[string]json.RawMessage `json:"direct"`
	GatewayDecoded map[string]json.RawMessage `json:"gatewayDecoded"`
	DirectDecoded  map[string]json.RawMessage `json:"directDecoded"`
	BobKey         string                     `json:"bobKey"`
}

// notCompared: answers the gateway is meant to change.
var notCompared = map[string]string{
	"rpcMethods": "the gateway drops denied methods from rpc_methods",
}

// sameAnswers checks that every answer through the gateway equals the
// node's, and that none is an error.
func sameAnswers(t *testing.T, when string, c *cacheCompare) {
	t.Helper()
	check := func(kind string, gw, dx map[string]json.RawMessage) {
		names := make([]string, 0, len(dx))
		for k := range dx {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			g, d := gw[k], dx[k]
			if isErrorAnswer(d) {
				t.Errorf("%s: %s %s directly on the node failed: %s", when, kind, k, truncate(string(d), 300))
				continue
			}
			if isErrorAnswer(g) {
				t.Errorf("%s: %s %s through the gateway failed: %s", when, kind, k, truncate(string(g), 300))
				continue
			}
			if _, skip := notCompared[k]; skip {
				continue
			}
			if !jsonEqual(g, d) {
				t.Errorf("%s: %s %s differs: gateway %s, node %s", when, kind, k, truncate(string(g), 400), truncate(string(d), 400))
			}
		}
	}
	check("raw", c.Gateway, c.Direct)
	check("polkadot.js", c.GatewayDecoded, c.DirectDecoded)
}

func isErrorAnswer(v json.RawMessage) bool {
	var e struct {
		Error *string `json:"error"`
	}
	return len(v) == 0 || (json.Unmarshal(v, &e) == nil && e.Error != nil)
}

func specOf(t *testing.T, rv json.RawMessage) uint32 {
	t.Helper()
	var v struct {
		SpecVersion uint32 `json:"specVersion"`
	}
	if err := json.Unmarshal(rv, &v); err != nil {
		t.Errorf("bad runtime version %s: %v", truncate(string(rv), 200), err)
	}
	return v.SpecVersion
}

type setCodeResult struct {
	BlockHash       string   `json:"blockHash"`
	BlockMs         int      `json:"blockMs"`
	FirstRawSpec    uint32   `json:"firstRawSpec"`
	RawMs           int      `json:"rawMs"`
	APIMs           int      `json:"apiMs"`
	GatewayNotified []uint32 `json:"gatewayNotified"`
	GatewayAPISpec  uint32   `json:"gatewayApiSpec"`
}

func TestCacheThroughGateway(t *testing.T) {
	tStart := time.Now()
	t.Cleanup(func() { t.Logf("%.1fs in all, with cleanup", time.Since(tStart).Seconds()) })
	tNode := time.Now()
	n := realNode(t)
	t0 := time.Now()
	t.Logf("node ready in %.1fs", t0.Sub(tNode).Seconds())
	el := func() string { return fmt.Sprintf("[%4.1fs]", time.Since(t0).Seconds()) }
	rc, err := bumpedRuntimeCode(chainSpecPath())
	if err != nil {
		t.Fatalf("preparing a runtime with a new spec_version: %v", err)
	}
	dir := t.TempDir()
	patchedFile, origFile := filepath.Join(dir, "code.patched.hex"), filepath.Join(dir, "code.orig.hex")
	if err := os.WriteFile(patchedFile, []byte(rc.PatchedHex), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(origFile, []byte(rc.OrigHex), 0o644); err != nil {
		t.Fatal(err)
	}

	f := startForwarder(t, n.addr(), "")
	g := startGateway(t, n, cacheCaddyfile, map[string]string{"NODE_A": f.wsURL()}, chainURLPath)
	s := startPJSSession(t, "pjs_cache.mjs", g.wsURL(chainURLPath), n.wsURL())
	var start struct {
		SpecVersion uint32 `json:"specVersion"`
	}
	s.mustCall(60*time.Second, "start", nil, &start)
	if start.SpecVersion != rc.OrigSpec {
		t.Fatalf("the node runs spec %d, the chain spec's runtime is %d", start.SpecVersion, rc.OrigSpec)
	}

	// `at`: a block that is no longer the head
	atNumber, at := n.newBlock(t)
	n.newBlock(t)
	atArgs := map[string]any{"at": at, "atNumber": atNumber}
	compare := func(when string) *cacheCompare {
		t.Helper()
		var c cacheCompare
		s.mustCall(90*time.Second, "compare", atArgs, &c)
		sameAnswers(t, when, &c)
		t.Logf("%s %s: %d answers compared (gateway caught up with the head in %d ms)", el(), when, len(c.Gateway)+len(c.GatewayDecoded), c.CaughtUpMs)
		return &c
	}

	first := compare("first")
	// the forwarder sees the gateway's requests: the first answers about
	// block `at` came from the node
	if c := f.requestCounts(); countPrefix(c, `state_getStorage ["`+first.BobKey+`","`+at+`"]`) == 0 || c["system_health"] == 0 {
		t.Fatalf("the forwarder did not see the gateway's requests reach the node (counts %v)", c)
	}

	// Repeated calls are answered by the cache: none of these reaches the
	// node (by-hash answers, runtime constants, storage pinned to the
	// unchanged head, latest header). The suducer's own refreshes use other
	// params, so they are not counted here.
	quiet := []string{
		"state_getMetadata ", "state_getRuntimeVersion ", "system_chain ", "system_properties ", "rpc_methods ",
		`chain_getHeader ["` + at + `"]`, `chain_getBlock ["` + at + `"]`, "chain_getHeader []",
		fmt.Sprintf("chain_getBlockHash [%d]", atNumber), `state_getStorage ["` + first.BobKey + `"`,
		"state_getKeysPaged ", "state_call ",
	}
	repeat := func(when string) {
		t.Helper()
		const times = 5
		before, hitsBefore := f.requestCounts(), cacheMetric(t, g, "elara_cache_hits_total")
		s.mustCall(90*time.Second, "repeat", map[string]any{"at": at, "atNumber": atNumber, "times": times}, nil)
		after, hitsAfter := f.requestCounts(), cacheMetric(t, g, "elara_cache_hits_total")
		for _, p := range quiet {
			if d := countPrefix(after, p) - countPrefix(before, p); d != 0 {
				t.Errorf("%s: %d repeated calls: %d requests %q… reached the node, want 0 (served from the cache)", when, times, d, p)
			}
		}
		var hitList []string
		for _, m := range []string{"state_getMetadata", "state_getRuntimeVersion", "chain_getHeader", "chain_getBlock", "state_getStorage", "system_chain"} {
			d := hitsAfter[m] - hitsBefore[m]
			hitList = append(hitList, fmt.Sprintf("%s +%.0f", m, d))
			if d < times {
				t.Errorf("%s: elara_cache_hits_total{method=%q} rose by %.0f over %d repeated calls", when, m, d, times)
			}
		}
		var reached []string
		for k, v := range after {
			if strings.Contains(k, " ") && v > before[k] {
				reached = append(reached, fmt.Sprintf("%s ×%d", truncate(k, 90), v-before[k]))
			}
		}
		sort.Strings(reached)
		t.Logf("%s %s: cache hits %v; requests that reached the node meanwhile: %v", el(), when, hitList, reached)
	}
	repeat("repeat")

	// The latest state changes: a transfer through the gateway.
	var tr struct {
		InBlock      string   `json:"inBlock"`
		Statuses     []string `json:"statuses"`
		BobBefore    string   `json:"bobBefore"`
		BobImmediate string   `json:"bobImmediate"`
		BobAfter     string   `json:"bobAfter"`
	}
	const amount = 2_000_000_000_000
	s.mustCall(90*time.Second, "transfer", map[string]any{"amount": fmt.Sprint(amount)}, &tr)
	before, _ := strconv.ParseUint(tr.BobBefore, 10, 64)
	afterBal, _ := strconv.ParseUint(tr.BobAfter, 10, 64)
	if afterBal != before+amount {
		t.Errorf("Bob's balance through the cached gateway: %s → %s after a transfer of %d (statuses %v)", tr.BobBefore, tr.BobAfter, amount, tr.Statuses)
	}
	t.Logf("%s transfer in %s (statuses %v): Bob %s → %s; read through the gateway as soon as polkadot.js reported the block: %s", el(), tr.InBlock, tr.Statuses, tr.BobBefore, tr.BobAfter, tr.BobImmediate)
	second := compare("after the transfer")
	if jsonEqual(second.Gateway["bob"], first.Gateway["bob"]) {
		t.Errorf("state_getStorage(Bob) at the latest block through the gateway did not change after the transfer: %s", second.Gateway["bob"])
	}
	if !jsonEqual(second.Gateway["bobAt"], first.Gateway["bobAt"]) {
		t.Errorf("state_getStorage(Bob, %s) changed: %s, then %s", at, first.Gateway["bobAt"], second.Gateway["bobAt"])
	}

	// A runtime upgrade: spec_version + 1, through sudo(system.setCode).
	upgraded := false
	t.Cleanup(func() {
		if upgraded { // put the original runtime back for the other tests
			if err := s.call(90*time.Second, "setCode", map[string]any{"codeFile": origFile, "signSpec": rc.OrigSpec, "checks": false, "expectSpec": rc.OrigSpec}, nil); err != nil {
				t.Errorf("restoring the original runtime: %v", err)
			}
		}
	})
	setCode := func(when, file string, checks bool, expect uint32) {
		t.Helper()
		var r setCodeResult
		upgraded = true
		s.mustCall(120*time.Second, "setCode", map[string]any{"codeFile": file, "signSpec": rc.OrigSpec, "checks": checks, "expectSpec": expect}, &r)
		upgraded = expect != rc.OrigSpec
		t.Logf("%s %s: node at spec %d in block %s (%d ms); through the gateway: first answer spec %d, state_getRuntimeVersion new after %d ms, polkadot.js API after %d ms, notified %v",
			el(), when, expect, r.BlockHash, r.BlockMs, r.FirstRawSpec, r.RawMs, r.APIMs, r.GatewayNotified)
		if r.RawMs < 0 {
			t.Errorf("%s: state_getRuntimeVersion through the gateway still answered the old version 10 s after the node changed to spec %d", when, expect)
		}
		if r.APIMs < 0 || r.GatewayAPISpec != expect {
			t.Errorf("%s: polkadot.js through the gateway: api.runtimeVersion spec %d, runtime versions notified %v; want %d", when, r.GatewayAPISpec, r.GatewayNotified, expect)
		}
	}
	setCode("upgrade", patchedFile, true, rc.PatchedSpec)
	third := compare("after the upgrade")
	if got := specOf(t, third.Gateway["runtimeVersion"]); got != rc.PatchedSpec {
		t.Errorf("after the upgrade: state_getRuntimeVersion through the gateway: spec %d, want %d", got, rc.PatchedSpec)
	}
	if got := specOf(t, third.Gateway["runtimeVersionAt"]); got != rc.OrigSpec {
		t.Errorf("after the upgrade: state_getRuntimeVersion(%s) through the gateway: spec %d, want the old block's %d", at, got, rc.OrigSpec)
	}
	repeat("repeat after the upgrade")

	setCode("downgrade", origFile, false, rc.OrigSpec)
	fourth := compare("after going back")
	if got := specOf(t, fourth.Gateway["runtimeVersion"]); got != rc.OrigSpec {
		t.Errorf("after going back: state_getRuntimeVersion through the gateway: spec %d, want %d", got, rc.OrigSpec)
	}
	t.Logf("%s done", el())
}

func countPrefix(m map[string]int, prefix string) int {
	n := 0
	for k, v := range m {
		if strings.Contains(k, " ") && strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

type headRaceRow struct {
	Notified     uint64  `json:"notified"`
	Hash         string  `json:"hash"`
	GetHeader    uint64  `json:"getHeader"`
	GetBlockHash string  `json:"getBlockHash"`
	SystemNumber *uint64 `json:"systemNumber"`
}

// runHeadRace makes blocks and reports, for each, what the gateway answered
// about "the latest block" right after it notified the client of it.
func runHeadRace(t *testing.T, n *chopsticks, caddyfile string, blocks int) (stale []string) {
	t.Helper()
	f := startForwarder(t, n.addr(), "")
	g := startGateway(t, n, caddyfile, map[string]string{"NODE_A": f.wsURL()}, chainURLPath)
	s := startPJSSession(t, "pjs_cache.mjs", g.wsURL(chainURLPath), n.wsURL())
	s.mustCall(60*time.Second, "start", nil, nil)
	var r struct {
		Race []headRaceRow `json:"race"`
	}
	s.mustCall(90*time.Second, "headRace", map[string]any{"blocks": blocks}, &r)
	if len(r.Race) != blocks {
		t.Fatalf("headRace returned %d rows, want %d", len(r.Race), blocks)
	}
	for _, row := range r.Race {
		var bad []string
		if row.GetHeader < row.Notified {
			bad = append(bad, fmt.Sprintf("chain_getHeader() #%d", row.GetHeader))
		}
		if row.GetHeader == row.Notified && row.GetBlockHash != row.Hash {
			bad = append(bad, fmt.Sprintf("chain_getBlockHash() %s", truncate(row.GetBlockHash, 12)))
		}
		if row.SystemNumber == nil || *row.SystemNumber < row.Notified {
			sn := "null"
			if row.SystemNumber != nil {
				sn = fmt.Sprint(*row.SystemNumber)
			}
			bad = append(bad, "state_getStorage(System.Number) "+sn)
		}
		if len(bad) > 0 {
			stale = append(stale, fmt.Sprintf("head #%d → %s", row.Notified, strings.Join(bad, ", ")))
		}
	}
	return stale
}

// uncachedCaddyfile is the same gateway with the cache (on by default)
// turned off: the control.
var uncachedCaddyfile = strings.Replace(cacheCaddyfile, "\t\tcache\n", "\t\tcache off\n", 1)

// TestCacheReadAfterNewHead: a client notified of head N through the
// gateway (chain_subscribeNewHeads) that at once asks for the latest header
// or for storage without a block hash must get block N (or later), as from a
// node — the common dApp pattern "on new head, query". The same gateway
// without the cache is the control.
func TestCacheReadAfterNewHead(t *testing.T) {
	n := realNode(t)
	const blocks = 8
	if stale := runHeadRace(t, n, uncachedCaddyfile, blocks); len(stale) > 0 {
		t.Errorf("without the cache, %d of %d new heads were followed by answers about an older block: %v", len(stale), blocks, stale)
	}
	if stale := runHeadRace(t, n, cacheCaddyfile, blocks); len(stale) > 0 {
		t.Errorf("with the cache, %d of %d new heads notified through the gateway were followed, when the client asked at once, by answers about the previous block (the cache's latest entries and pinned head lag the notifications clients get): %v", len(stale), blocks, stale)
	}
}
