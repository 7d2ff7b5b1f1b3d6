package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
)

// reloadChainCaddyfile is the gateway of the chain reload test: one chain
// whose nodes (@@NODES@@), options (@@OPTS@@) and cache block (@@CACHE@@)
// each reload changes.
const reloadChainCaddyfile = `{
	admin 127.0.0.1:@@ADMIN_PORT@@
	default_bind 127.0.0.1
	auto_https off
	skip_install_trust
	elara {
		chain ` + chainPath + ` {
@@NODES@@
@@OPTS@@
		}
@@CACHE@@
	}
}
http://127.0.0.1:@@HTTP_PORT@@ {
	elara_rpc
}
`

// Reloads that change the chain itself keep its clients: 200 clients
// subscribed to new heads stay connected while reloads (POST /load)
// change the cache block, the chain's options, and its nodes (one added,
// the first removed, one's options changed); each receives every head
// exactly once and in order, their calls afterwards follow the last
// config (a method it does not cache, answered by the node it names), the removed node is let go of, and once the clients
// leave, the gateway's goroutines and file descriptors are back to what
// they were before they came.
func TestReloadsChangingTheChainKeepClients(t *testing.T) {
	const clients = 200
	chain := fakenode.NewChain()
	a, b := fakenode.Start(t, fakenode.WithChain(chain)), fakenode.Start(t, fakenode.WithChain(chain))
	chain.SetStorage("0x0102", "0xaa")
	node := func(url string, pool int) string {
		return fmt.Sprintf("\t\t\tnode %s {\n\t\t\t\tpool %d\n\t\t\t}", url, pool)
	}
	const longOpts = "\t\t\trequest_timeout 5s\n\t\t\tmax_lag 3\n\t\t\thead_timeout 30s\n\t\t\tsubscription_grace 1s"
	const noStorage = "\t\tcache {\n\t\t\tnocache state_getStorage\n\t\t}"
	configs := []struct {
		name               string
		nodes, opts, cache string
	}{
		{"start", node(a.URL(), 2), "", ""},
		{"cache changed", node(a.URL(), 2), "", noStorage},
		{"cache off", node(a.URL(), 2), "", "\t\tcache off"},
		{"options changed", node(a.URL(), 2), longOpts, "\t\tcache off"},
		{"node added", node(a.URL(), 2) + "\n" + node(b.URL(), 2), longOpts, "\t\tcache off"},
		{"first node removed", node(b.URL(), 2), longOpts, "\t\tcache off"},
		{"node options changed", node(b.URL(), 3), longOpts, "\t\tcache off"},
		// The shape of the second config, on the other node: the calls
		// after the reloads are not cached and reach node b.
		{"back to the defaults", node(b.URL(), 2), "", noStorage},
	}
	vars := func(i int) map[string]string {
		return map[string]string{"NODES": configs[i].nodes, "OPTS": configs[i].opts, "CACHE": configs[i].cache}
	}
	_, portStr, _ := net.SplitHostPort(a.Addr())
	port, _ := strconv.Atoi(portStr)
	g := startGateway(t, &chopsticks{port: port}, reloadChainCaddyfile, vars(0), chainURLPath)
	pid := g.cmd.Process.Pid
	load := func(i int) {
		t.Helper()
		repl := []string{"@@ADMIN_PORT@@", strconv.Itoa(g.adminPort), "@@HTTP_PORT@@", strconv.Itoa(g.httpPort)}
		for k, v := range vars(i) {
			repl = append(repl, "@@"+k+"@@", v)
		}
		cfg := strings.NewReplacer(repl...).Replace(reloadChainCaddyfile)
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/load", g.adminPort), strings.NewReader(cfg))
		req.Header.Set("Content-Type", "text/caddyfile")
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatalf("reload %q: %v", configs[i].name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("reload %q: %d %s", configs[i].name, resp.StatusCode, body)
		}
	}

	baseG, baseFD := settledCounts(t, g.adminPort, pid, 0, 0)
	t.Logf("baseline: %d goroutines, %d file descriptors", baseG, baseFD)

	var target atomic.Uint64 // the last head; 0 until it is known
	results, done := startHeadClients(g.wsURL(chainURLPath), clients, &target, `{"jsonrpc":"2.0","id":2,"method":"state_getStorage","params":["0x0102"]}`)
	stop := produceHeads(chain.NewBlock)
	for i := 1; i < len(configs); i++ {
		load(i)
		time.Sleep(500 * time.Millisecond)
	}
	stop()
	bCalls := b.Calls("state_getStorage")
	// One more head, known to all: each client reads up to it.
	target.Store(chain.Best().Number + 1)
	chain.NewBlock()
	done()

	dropped, bad := checkHeadClients(t, results, target.Load(), func(r headClient) error {
		if r.reply.Error != nil {
			return fmt.Errorf("call after the reloads: %s", r.reply.Error)
		}
		return nil
	})
	if dropped+bad > 0 {
		t.Fatalf("%d of %d clients dropped, %d lost, repeated or reordered a head", dropped, clients, bad)
	}
	if got := b.Calls("state_getStorage") - bCalls; got < clients {
		t.Fatalf("node b, the last config's, answered %d of the %d calls after the reloads", got, clients)
	}
	if a.Connections() != 0 {
		t.Fatalf("the removed node still has %d connections", a.Connections())
	}
	t.Logf("%d clients, %d heads each (%d..%d), none dropped", clients, len(results[0].heads), results[0].heads[0], target.Load())

	gNow, fdNow := settledCounts(t, g.adminPort, pid, baseG, baseFD)
	t.Logf("after the clients left: %d goroutines, %d file descriptors", gNow, fdNow)
}
