package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elara-gateway/elara/cacher/cachertest"
)

// projectsCaddyfile: projects on, with plans for the tests; @@STORE@@ is
// extra app options (redis).
const projectsCaddyfile = globalOptionsHead + `		plan tight {
			requests_per_second 5
			burst 20
		}
		plan shared {
			requests_per_second 20
			burst 20
		}
		plan daily {
			requests_per_day 10
		}
		@@STORE@@
		projects
	}
}
http://127.0.0.1:@@HTTP_PORT@@ {
	elara_rpc
}
`

// createProjectVia creates a project through a gateway's admin API.
func createProjectVia(t *testing.T, g *gateway, plan string) string {
	t.Helper()
	resp, err := httpClient.Post(fmt.Sprintf("http://127.0.0.1:%d/elara/projects", g.adminPort), "application/json",
		strings.NewReader(`{"name":"e2e","owner":"e2e","plan":"`+plan+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var p struct{ ID string }
	if resp.StatusCode != 201 || json.Unmarshal(b, &p) != nil {
		t.Fatalf("create project: %d %s", resp.StatusCode, b)
	}
	return p.ID
}

// polkadot.js through /{chain}/{project}: over the rate it surfaces the
// -32029 error naming the limit; a disabled project's connections end
// with 1008 and a reason within a second.
func TestProjectsWithPolkadotJS(t *testing.T) {
	n := realNode(t)
	g := startGateway(t, n, projectsCaddyfile, map[string]string{"STORE": ""}, chainURLPath)
	id := createProjectVia(t, g, "tight")
	var r struct {
		OK           bool     `json:"ok"`
		Error        string   `json:"error"`
		Chain        string   `json:"chain"`
		Served       int      `json:"served"`
		Refused      []string `json:"refused"`
		CloseCode    int      `json:"closeCode"`
		CloseReason  string   `json:"closeReason"`
		CloseMs      int      `json:"closeMs"`
		Disconnected bool     `json:"disconnected"`
	}
	run := runScript(t, 90*time.Second, nil, &r, "pjs_limits.mjs", g.wsURL(chainURLPath+"/"+id), fmt.Sprintf("http://127.0.0.1:%d", g.adminPort), id)
	if !r.OK {
		t.Fatalf("script failed (%v): %s\nstderr:\n%s", run.err, r.Error, run.stderr)
	}
	if r.Chain == "" || r.Served < 15 || r.Served > 26 || len(r.Refused) < 14 {
		t.Fatalf("40 calls at once with burst 20: %d served, %d refused (chain %q)", r.Served, len(r.Refused), r.Chain)
	}
	t.Logf("40 calls at once: %d served, %d refused (%s); disabled: closed %d %q after %d ms", r.Served, len(r.Refused),
		truncate(r.Refused[0], 200), r.CloseCode, r.CloseReason, r.CloseMs)
	for _, msg := range r.Refused {
		if !strings.Contains(msg, "-32029") || !strings.Contains(msg, "requests_per_second") {
			t.Fatalf("polkadot.js surfaced %q, want -32029 naming requests_per_second", msg)
		}
	}
	if r.CloseCode != 1008 || !strings.Contains(r.CloseReason, "disabled") || r.CloseMs > 1000 || !r.Disconnected {
		t.Fatalf("disabled project: close %d %q after %d ms, provider disconnected %v", r.CloseCode, r.CloseReason, r.CloseMs, r.Disconnected)
	}
}

// Two gateway processes on one Redis share a project: its rate (within
// 20% of the plan across both), its daily count, its suspension and
// its disabling.
func TestProjectsTwoGatewaysShareRedis(t *testing.T) {
	n := realNode(t)
	r := cachertest.StartRedis(t)
	store := map[string]string{"STORE": "redis " + r.Addr}
	a := startGateway(t, n, projectsCaddyfile, store, chainURLPath)
	b := startGateway(t, n, projectsCaddyfile, store, chainURLPath)
	call := func(g *gateway, id string) int {
		resp, err := postRaw(g.httpURL(chainURLPath+"/"+id), request(1, "system_chain", nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Status
	}

	t.Run("rate", func(t *testing.T) {
		id := createProjectVia(t, a, "shared")
		waitUntil(t, "the project on the second gateway", func() bool { return call(b, id) == 200 })
		time.Sleep(1500 * time.Millisecond) // the burst refills
		var served atomic.Int64
		const window = 3 * time.Second
		start := time.Now()
		var wg sync.WaitGroup
		for _, g := range []*gateway{a, b, a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(start) < window {
					if call(g, id) == 200 {
						served.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start).Seconds()
		allowed := 20 + 20*elapsed // burst + rate × time, across both gateways
		got := float64(served.Load())
		t.Logf("served %v calls in %.1fs through two gateways; the plan allows %.0f", got, elapsed, allowed)
		if got > 1.2*allowed || got < 0.8*20*elapsed {
			t.Fatalf("served %v, want within 20%% of %.0f", got, allowed)
		}
	})

	t.Run("daily count and suspension", func(t *testing.T) {
		id := createProjectVia(t, a, "daily")
		waitUntil(t, "the project on the second gateway", func() bool { return call(b, id) == 200 })
		for range 4 {
			if s := call(a, id); s != 200 {
				t.Fatalf("call on a: %d", s)
			}
		}
		time.Sleep(600 * time.Millisecond) // counts reach Redis and come back
		served := 5
		for range 10 {
			if call(b, id) == 200 {
				served++
			}
		}
		if served != 10 {
			t.Fatalf("served %d calls of a 10-a-day project across two gateways", served)
		}
		waitUntil(t, "suspended on both", func() bool { return call(a, id) == 403 && call(b, id) == 403 })
	})

	t.Run("disabled on one gateway closes the other's clients", func(t *testing.T) {
		id := createProjectVia(t, a, "shared")
		waitUntil(t, "the project on the second gateway", func() bool { return call(b, id) == 200 })
		ws, err := wsDial(b.wsURL(chainURLPath+"/"+id), nil, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		req, _ := http.NewRequest(http.MethodPatch, fmt.Sprintf("http://127.0.0.1:%d/elara/projects/%s", a.adminPort, id), strings.NewReader(`{"status":"disabled"}`))
		resp, err := httpClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("disable: %v %v", err, resp)
		}
		resp.Body.Close()
		start := time.Now()
		_, _, err = ws.readMessage(time.Now().Add(2 * time.Second))
		ce, ok := err.(*wsCloseError)
		if !ok || ce.Code != 1008 || !strings.Contains(ce.Reason, "disabled") || time.Since(start) > 1200*time.Millisecond {
			t.Fatalf("closed after %v with %v, want 1008 project disabled within a second", time.Since(start), err)
		}
	})
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// polkadot-api through /{chain}/{project}: over the rate its requests
// reject with the -32029 error, and the same client goes on once the
// rate allows.
func TestProjectsWithPolkadotAPI(t *testing.T) {
	n := realNode(t)
	g := startGateway(t, n, projectsCaddyfile, map[string]string{"STORE": ""}, chainURLPath)
	id := createProjectVia(t, g, "tight")
	// polkadot-api rejects Chopsticks' genesis: one block first.
	var made json.RawMessage
	if err := rpcResult(n.httpURL(), "dev_newBlock", []any{map[string]any{"count": 1}}, &made); err != nil {
		t.Fatal(err)
	}
	var r struct {
		OK      bool     `json:"ok"`
		Error   string   `json:"error"`
		Chain   string   `json:"chain"`
		Served  int      `json:"served"`
		Refused []string `json:"refused"`
		After   string   `json:"after"`
	}
	run := runScript(t, 90*time.Second, nil, &r, "papi_limits.mjs", g.wsURL(chainURLPath+"/"+id))
	if !r.OK {
		t.Fatalf("script failed (%v): %s\nstderr:\n%s", run.err, r.Error, run.stderr)
	}
	if r.Served < 10 || r.Served > 26 || len(r.Refused) < 14 || r.After == "" {
		t.Fatalf("40 requests at once with burst 20: %d served, %d refused, then %q", r.Served, len(r.Refused), r.After)
	}
	t.Logf("40 requests at once: %d served, %d refused (%s)", r.Served, len(r.Refused), truncate(r.Refused[0], 200))
	for _, msg := range r.Refused {
		if !strings.HasPrefix(msg, "-32029: ") || !strings.Contains(msg, "requests_per_second") {
			t.Fatalf("polkadot-api surfaced %q, want the -32029 error naming requests_per_second", msg)
		}
	}
}
