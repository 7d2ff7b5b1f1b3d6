package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/elara-gateway/elara/cacher/cachertest"
	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// cachedGlobal is the elara global option: chain dev on url, cached.
func cachedGlobal(url, cache string) string {
	return fmt.Sprintf(`		chain dev {
			node %s {
				pool 2
			}
			request_timeout 2s
			health_interval 1h
		}
		cache {
%s
		}
`, url, cache)
}

const metricsSite = `	handle /metrics {
		metrics
	}
	handle {
		elara_rpc
	}`

// eventually retries check until it returns ""; the deadline only keeps a
// broken build from hanging and is not part of what is tested.
func eventually(t *testing.T, check func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// suducerLoops counts the cache's loop goroutines in this process.
func suducerLoops() int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "cacher.(*Cache).run(") + strings.Count(string(buf), "cacher.(*Cache).follow(")
}

func nodeAnswer(t *testing.T, node *fakenode.Node, method string, params any) string {
	t.Helper()
	r := testgw.PostCall(t, node.HTTPURL(), method, params)
	if r.Error != nil {
		t.Fatalf("node %s: %s", method, r.Raw)
	}
	return string(r.Result)
}

func TestGatewayCache(t *testing.T) {
	node := fakenode.Start(t)
	ch := node.Chain()
	ch.SetStorage("0x0102", "0xaa")
	gw := testgw.Start(t, cachedGlobal(node.URL(), "\t\t\tmax_size 32MiB"), metricsSite)
	url := gw.HTTP("/dev")
	eventually(t, func() string {
		if r := testgw.PostCall(t, url, "state_getMetadata", nil); node.Calls("state_getMetadata") == 0 || r.Error != nil {
			return "suducer never fetched the metadata"
		}
		before := node.Calls("state_getMetadata")
		testgw.PostCall(t, url, "state_getMetadata", nil)
		if node.Calls("state_getMetadata") != before {
			return "metadata not cached yet"
		}
		return ""
	})
	fin := ch.Finalized()
	cases := []struct {
		name, method string
		params       any
	}{
		{"metadata", "state_getMetadata", nil},
		{"runtime version", "state_getRuntimeVersion", nil},
		{"storage at latest", "state_getStorage", []string{"0x0102"}},
		{"storage at hash", "state_getStorage", []string{"0x0102", fin.Hash}},
		{"header at hash", "chain_getHeader", []string{fin.Hash}},
		{"latest block", "chain_getBlock", nil},
		{"genesis", "chain_getBlockHash", []int{0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := nodeAnswer(t, node, tc.method, tc.params)
			eventually(t, func() string { // the first call may be the miss
				if got := string(testgw.PostCall(t, url, tc.method, tc.params).Result); got != want {
					return fmt.Sprintf("got %.100s, want %.100s", got, want)
				}
				before := node.Calls(tc.method)
				if got := string(testgw.PostCall(t, url, tc.method, tc.params).Result); got != want {
					return fmt.Sprintf("got %.100s, want %.100s", got, want)
				}
				if node.Calls(tc.method) != before {
					return "a cached call reached the node"
				}
				return ""
			})
		})
	}

	t.Run("rpc_methods is filtered after the cache", func(t *testing.T) {
		r := testgw.PostCall(t, url, "rpc_methods", nil)
		if strings.Contains(string(r.Result), "author_rotateKeys") || !strings.Contains(string(r.Result), "system_chain") {
			t.Fatalf("rpc_methods: %.300s", r.Result)
		}
	})

	t.Run("runtime upgrade", func(t *testing.T) {
		ch.NewBlock()
		ch.SetRuntimeVersion(fakenode.DefaultSpecVersion + 1)
		want := `"` + fakenode.Metadata(fakenode.DefaultSpecVersion+1) + `"`
		eventually(t, func() string {
			if got := testgw.PostCall(t, url, "state_getMetadata", nil).Result; string(got) != want {
				return "old metadata after a runtime upgrade"
			}
			return ""
		})
	})

	t.Run("metrics", func(t *testing.T) {
		scrape := func() string {
			resp, err := http.Get(gw.HTTP("/metrics"))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return string(body)
		}
		body := scrape()
		for _, want := range []string{
			`elara_cache_hits_total{chain="dev",method="state_getMetadata"}`,
			`elara_cache_misses_total{chain="dev",method="state_getStorage"}`,
			`elara_cache_hit_bytes_total{chain="dev",method="chain_getBlock"}`,
			`elara_cache_entries{chain="dev",method="state_getMetadata"}`,
			`elara_cache_bytes{chain="dev",method="chain_getBlock"}`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		// The collectors are process-wide: only their moves are this test's.
		series := func(name, method string) string {
			return fmt.Sprintf(`elara_cache_%s{chain="dev",method=%q}`, name, method)
		}
		eventually(t, func() string { // until the call is a hit
			before := scrape()
			calls := node.Calls("state_getMetadata")
			r := testgw.PostCall(t, url, "state_getMetadata", nil)
			if node.Calls("state_getMetadata") != calls {
				return "state_getMetadata not answered from the cache"
			}
			after := scrape()
			if d := metricDelta(before, after, series("hits_total", "state_getMetadata")); d != 1 {
				return fmt.Sprintf("a hit moved hits_total by %v", d)
			}
			if d := metricDelta(before, after, series("hit_bytes_total", "state_getMetadata")); d != float64(len(r.Result)) {
				return fmt.Sprintf("a hit of %d bytes moved hit_bytes_total by %v", len(r.Result), d)
			}
			if d := metricDelta(before, after, series("misses_total", "state_getMetadata")); d != 0 {
				return fmt.Sprintf("a hit moved misses_total by %v", d)
			}
			return ""
		})
		// A storage key nobody asked for: a miss, then one more entry.
		ch.SetStorage("0x0999", "0x99")
		ch.NewBlockFinalized()
		params := []string{"0x0999", ch.Finalized().Hash}
		before := scrape()
		r := testgw.PostCall(t, url, "state_getStorage", params)
		if string(r.Result) != `"0x99"` {
			t.Fatalf("state_getStorage: %s", r.Raw)
		}
		after := scrape()
		for _, m := range []struct {
			name string
			min  float64
			max  float64
		}{
			{"misses_total", 1, 1},
			{"hits_total", 0, 0},
			{"entries", 1, 1},
			{"bytes", float64(len(r.Result)), 1 << 20}, // the key and bookkeeping count too
		} {
			if d := metricDelta(before, after, series(m.name, "state_getStorage")); d < m.min || d > m.max {
				t.Errorf("a miss moved %s by %v, want [%v, %v]", m.name, d, m.min, m.max)
			}
		}
	})
}

// metricValue reads one series of a Prometheus text exposition; a series
// not exposed (yet) is 0.
func metricValue(body, series string) float64 {
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return 0
}

func metricDelta(before, after, series string) float64 {
	return metricValue(after, series) - metricValue(before, series)
}

func TestGatewayCacheReloadAndStop(t *testing.T) {
	node := fakenode.Start(t)
	gw := testgw.Start(t, cachedGlobal(node.URL(), ""), "\telara_rpc")
	cfg := gw.Caddyfile(cachedGlobal(node.URL(), ""), "\telara_rpc")
	eventually(t, func() string {
		if node.ActiveSubscriptions("state_subscribeRuntimeVersion") != 1 {
			return "suducer did not subscribe"
		}
		return ""
	})
	for i := range 3 {
		testgw.Load(t, cfg) // a reload with the same chain and cache
		if n := suducerLoops(); n != 4 {
			t.Fatalf("reload %d: %d suducer loops, want 4 (one set per chain)", i, n)
		}
		if n := node.ActiveSubscriptions("state_subscribeRuntimeVersion"); n != 1 {
			t.Fatalf("reload %d: %d runtime subscriptions, want 1", i, n)
		}
	}
	if r := testgw.PostCall(t, gw.HTTP("/dev"), "system_chain", nil); string(r.Result) != `"Fake Dev"` {
		t.Fatalf("after reloads: %s", r.Raw)
	}
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() string {
		if n := suducerLoops(); n != 0 {
			return fmt.Sprintf("%d suducer goroutines survive Stop", n)
		}
		return ""
	})
}

