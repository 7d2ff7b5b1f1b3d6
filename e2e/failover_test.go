package e2e

// Issue 3 with a real node: shared subscriptions, node health and failover.
// Two TCP forwarders in front of the one Chopsticks are two nodes of the same
// chain; polkadot.js clients subscribed through the gateway must keep
// receiving every block after the node carrying the gateway's upstream
// subscription dies, without reconnecting and without duplicates.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// failoverCaddyfile: one chain, two "nodes" (the forwarders). Chopsticks makes
// blocks only on request, so the stale-head rule is off (head_timeout 0s);
// a short health interval lets the test see readiness change quickly.
const failoverCaddyfile = `{
	admin 127.0.0.1:@@ADMIN_PORT@@
	default_bind 127.0.0.1
	auto_https off
	skip_install_trust
	elara {
		chain westend {
			node @@NODE_A@@ {
				pool 2
			}
			node @@NODE_B@@ {
				pool 2
			}
			health_interval 200ms
			head_timeout 0s
			max_lag 5
		}
		# The test finds the node carrying the shared subscriptions by
		# counting subscriptions per node: the cache's own head
		# subscriptions would blur that.
		cache off
	}
}

http://127.0.0.1:@@HTTP_PORT@@ {
	elara_rpc
}
`

type chainHealth struct {
	Status    int
	Chain     string `json:"chain"`
	Ready     int    `json:"ready"`
	Best      uint64 `json:"best"`
	Finalized uint64 `json:"finalized"`
	Nodes     []struct {
		URL             string `json:"url"`
		Connected       bool   `json:"connected"`
		Ready           bool   `json:"ready"`
		NotReadyBecause string `json:"not_ready_because"`
	} `json:"nodes"`
	raw string
}

