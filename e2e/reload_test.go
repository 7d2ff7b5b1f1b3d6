package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/suber"
)

// reloadCaddyfile is the gateway of the reload test, on a fake node whose
// heads the test makes. @@SITE@@ is the handler's options and @@EXTRA@@
// the sites each reload adds.
const reloadCaddyfile = globalOptionsTemplate + `
http://127.0.0.1:@@HTTP_PORT@@ {
	elara_rpc {
@@SITE@@
	}
}
@@EXTRA@@
`

// Reloads keep clients: 1,000 clients subscribed to new heads stay
// connected through 10 reloads (POST /load) that change the handler's
// config and add sites, each receives every head exactly once and in
// order, the calls they make afterwards follow the last config, and once
// they leave, the gateway's goroutines and file descriptors are back to
// what they were before they came.
func TestReloadsKeepClients(t *testing.T) {
	const (
		clients = 1000
		reloads = 10
	)
	fake := fakenode.Start(t)
	_, portStr, _ := net.SplitHostPort(fake.Addr())
	port, _ := strconv.Atoi(portStr)
	n := &chopsticks{port: port} // startGateway only takes the node's URL from it

	render := func(i int) map[string]string {
		site := fmt.Sprintf("\t\tmax_batch %d", 10+i)
		if i%2 == 0 && i > 0 {
			site += "\n\t\tdeny system_chain"
		}
		var extra strings.Builder
		for j := range i {
			fmt.Fprintf(&extra, "http://site%d.localhost:@@HTTP_PORT@@ {\n\trespond \"site %d\"\n}\n", j, j)
		}
		return map[string]string{"SITE": site, "EXTRA": extra.String()}
	}
	g := startGateway(t, n, reloadCaddyfile, render(0), chainURLPath)
	pid := g.cmd.Process.Pid
	// Sites are rendered with the gateway's ports, as startGateway does.
	load := func(i int) {
		t.Helper()
		vars := render(i)
		cfg := strings.NewReplacer("@@ADMIN_PORT@@", strconv.Itoa(g.adminPort), "@@HTTP_PORT@@", strconv.Itoa(g.httpPort),
			"@@NODE_URL@@", fake.URL(), "@@SITE@@", vars["SITE"], "@@EXTRA@@", vars["EXTRA"]).Replace(reloadCaddyfile)
		cfg = strings.ReplaceAll(cfg, "@@HTTP_PORT@@", strconv.Itoa(g.httpPort))
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/load", g.adminPort), strings.NewReader(cfg))
		req.Header.Set("Content-Type", "text/caddyfile")
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("reload %d: %d %s", i, resp.StatusCode, body)
		}
	}

	baseG, baseFD := settledCounts(t, g.adminPort, pid, 0, 0)
	t.Logf("baseline: %d goroutines, %d file descriptors", baseG, baseFD)

	var target atomic.Uint64 // the last head; 0 until it is known
	results, done := startHeadClients(g.wsURL(chainURLPath), clients, &target, `{"jsonrpc":"2.0","id":2,"method":"system_chain"}`)
	stop := produceHeads(fake.Chain().NewBlock)
	start := time.Now()
	for i := 1; i <= reloads; i++ {
		load(i)
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d reloads in %v", reloads, time.Since(start).Round(time.Millisecond))
	stop()
	// One more head, known to all: each client reads up to it.
	target.Store(fake.Chain().Best().Number + 1)
	fake.Chain().NewBlock()
	done()

	dropped, bad := checkHeadClients(t, results, target.Load(), func(r headClient) error {
		if code := r.reply.Error.code(); code != -32601 {
			return fmt.Errorf("system_chain after the last reload answered code %d, want -32601 (denied)", code)
		}
		return nil
	})
	if dropped+bad > 0 {
		t.Fatalf("%d of %d clients dropped, %d lost, repeated or reordered a head or were not under the new config", dropped, clients, bad)
	}
	t.Logf("%d clients, %d heads each (%d..%d), none dropped", clients, len(results[0].heads), results[0].heads[0], target.Load())

	gNow, fdNow := settledCounts(t, g.adminPort, pid, baseG, baseFD)
	t.Logf("after the clients left: %d goroutines, %d file descriptors", gNow, fdNow)
}

// headClient is one client of startHeadClients: the heads it got, the
// reply to its call after them, or why it failed.
type headClient struct {
	heads []uint64
	reply *rpcResponse
	err   error
}