func TestGatewayStalledSuducerGoesToTheNode(t *testing.T) {
	node := fakenode.Start(t)
	// Latest entries may go 3 refresh periods (3s) without a refresh.
	gw := testgw.Start(t, cachedGlobal(node.URL(), "\t\t\trefresh 1s"), "\telara_rpc")
	url := gw.HTTP("/dev")
	cachedNow := func() bool {
		testgw.PostCall(t, url, "system_syncState", nil)
		before := node.Calls("system_syncState")
		testgw.PostCall(t, url, "system_syncState", nil)
		return node.Calls("system_syncState") == before
	}
	// cachedAfterNewHeads makes a block now and then (the suducer refreshes
	// on new heads) until the latest entries are served from the cache.
	cachedAfterNewHeads := func(msg string) {
		t.Helper()
		var lastBlock time.Time
		eventually(t, func() string {
			if time.Since(lastBlock) > 500*time.Millisecond {
				node.Chain().NewBlock()
				lastBlock = time.Now()
			}
			if !cachedNow() {
				return msg
			}
			return ""
		})
	}
	cachedAfterNewHeads("system_syncState never cached")
	// The suducer's first call of every refresh now hangs: it stalls.
	node.SetDrop("chain_getBlockHash", true)
	node.SetDrop("chain_getFinalizedHead", true)
	node.Chain().NewBlockFinalized()
	eventually(t, func() string {
		if cachedNow() {
			return "stale latest entries still served"
		}
		return ""
	})
	want := nodeAnswer(t, node, "system_syncState", nil)
	if got := testgw.PostCall(t, url, "system_syncState", nil); string(got.Result) != want {
		t.Fatalf("answer while stalled: %s, want %s", got.Raw, want)
	}
	node.SetDrop("chain_getBlockHash", false)
	node.SetDrop("chain_getFinalizedHead", false)
	cachedAfterNewHeads("cache not used again after the suducer recovered")
}

