package e2e

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// manyFollowersCaddyfile: the node behind a counting forwarder.
const manyFollowersCaddyfile = `{
	admin 127.0.0.1:@@ADMIN_PORT@@
	default_bind 127.0.0.1
	auto_https off
	skip_install_trust
	elara {
		chain westend {
			node @@NODE_A@@
			head_timeout 0s
			# Chopsticks runs every runtime call (50 clients' metadata) in
			# one JS process: give it time.
			request_timeout 60s
		}
	}
}
http://127.0.0.1:@@HTTP_PORT@@ {
	elara_rpc
}
`

type papiManyResult struct {
	OK           bool     `json:"ok"`
	Error        string   `json:"error"`
	Steps        []string `json:"steps"`
	Clients      int      `json:"clients"`
	AliceFree    []string `json:"aliceFree"`
	Made         []string `json:"made"`
	SawTransfer  int      `json:"sawTransfer"`
	BobDelta     []string `json:"bobDelta"`
	Amount       string   `json:"amount"`
	StreamErrors []string `json:"streamErrors"`
	Transfer     struct {
		OK   bool   `json:"ok"`
		Hash string `json:"hash"`
	} `json:"transfer"`
}

// TestPolkadotAPIManyFollowers: 50 polkadot-api clients through the built
// gateway read storage and watch finalized blocks while blocks are made,
// and all see a transfer sent through the gateway finalized; the node
// behind a counting forwarder gets one chainHead_v1_follow.
func TestPolkadotAPIManyFollowers(t *testing.T) {
	n := realNode(t)
	fwd := startForwarder(t, n.addr(), "")
	g := startGateway(t, n, manyFollowersCaddyfile, map[string]string{"NODE_A": fwd.wsURL()}, chainURLPath)

	clients := 50
	if v, err := strconv.Atoi(os.Getenv("ELARA_E2E_PAPI_CLIENTS")); err == nil && v > 0 {
		clients = v // for a quick look while debugging
	}
	var r papiManyResult
	run := runScript(t, 420*time.Second, nil, &r, "papi_many.mjs", g.wsURL(chainURLPath), n.wsURL(), strconv.Itoa(clients))
	if !r.OK || run.err != nil {
		t.Fatalf("papi_many.mjs failed (exit: %v) after steps %v: %s\nstderr tail:\n%s", run.err, r.Steps, r.Error, run.stderr)
	}
	if follows := fwd.requestCount("chainHead_v1_follow"); follows != 1 {
		t.Errorf("%d chainHead_v1_follow reached the node for %d clients, want 1", follows, clients)
	}
	if len(r.AliceFree) != 1 || r.AliceFree[0] == "0" {
		t.Errorf("//Alice's balance as the clients read it: %v", r.AliceFree)
	}
	if !r.Transfer.OK || r.SawTransfer != clients {
		t.Errorf("transfer ok %v, seen finalized by %d of %d clients", r.Transfer.OK, r.SawTransfer, clients)
	}
	if len(r.BobDelta) != 1 || r.BobDelta[0] != r.Amount {
		t.Errorf("//Bob's balance moved by %v, want %s on every client", r.BobDelta, r.Amount)
	}
	if len(r.StreamErrors) > 0 {
		t.Errorf("finalized streams: %v", r.StreamErrors)
	}
	t.Logf("%d clients, blocks made %d, upstream follows %d, chainHead calls: storage %d, body %d, call %d, unpin %d",
		clients, len(r.Made), fwd.requestCount("chainHead_v1_follow"), fwd.requestCount("chainHead_v1_storage"),
		fwd.requestCount("chainHead_v1_body"), fwd.requestCount("chainHead_v1_call"), fwd.requestCount("chainHead_v1_unpin"))
}
