package examples

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// The quickstart caches (a repeated cacheable call never reaches the node)
// and serves Elara's metrics at /metrics.
func TestQuickstartCachesAndServesMetrics(t *testing.T) {
	node := fakenode.Start(t)
	gw := runExample(t, "quickstart.Caddyfile", map[string]string{"ELARA_UPSTREAM": node.URL(), "ELARA_CHAIN": "devnet"})
	hash := node.Chain().Finalized().Hash
	first := testgw.PostCall(t, gw.HTTP("/devnet"), "chain_getHeader", []string{hash})
	if first.Error != nil {
		t.Fatalf("chain_getHeader: %s", first.Raw)
	}
	// Until the cache knows the chain (its genesis), calls go to the node;
	// then repeated calls never do. The deadline only bounds a broken build.
	calls := 1
	for deadline := time.Now().Add(20 * time.Second); ; {
		before := node.Calls("chain_getHeader")
		for range 3 {
			if r := testgw.PostCall(t, gw.HTTP("/devnet"), "chain_getHeader", []string{hash}); string(r.Result) != string(first.Result) {
				t.Fatalf("got %s, want %s", r.Result, first.Result)
			}
		}
		calls += 3
		n := node.Calls("chain_getHeader") - before
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("repeated calls still reach the node (%d of 3): the quickstart must cache", n)
		}
		time.Sleep(10 * time.Millisecond)
	}

	resp, err := http.Get(gw.HTTP("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`elara_calls_total{chain="devnet",method="chain_getHeader",outcome="ok",transport="http"} ` + strconv.Itoa(calls),
		`elara_cache_hits_total{chain="devnet",method="chain_getHeader"} `,
		`elara_upstream_ready{chain="devnet",node="` + node.Addr() + `"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
