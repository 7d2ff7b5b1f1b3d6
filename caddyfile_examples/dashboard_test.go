package examples

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// The dashboard example runs unedited: /dashboard redirects to the page,
// the API shows the chain's node, and a project created through it is
// served at once on elara_rpc, on the same site.
func TestDashboardExample(t *testing.T) {
	node := fakenode.Start(t)
	gw := runExample(t, "dashboard.Caddyfile", map[string]string{"ELARA_UPSTREAM": node.URL(), "ELARA_CHAIN": "devnet"})

	resp, err := http.Get(gw.HTTP("/dashboard"))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/dashboard/" || !strings.Contains(string(page), "uPlot.iife.min.js") {
		t.Fatalf("GET /dashboard: %d at %s\n%.300s", resp.StatusCode, resp.Request.URL, page)
	}

	resp, err = http.Get(gw.HTTP("/dashboard/api/overview"))
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		View     string
		Projects bool
		Chains   []struct {
			Chain string
			Nodes []struct{ URL string }
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&o)
	resp.Body.Close()
	if err != nil || o.View != "operator" || !o.Projects || len(o.Chains) != 1 || o.Chains[0].Chain != "devnet" || len(o.Chains[0].Nodes) == 0 {
		t.Fatalf("overview: %v %+v", err, o)
	}

	resp, err = http.Post(gw.HTTP("/dashboard/api/projects"), "application/json", strings.NewReader(`{"name":"wallet","plan":"free"}`))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		ID        string
		Endpoints []struct{ HTTP string }
	}
	err = json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if resp.StatusCode != 201 || err != nil || len(p.Endpoints) != 1 {
		t.Fatalf("create: %d %v %+v", resp.StatusCode, err, p)
	}
	if r := testgw.PostCall(t, p.Endpoints[0].HTTP, "system_chain", nil); string(r.Result) != `"Fake Dev"` {
		t.Fatalf("project call at %s: %s", p.Endpoints[0].HTTP, r.Raw)
	}
}
