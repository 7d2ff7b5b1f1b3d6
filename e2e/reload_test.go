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
	type result struct {
		heads  []uint64
		denied int // the error code of the call after the reloads
		err    error
	}
	results := make([]result, clients)
	var subscribed, wg sync.WaitGroup
	subscribed.Add(clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			once := sync.OnceFunc(subscribed.Done)
			defer once()
			ws, err := dialHeads(g.wsURL(chainURLPath))
			if err != nil {
				r.err = err
				return
			}
			defer ws.Close()
			once()
			if r.heads, r.err = readHeadsUntil(ws, &target, time.Now().Add(90*time.Second)); r.err != nil {
				return
			}
			resp, _, err := wsCall(ws, `{"jsonrpc":"2.0","id":2,"method":"system_chain"}`, "2")
			if err != nil {
				r.err = fmt.Errorf("call after the reloads: %w", err)
				return
			}
			if resp.Error != nil {
				r.denied = resp.Error.code()
			}
		}()
	}
	subscribed.Wait()

	// Heads keep coming through the reloads.
	stop := make(chan struct{})
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				fake.Chain().NewBlock()
			}
		}
	}()
	start := time.Now()
	for i := 1; i <= reloads; i++ {
		load(i)
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d reloads in %v", reloads, time.Since(start).Round(time.Millisecond))
	close(stop)
	<-produced
	// One more head, known to all: each client reads up to it.
	target.Store(fake.Chain().Best().Number + 1)
	fake.Chain().NewBlock()
	wg.Wait()

	dropped, bad := 0, 0
	for i, r := range results {
		switch {
		case r.err != nil:
			dropped++
			if dropped <= 5 {
				t.Errorf("client %d: %v", i, r.err)
			}
		case !consecutive(r.heads) || r.heads[len(r.heads)-1] != target.Load():
			bad++
			if bad <= 5 {
				t.Errorf("client %d: heads %v, want consecutive up to %d", i, r.heads, target.Load())
			}
		case r.denied != -32601:
			bad++
			if bad <= 5 {
				t.Errorf("client %d: system_chain after the last reload answered code %d, want -32601 (denied)", i, r.denied)
			}
		}
	}
	if dropped+bad > 0 {
		t.Fatalf("%d of %d clients dropped, %d lost, repeated or reordered a head or were not under the new config", dropped, clients, bad)
	}
	t.Logf("%d clients, %d heads each (%d..%d), none dropped", clients, len(results[0].heads), results[0].heads[0], target.Load())

	gNow, fdNow := settledCounts(t, g.adminPort, pid, baseG, baseFD)
	t.Logf("after the clients left: %d goroutines, %d file descriptors", gNow, fdNow)
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