// startHeadClients connects n clients subscribed to new heads and
// returns once all are subscribed. Each reads heads until target, then
// sends call (id 2). done waits for every client to finish.
func startHeadClients(url string, n int, target *atomic.Uint64, call string) (results []headClient, done func()) {
	results = make([]headClient, n)
	var subscribed, wg sync.WaitGroup
	subscribed.Add(n)
	for i := range n {
		wg.Go(func() {
			r := &results[i]
			once := sync.OnceFunc(subscribed.Done)
			defer once()
			ws, err := dialHeads(url)
			if err != nil {
				r.err = err
				return
			}
			defer ws.Close()
			once()
			if r.heads, r.err = readHeadsUntil(ws, target, time.Now().Add(90*time.Second)); r.err != nil {
				return
			}
			if r.reply, _, err = wsCall(ws, call, "2"); err != nil {
				r.err = fmt.Errorf("call after the reloads: %w", err)
			}
		})
	}
	subscribed.Wait()
	return results, wg.Wait
}

// produceHeads makes a block every 100 ms until stop is called.
func produceHeads(newBlock func() fakenode.Header) (stop func()) {
	quit := make(chan struct{})
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				newBlock()
			}
		}
	}()
	return func() { close(quit); <-produced }
}

// checkHeadClients counts the clients that failed (dropped) and those
// that did not get every head once, in order, up to target, or whose
// reply check fails (bad); it shows the first five of each.
func checkHeadClients(t *testing.T, results []headClient, target uint64, check func(headClient) error) (dropped, bad int) {
	t.Helper()
	for i, r := range results {
		var err error
		switch {
		case r.err != nil:
			if dropped++; dropped <= 5 {
				t.Errorf("client %d: %v", i, r.err)
			}
			continue
		case !consecutive(r.heads) || r.heads[len(r.heads)-1] != target:
			err = fmt.Errorf("heads %v, want consecutive up to %d", r.heads, target)
		default:
			err = check(r)
		}
		if err != nil {
			if bad++; bad <= 5 {
				t.Errorf("client %d: %v", i, err)
			}
		}
	}
	return dropped, bad
}

func consecutive(heads []uint64) bool {
	if len(heads) == 0 {
		return false
	}
	for i := 1; i < len(heads); i++ {
		if heads[i] != heads[i-1]+1 {
			return false
		}
	}
	return true
}

// settledCounts waits until the gateway's goroutines and open files stop
// falling (and, when a baseline is given, are back to it) and returns
// them.
func settledCounts(t *testing.T, adminPort, pid, wantG, wantFD int) (int, int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	prevG, prevFD := -1, -1
	for {
		time.Sleep(500 * time.Millisecond)
		gs, fds := goroutines(t, adminPort), openFiles(t, pid)
		back := wantG == 0 || gs <= wantG && fds <= wantFD
		if back && gs == prevG && fds == prevFD {
			return gs, fds
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines %d (baseline %d), file descriptors %d (baseline %d): not back to the baseline", gs, wantG, fds, wantFD)
		}
		prevG, prevFD = gs, fds
	}
}

// goroutines reads the gateway's goroutine count from the admin API's
// pprof endpoint.
func goroutines(t *testing.T, adminPort int) int {
	t.Helper()
	resp, err := httpClient.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/goroutine?debug=1", adminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	var n int
	if _, err := fmt.Sscanf(line, "goroutine profile: total %d", &n); err != nil {
		t.Fatalf("goroutine profile: %q: %v", line, err)
	}
	return n
}

// openFiles counts the process's file descriptors.
func openFiles(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// readHeadsUntil reads new-head notifications until one reaches target
// (0 while the test does not know the last head yet), returning their
// numbers.
func readHeadsUntil(ws *wsConn, target *atomic.Uint64, deadline time.Time) ([]uint64, error) {
	var heads []uint64
	for {
		_, msg, err := ws.readMessage(deadline)
		if err != nil {
			return heads, fmt.Errorf("after %d heads: %w", len(heads), err)
		}
		var note struct {
			Params struct {
				Result json.RawMessage `json:"result"`
			} `json:"params"`
		}
		if json.Unmarshal(msg, &note) != nil {
			return heads, fmt.Errorf("not a notification: %s", msg)
		}
		num, ok := suber.HeaderNumber(note.Params.Result)
		if !ok {
			return heads, fmt.Errorf("no block number: %s", msg)
		}
		heads = append(heads, num)
		if last := target.Load(); last != 0 && num >= last {
			return heads, nil
		}
	}
}

// dialHeads connects a client subscribed to new heads.
func dialHeads(url string) (*wsConn, error) {
	ws, err := wsDial(url, nil, 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	if _, _, err := wsCall(ws, `{"jsonrpc":"2.0","id":1,"method":"chain_subscribeNewHeads"}`, "1"); err != nil {
		ws.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	return ws, nil
}