// The suducer follows heads through its subscription: while blocks come it
// never polls, and on a chain that stops making blocks it confirms the head
// with one cheap call every two refresh periods, so latest answers keep
// coming from the cache.
func TestGatewaySuducerPollsOnlyWhenHeadsStop(t *testing.T) {
	node := fakenode.Start(t)
	gw := testgw.Start(t, cachedGlobal(node.URL(), "\t\t\trefresh 200ms"), "\telara_rpc")
	url := gw.HTTP("/dev")
	eventually(t, func() string {
		if node.ActiveSubscriptions("chain_subscribeNewHeads") < 1 || node.ActiveSubscriptions("chain_subscribeFinalizedHeads") < 1 {
			return "suducer did not subscribe"
		}
		return ""
	})
	// Blocks faster than the refresh period: every head is refreshed once
	// (or less, when heads come faster than the suducer works), no more;
	// one refresh of the start-up may still be under way.
	before := node.Calls("system_syncState")
	const blocks = 15
	for range blocks {
		node.Chain().NewBlock()
		time.Sleep(100 * time.Millisecond)
	}
	if got := node.Calls("system_syncState") - before; got > blocks+1 {
		t.Fatalf("%d head refreshes for %d blocks: the suducer polled while heads came", got, blocks)
	}
	// No more blocks: after five refresh periods the latest entries are
	// still served, confirmed by at most one poll per two periods.
	before = node.Calls("chain_getBlockHash")
	headersBefore := node.Calls("chain_getHeader")
	time.Sleep(time.Second)
	polls := node.Calls("chain_getBlockHash") - before
	if polls < 1 || polls > 3 {
		t.Fatalf("%d polls in five refresh periods without a block, want 1 to 3", polls)
	}
	if node.Calls("chain_getHeader") != headersBefore {
		t.Fatal("a poll that found the same head fetched its header again")
	}
	calls := node.Calls("chain_getHeader")
	if r := testgw.PostCall(t, url, "chain_getHeader", nil); r.Error != nil || node.Calls("chain_getHeader") != calls {
		t.Fatalf("latest header on an idle chain did not come from the cache: %s", r.Raw)
	}
}

// postFromWorker sends one call from a load goroutine, which must not
// stop the test itself: failures come back as errors.
func postFromWorker(url, body string) (*testgw.Response, []byte, error) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	var r testgw.Response
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, out, fmt.Errorf("reply %s: %w", out, err)
	}
	return &r, out, nil
}

// caddyBin returns a Caddy binary with the plugin: ELARA_CADDY_BIN, or
// one built from ./cmd/caddy.
func caddyBin(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("ELARA_CADDY_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "caddy")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/caddy")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building caddy: %v\n%s", err, out)
	}
	return bin
}