func getHealth(g *gateway) (*chainHealth, error) {
	resp, err := httpClient.Get(g.httpURL(chainURLPath + "/health"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	var h chainHealth
	if err := json.Unmarshal(body, &h); err != nil {
		return nil, fmt.Errorf("GET %s/health: HTTP %d, body not JSON: %v: %s", chainURLPath, resp.StatusCode, err, truncate(string(body), 300))
	}
	h.Status, h.raw = resp.StatusCode, string(body)
	return &h, nil
}

// waitHealth polls GET /{chain}/health until it reports ready nodes with
// HTTP 200, and fails the test after timeout.
func waitHealth(t *testing.T, g *gateway, ready int, timeout time.Duration) *chainHealth {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *chainHealth
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = getHealth(g)
		if lastErr == nil && last.Ready == ready && last.Status == http.StatusOK {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	if lastErr != nil {
		t.Fatalf("health: want ready %d with HTTP 200 within %v: %v", ready, timeout, lastErr)
	}
	t.Fatalf("health: want ready %d with HTTP 200 within %v; last: HTTP %d %s", ready, timeout, last.Status, truncate(last.raw, 1500))
	return nil
}

// checkDeadNode: the health report lists the killed node (the index-th
// node of the config) as not ready. The public report names nodes by
// position ("node-1"), never by address.
func checkDeadNode(t *testing.T, h *chainHealth, index int) {
	t.Helper()
	name := fmt.Sprintf("node-%d", index+1)
	for _, nd := range h.Nodes {
		if strings.Contains(nd.URL, ":") {
			t.Errorf("public health report shows a node address: %s", truncate(h.raw, 1500))
		}
		if nd.URL == name {
			if nd.Ready || nd.Connected {
				t.Errorf("health lists the killed %s as connected %v ready %v: %s", name, nd.Connected, nd.Ready, truncate(h.raw, 1500))
			}
			return
		}
	}
	t.Errorf("health does not list the killed %s: %s", name, truncate(h.raw, 1500))
}

// newBlock makes one block directly on the node (the gateway denies dev_*)
// and returns its number and hash.
func (c *chopsticks) newBlock(t *testing.T) (uint64, string) {
	t.Helper()
	var hash string
	if err := rpcResult(c.httpURL(), "dev_newBlock", []any{map[string]any{"count": 1}}, &hash); err != nil {
		t.Fatalf("dev_newBlock directly on chopsticks: %v", err)
	}
	var hdr struct {
		Number string `json:"number"`
	}
	if err := rpcResult(c.httpURL(), "chain_getHeader", []any{hash}, &hdr); err != nil {
		t.Fatalf("chain_getHeader %s directly on chopsticks: %v", hash, err)
	}
	var n uint64
	if _, err := fmt.Sscanf(hdr.Number, "0x%x", &n); err != nil {
		t.Fatalf("bad header number %q", hdr.Number)
	}
	return n, hash
}

func (c *chopsticks) addr() string { return fmt.Sprintf("127.0.0.1:%d", c.port) }

type failoverHead struct {
	Number uint64  `json:"number"`
	Hash   *string `json:"hash"`
	Error  string  `json:"error"`
}

type failoverReport struct {
	Clients []struct {
		Events struct {
			Connected    int `json:"connected"`
			Disconnected int `json:"disconnected"`
			Error        int `json:"error"`
		} `json:"events"`
		Connected bool           `json:"connected"`
		PjsNew    []failoverHead `json:"pjsNew"`
		PjsFin    []failoverHead `json:"pjsFin"`
		RawNew    []failoverHead `json:"rawNew"`
		RawFin    []failoverHead `json:"rawFin"`
	} `json:"clients"`
}

// holder tells which forwarder carries the gateway's shared subscription
// for a notification method: each node also carries the health monitor's own
// head subscription, so in a window with a new block the holder delivered
// notifications for two distinct subscriptions and the other for one.
func holder(fs []*forwarder, marks []int, method string) (int, string) {
	counts := make([]int, len(fs))
	total, live := 0, 0
	for i, f := range fs {
		counts[i] = f.subsSince(marks[i], method)
		total += counts[i]
		if !f.isKilled() {
			live++
		}
	}
	desc := fmt.Sprintf("%s subscriptions per forwarder: %v", method, counts)
	best := -1
	for i, c := range counts {
		if c >= 2 && (best < 0 || c > counts[best]) {
			best = i
		}
	}
	if best < 0 || total != live+1 {
		return -1, desc
	}
	return best, desc
}

const failoverClients = 3

func TestSharedSubscriptionFailover(t *testing.T) {
	n := realNode(t)
	fwd := []*forwarder{startForwarder(t, n.addr(), ""), startForwarder(t, n.addr(), "")}
	g := startGateway(t, n, failoverCaddyfile, map[string]string{"NODE_A": fwd[0].wsURL(), "NODE_B": fwd[1].wsURL()}, chainURLPath)
	h := waitHealth(t, g, 2, 15*time.Second)
	t.Logf("health before: HTTP %d ready %d", h.Status, h.Ready)

	s := startPJSSession(t, "pjs_failover.mjs", g.wsURL(chainURLPath), fmt.Sprint(failoverClients))
	var start struct {
		First []map[string]uint64 `json:"first"`
	}
	s.mustCall(60*time.Second, "start", nil, &start)
	startNumber := start.First[0]["pjsNew"]
	t.Logf("%d clients subscribed at block #%d (%v)", failoverClients, startNumber, start.First)

	made := map[uint64]string{}
	var order []uint64
	step := func(what string) {
		t.Helper()
		num, hash := n.newBlock(t)
		made[num], order = hash, append(order, num)
		if err := s.call(30*time.Second, "wait", map[string]any{"number": num, "timeoutMs": 15000}, nil); err != nil {
			t.Fatalf("%s: block #%d: %v", what, num, err)
		}
	}
	marks := func() []int { return []int{fwd[0].mark(), fwd[1].mark()} }
	// findHolders makes blocks until each shared subscription's node is
	// known (one block is normally enough).
	findHolders := func(what string) (newH, finH int) {
		t.Helper()
		var dn, df string
		for range 3 {
			m := marks()
			step(what)
			newH, dn = holder(fwd, m, "chain_newHead")
			finH, df = holder(fwd, m, "chain_finalizedHead")
			if newH >= 0 && finH >= 0 {
				t.Logf("%s: new heads via forwarder %d, finalized heads via forwarder %d (%s; %s)", what, newH, finH, dn, df)
				return newH, finH
			}
		}
		t.Fatalf("%s: cannot tell which node carries the shared subscriptions (%s; %s)", what, dn, df)
		return
	}

	// Phase 1: both nodes up.
	step("both nodes up")
	newH, finH := findHolders("both nodes up")
	failedOver := map[string]bool{}

	// Kill the node carrying the new-heads subscription; make a block at
	// once, while the gateway is moving the subscription.
	victim := newH
	failedOver["chain_newHead"] = true
	failedOver["chain_finalizedHead"] = finH == victim
	victimAddr := fwd[victim].addr
	fwd[victim].kill()
	t.Logf("killed forwarder %d (%s)", victim, victimAddr)
	step("right after the kill")
	step("after the kill")
	h = waitHealth(t, g, 1, 10*time.Second)
	t.Logf("health after the kill: HTTP %d ready %d", h.Status, h.Ready)
	checkDeadNode(t, h, victim)
	survivor := 1 - victim
	if nh, fh := findHolders("one node left"); nh != survivor || fh != survivor {
		t.Errorf("with forwarder %d dead the shared subscriptions are on %d and %d", victim, nh, fh)
	}

	// Phase 2: the dead node comes back on the same address.
	fwd[victim] = startForwarder(t, n.addr(), victimAddr)
	h = waitHealth(t, g, 2, 20*time.Second)
	t.Logf("forwarder %d back: health HTTP %d ready %d", victim, h.Status, h.Ready)
	newH, finH = findHolders("node back")
	// Kill the node carrying whichever subscription has not failed over
	// yet (normally both are still on the survivor).
	victim = newH
	if !failedOver["chain_finalizedHead"] {
		victim = finH
	}
	failedOver["chain_newHead"] = failedOver["chain_newHead"] || newH == victim
	failedOver["chain_finalizedHead"] = failedOver["chain_finalizedHead"] || finH == victim
	fwd[victim].kill()
	t.Logf("killed forwarder %d (%s)", victim, fwd[victim].addr)
	step("right after the second kill")
	step("after the second kill")
	step("after the second kill")
	h = waitHealth(t, g, 1, 10*time.Second)
	t.Logf("health after the second kill: HTTP %d ready %d", h.Status, h.Ready)
	checkDeadNode(t, h, victim)
	if !failedOver["chain_newHead"] || !failedOver["chain_finalizedHead"] {
		t.Errorf("the test killed the node of only some shared subscriptions: %v", failedOver)
	}

	// Calls still work through the same connections.
	var calls struct {
		Calls []struct {
			Chain     string `json:"chain"`
			Header    uint64 `json:"header"`
			AliceKey  string `json:"aliceKey"`
			AliceRaw  string `json:"aliceRaw"`
			AliceFree string `json:"aliceFree"`
		} `json:"calls"`
	}
	s.mustCall(60*time.Second, "calls", nil, &calls)
	var chain string
	if err := rpcResult(n.httpURL(), "system_chain", nil, &chain); err != nil {
		t.Fatal(err)
	}
	best := n.bestNumber(t)
	for i, c := range calls.Calls {
		var direct string
		if err := rpcResult(n.httpURL(), "state_getStorage", []any{c.AliceKey}, &direct); err != nil {
			t.Fatal(err)
		}
		if c.Chain != chain || c.Header != best || c.AliceRaw != direct || c.AliceRaw == "" {
			t.Errorf("client %d after the kills: chain %q header #%d Alice %s; node: chain %q best #%d Alice %s",
				i, c.Chain, c.Header, truncate(c.AliceRaw, 80), chain, best, truncate(direct, 80))
		}
	}

	// Every client saw every block exactly once, in order, on every
	// subscription, and never reconnected.
	var rep failoverReport
	s.mustCall(30*time.Second, "report", nil, &rep)
	last := order[len(order)-1]
	want := make([]uint64, 0, last-startNumber+1)
	for b := startNumber; b <= last; b++ {
		want = append(want, b)
	}
	if len(rep.Clients) != failoverClients {
		t.Fatalf("report has %d clients", len(rep.Clients))
	}
	for i, c := range rep.Clients {
		if c.Events.Connected != 1 || c.Events.Disconnected != 0 || c.Events.Error != 0 || !c.Connected {
			t.Errorf("client %d: WsProvider events %+v (connected now: %v), want exactly one connect and no disconnect", i, c.Events, c.Connected)
		}
		for _, l := range []struct {
			name  string
			heads []failoverHead
		}{{"api.rpc.chain.subscribeNewHeads", c.PjsNew}, {"api.rpc.chain.subscribeFinalizedHeads", c.PjsFin},
			{"raw chain_subscribeNewHeads", c.RawNew}, {"raw chain_subscribeFinalizedHeads", c.RawFin}} {
			got := make([]uint64, 0, len(l.heads))
			for _, hd := range l.heads {
				if hd.Error != "" {
					t.Errorf("client %d %s: error notification %s", i, l.name, hd.Error)
					continue
				}
				got = append(got, hd.Number)
				if hd.Hash != nil {
					if wantHash, ok := made[hd.Number]; ok && *hd.Hash != wantHash {
						t.Errorf("client %d %s: block #%d hash %s, made %s", i, l.name, hd.Number, *hd.Hash, wantHash)
					}
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("client %d %s: saw blocks %v, want each of %d..%d exactly once in order", i, l.name, got, startNumber, last)
			}
		}
	}
	if !t.Failed() {
		t.Logf("%d clients × 4 subscriptions saw blocks %d..%d exactly once across two node kills; no reconnect", failoverClients, startNumber, last)
	}
}