// runCaddy runs a Caddy process on cfg until the test ends.
func runCaddy(t *testing.T, bin, name, cfg string) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "caddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", file, "--adapter", "caddyfile")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "HOME="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("%s log:\n%s", name, out)
		}
	})
}

func TestRedisSharedByTwoGatewaysAndOutage(t *testing.T) {
	rd := cachertest.StartRedis(t)
	node := fakenode.Start(t)
	ch := node.Chain()
	for i := range 20 {
		ch.SetStorage(fmt.Sprintf("0x%04x", i), fmt.Sprintf("0x%02x", i))
	}
	ch.NewBlockFinalized()
	fin := ch.Finalized()
	bin := caddyBin(t)
	var urls []string
	for _, name := range []string{"A", "B"} {
		gw := &testgw.Gateway{Port: testgw.FreePort(t)}
		cfg := strings.Replace(gw.Caddyfile(fmt.Sprintf(`		redis %s {
			timeout 200ms
		}
`, rd.Addr)+cachedGlobal(node.URL(), "\t\t\tstore redis\n\t\t\tretry_after 100ms"), "\telara_rpc"), "{$ELARA_TEST_LOG:ERROR}", "WARN", 1)
		runCaddy(t, bin, name, cfg)
		urls = append(urls, gw.HTTP("/dev"))
	}
	for _, u := range urls {
		eventually(t, func() string {
			resp, err := http.Post(u, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"system_chain"}`))
			if err != nil {
				return "gateway not up: " + err.Error()
			}
			resp.Body.Close()
			return ""
		})
	}
	storage := func(i int) (params []string, want string) {
		return []string{fmt.Sprintf("0x%04x", i), fin.Hash}, fmt.Sprintf(`"0x%02x"`, i)
	}

	t.Run("one fills, the other reads", func(t *testing.T) {
		for i := range 5 {
			params, want := storage(i)
			before := node.Calls("state_getStorage")
			if got := testgw.PostCall(t, urls[0], "state_getStorage", params); string(got.Result) != want {
				t.Fatalf("A: %s", got.Raw)
			}
			if node.Calls("state_getStorage") != before+1 {
				t.Fatalf("A's miss made %d node calls", node.Calls("state_getStorage")-before)
			}
			if got := testgw.PostCall(t, urls[1], "state_getStorage", params); string(got.Result) != want {
				t.Fatalf("B: %s", got.Raw)
			}
			if node.Calls("state_getStorage") != before+1 {
				t.Fatal("B did not find A's entry in Redis")
			}
		}
	})

	t.Run("outage in the middle of traffic", func(t *testing.T) {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan string, 100)
		var calls sync.Map
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					params, want := storage((w*7 + i) % 20)
					body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": i, "method": "state_getStorage", "params": params})
					r, out, err := postFromWorker(urls[w%2], string(body))
					if err != nil {
						errs <- err.Error()
						return
					}
					if string(r.Result) != want {
						errs <- fmt.Sprintf("worker %d: %s", w, out)
						return
					}
					calls.Store(w, i)
				}
			}()
		}
		progress := func() int {
			n := 0
			calls.Range(func(_, v any) bool { n += v.(int); return true })
			return n
		}
		eventually(t, func() string {
			if progress() < 100 {
				return "traffic does not flow"
			}
			return ""
		})
		rd.Stop()
		mark := progress()
		eventually(t, func() string {
			if progress() < mark+200 {
				return "traffic stalled while Redis is down"
			}
			return ""
		})
		rd.Restart(t)
		mark = progress()
		eventually(t, func() string {
			if progress() < mark+100 {
				return "traffic stalled after Redis came back"
			}
			return ""
		})
		close(stop)
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})

	t.Run("Redis is used again", func(t *testing.T) {
		i := 0
		eventually(t, func() string {
			// Misses fill the restarted Redis once the gateway uses it again.
			params, _ := storage(i % 20)
			i++
			testgw.PostCall(t, urls[i%2], "state_getStorage", params)
			if rd.DBSize(t) == 0 {
				return "nothing written to the restarted Redis"
			}
			return ""
		})
		params := []string{"0x0001", fin.Hash}
		eventually(t, func() string {
			testgw.PostCall(t, urls[0], "state_getStorage", params)
			before := node.Calls("state_getStorage")
			testgw.PostCall(t, urls[1], "state_getStorage", params)
			if node.Calls("state_getStorage") != before {
				return "B does not read what A wrote to the restarted Redis"
			}
			return ""
		})
	})
}

// A client told of head N through the gateway and asking for the latest
// header or state at once must get block N's, not N-1's from the cache,
// even while the suducer is slow to learn of N.
func TestGatewayCacheNeverAnswersBehindANotifiedHead(t *testing.T) {
	node := fakenode.Start(t)
	gw := testgw.Start(t, cachedGlobal(node.URL(), ""), "\telara_rpc")
	key := "0x" + strings.Repeat("ee", 32)
	c := testgw.Dial(t, gw.WS("/dev"))
	c.Subscribe("chain_subscribeNewHeads", nil)
	c.Next(5 * time.Second)
	// Warm the cache with latest answers.
	eventually(t, func() string {
		if r := c.Call("chain_getHeader", nil); r.Error != nil {
			return string(r.Raw)
		}
		return ""
	})
	// The suducer learns of new heads through chain_getBlockHash: slow it.
	node.SetDelay("chain_getBlockHash", 300*time.Millisecond)
	for i := range 5 {
		node.Chain().SetStorage(key, fmt.Sprintf("0x%02x", i))
		h := node.Chain().NewBlock()
		for {
			n := c.Next(5 * time.Second)
			if num, ok := headerNum(n.Params.Result); ok && num == h.Number {
				break
			}
		}
		r := c.Call("chain_getHeader", nil)
		if num, ok := headerNum(r.Result); !ok || num != h.Number {
			t.Fatalf("block %d notified, latest header answered %s", h.Number, r.Raw)
		}
		if r := c.Call("state_getStorage", []string{key}); string(r.Result) != fmt.Sprintf(`"0x%02x"`, i) {
			t.Fatalf("block %d notified, latest storage answered %s", h.Number, r.Raw)
		}
	}
}

func headerNum(raw json.RawMessage) (uint64, bool) {
	var h struct {
		Number string `json:"number"`
	}
	if json.Unmarshal(raw, &h) != nil || len(h.Number) < 3 {
		return 0, false
	}
	n, err := strconv.ParseUint(h.Number[2:], 16, 64)
	return n, err == nil
}

// Two nodes of one chain, the first one blocks behind the other but still
// ready (max_lag is large), so the group sends it calls: once a client
// has heard of a runtime upgrade through the gateway, none of its calls
// gets the old runtime's version or metadata, from the cache or not.
func TestGatewayCacheRuntimeUpgradeWithLaggingNode(t *testing.T) {
	current := fakenode.Start(t)
	ch := current.Chain()
	lagging := fakenode.Start(t, fakenode.WithChain(ch))
	global := fmt.Sprintf(`		chain dev {
			node %s {
				pool 2
			}
			node %s {
				pool 2
			}
			request_timeout 5s
			health_interval 1h
			max_lag 1000
			head_timeout 0s
		}
		cache {
		}
`, lagging.URL(), current.URL())
	gw := testgw.Start(t, global, "\telara_rpc")
	url := gw.HTTP("/dev")
	metadataCalls := func() int { return lagging.Calls("state_getMetadata") + current.Calls("state_getMetadata") }
	eventually(t, func() string {
		if r := testgw.PostCall(t, url, "state_getMetadata", nil); metadataCalls() == 0 || r.Error != nil {
			return "suducer never fetched the metadata"
		}
		before := metadataCalls()
		testgw.PostCall(t, url, "state_getMetadata", nil)
		if metadataCalls() != before {
			return "metadata not cached yet"
		}
		return ""
	})
	ws := testgw.Dial(t, gw.WS("/dev"))
	ws.Subscribe("state_subscribeRuntimeVersion", nil)
	base := fakenode.DefaultSpecVersion
	if got := runtimeSpec(ws.Next(5 * time.Second).Params.Result); got != base {
		t.Fatalf("first runtime version notification: spec %d", got)
	}
	for round := uint32(1); round <= 3; round++ {
		lagging.SetFollow(false)
		ch.NewBlock() // the lagging node does not know it
		spec := base + round
		ch.SetRuntimeVersion(spec)
		for runtimeSpec(ws.Next(5*time.Second).Params.Result) != spec {
		}
		meta := `"` + fakenode.Metadata(spec) + `"`
		for i := range 10 {
			call := func(method string) *testgw.Response {
				if i%2 == 0 {
					return ws.Call(method, nil)
				}
				return testgw.PostCall(t, url, method, nil)
			}
			for _, m := range []string{"state_getRuntimeVersion", "chain_getRuntimeVersion"} {
				if r := call(m); runtimeSpec(r.Result) != spec {
					t.Fatalf("round %d call %d: upgrade to %d notified, %s answered %.200s", round, i, spec, m, r.Raw)
				}
			}
			if r := call("state_getMetadata"); string(r.Result) != meta {
				t.Fatalf("round %d call %d: upgrade to %d notified, state_getMetadata answered another runtime's metadata (%.80s)", round, i, spec, r.Raw)
			}
		}
	}
}

// runtimeSpec reads a RuntimeVersion's specVersion (0 if there is none).
func runtimeSpec(raw json.RawMessage) uint32 {
	var rv struct {
		SpecVersion uint32 `json:"specVersion"`
	}
	_ = json.Unmarshal(raw, &rv)
	return rv.SpecVersion
}

// redisGlobal is cachedGlobal with the store in Redis.
func redisGlobal(redis, url, cache string) string {
	return redis + cachedGlobal(url, "\t\t\tstore redis\n"+cache)
}

// Every Redis topology the redis option offers stores and serves the
// cache's entries: a single server, a Cluster known by one seed address
// (its other node holds about half the keys, which a client that is not
// a Cluster client cannot reach), and a master found through Sentinel.
func TestGatewayCacheRedisTopologies(t *testing.T) {
	cases := []struct {
		name  string
		start func(t *testing.T) (option string, data []*cachertest.Redis)
	}{
		{"single server", func(t *testing.T) (string, []*cachertest.Redis) {
			rd := cachertest.StartRedis(t)
			return fmt.Sprintf("\t\tredis %s\n", rd.Addr), []*cachertest.Redis{rd}
		}},
		{"cluster from one seed address", func(t *testing.T) (string, []*cachertest.Redis) {
			nodes := cachertest.StartRedisCluster(t, 2)
			return fmt.Sprintf("\t\tredis %s {\n\t\t\tcluster\n\t\t}\n", nodes[0].Addr), nodes
		}},
		{"sentinel", func(t *testing.T) (string, []*cachertest.Redis) {
			s := cachertest.StartRedisSentinel(t)
			return fmt.Sprintf("\t\tredis %s {\n\t\t\tmaster_name %s\n\t\t}\n", s.Addr, s.MasterName), []*cachertest.Redis{s.Master}
		}},
	}
	const keys = 20
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			option, data := tc.start(t)
			node := fakenode.Start(t)
			ch := node.Chain()
			for i := range keys {
				ch.SetStorage(fmt.Sprintf("0x%04x", i), fmt.Sprintf("0x%02x", i))
			}
			ch.NewBlockFinalized()
			fin := ch.Finalized().Hash
			// A long retry_after: a client that cannot reach every key
			// fails, opens the breaker, and only misses from then on.
			gw := testgw.Start(t, redisGlobal(option, node.URL(), "\t\t\tretry_after 1h"), "\telara_rpc")
			url := gw.HTTP("/dev")
			call := func(i int) {
				params := []string{fmt.Sprintf("0x%04x", i), fin}
				if got, want := testgw.PostCall(t, url, "state_getStorage", params), fmt.Sprintf(`"0x%02x"`, i); string(got.Result) != want {
					t.Fatalf("key %d: %s, want %s", i, got.Raw, want)
				}
			}
			eventually(t, func() string { // the cache is ready once it knows the chain
				call(0)
				before := node.Calls("state_getStorage")
				call(0)
				if node.Calls("state_getStorage") != before {
					return "a call asked twice reached the node twice"
				}
				return ""
			})
			for i := 1; i < keys; i++ {
				call(i)
			}
			before := node.Calls("state_getStorage")
			for i := range keys {
				call(i)
			}
			if n := node.Calls("state_getStorage") - before; n != 0 {
				t.Fatalf("%d of %d cached calls reached the node", n, keys)
			}
			for i, rd := range data {
				if rd.DBSize(t) == 0 {
					t.Fatalf("Redis %d of %d holds no entry", i+1, len(data))
				}
			}
		})
	}
}

// countLines counts the lines of a log file that contain s.
func countLines(t *testing.T, file, s string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Count(string(data), s)
}

// Redis turns slow in the middle of traffic (its process stopped: it
// keeps its connections and answers nothing): every client still gets
// the node's answer, with no error, while Redis hangs; the outage is
// logged once; once Redis answers again the cache uses it again.
func TestGatewayCacheSlowRedis(t *testing.T) {
	rd := cachertest.StartRedis(t)
	node := fakenode.Start(t)
	ch := node.Chain()
	const keys = 20
	for i := range keys {
		ch.SetStorage(fmt.Sprintf("0x%04x", i), fmt.Sprintf("0x%02x", i))
	}
	ch.SetStorage("0x0100", "0x01")
	ch.NewBlockFinalized()
	fin := ch.Finalized().Hash
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	gw := &testgw.Gateway{Port: testgw.FreePort(t)}
	// A generous Redis timeout: only the freeze below may count as an
	// outage, not a moment of CPU starvation before or after it.
	cfg := gw.Caddyfile(redisGlobal(fmt.Sprintf("\t\tredis %s {\n\t\t\ttimeout 1s\n\t\t}\n", rd.Addr), node.URL(), "\t\t\tretry_after 200ms"), "\telara_rpc")
	cfg = strings.Replace(cfg, "level {$ELARA_TEST_LOG:ERROR}", "output file "+logFile+"\n\t\tformat json\n\t\tlevel INFO", 1)
	testgw.Load(t, cfg)
	t.Cleanup(func() { _ = caddy.Stop() })
	url := gw.HTTP("/dev")
	const (
		outage   = `"msg":"redis cache unavailable`
		recovery = `"msg":"redis cache available again"`
	)
	cachedNow := func(key string) bool {
		params := []string{key, fin}
		testgw.PostCall(t, url, "state_getStorage", params)
		before := node.Calls("state_getStorage")
		testgw.PostCall(t, url, "state_getStorage", params)
		return node.Calls("state_getStorage") == before
	}
	eventually(t, func() string {
		if !cachedNow("0x0000") {
			return "the cache does not use Redis"
		}
		return ""
	})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var answered atomic.Int64
	errs := make(chan string, 100)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := (w*7 + i) % keys
				body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"state_getStorage","params":["0x%04x",%q]}`, i, k, fin)
				r, out, err := postFromWorker(url, body)
				if err != nil {
					errs <- err.Error()
					return
				}
				if want := fmt.Sprintf(`"0x%02x"`, k); r.Error != nil || string(r.Result) != want {
					errs <- fmt.Sprintf("worker %d: %s, want %s", w, out, want)
					return
				}
				answered.Add(1)
			}
		})
	}
	waitAnswers := func(phase string, n int64) {
		t.Helper()
		mark := answered.Load()
		eventually(t, func() string {
			if answered.Load() < mark+n {
				return fmt.Sprintf("%s: traffic stalled (%d calls answered)", phase, answered.Load()-mark)
			}
			return ""
		})
	}
	waitAnswers("Redis working", 100)
	outages, recoveries := countLines(t, logFile, outage), countLines(t, logFile, recovery)
	rd.Freeze(t)
	thawed := false
	defer func() {
		if !thawed {
			rd.Thaw(t)
		}
	}()
	// Redis answers nothing until Thaw: all these are answered by the node.
	waitAnswers("Redis hanging", 200)
	if n := countLines(t, logFile, outage) - outages; n != 1 {
		t.Errorf("Redis hanging: the outage was logged %d times, want once", n)
	}
	rd.Thaw(t)
	thawed = true
	eventually(t, func() string {
		if countLines(t, logFile, recovery) == recoveries {
			return "the recovery was never logged"
		}
		return ""
	})
	waitAnswers("Redis back", 100)
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n, m := countLines(t, logFile, outage)-outages, countLines(t, logFile, recovery)-recoveries; n != 1 || m != 1 {
		t.Errorf("%d outage and %d recovery logs, want one of each", n, m)
	}
	// A key never asked for before: stored in Redis and served from it.
	size := rd.DBSize(t)
	eventually(t, func() string {
		if !cachedNow("0x0100") {
			return "the cache does not use Redis again"
		}
		return ""
	})
	if rd.DBSize(t) <= size {
		t.Fatal("nothing new written to Redis after it recovered")
	}
}
