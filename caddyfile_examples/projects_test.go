package examples

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
)

// The projects example runs unedited: the original's four plans, public
// calls under "normal", and a project created through the admin API
// served at once.
func TestProjectsExample(t *testing.T) {
	node := fakenode.Start(t)
	gw := runExample(t, "projects.Caddyfile", map[string]string{"ELARA_UPSTREAM": node.URL(), "ELARA_CHAIN": "devnet"})
	admin := "http://" + os.Getenv("ELARA_ADMIN") // runExample picked a free port
	resp, err := http.Get(admin + "/elara/plans")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var plans []struct {
		Name              string  `json:"name"`
		RequestsPerSecond float64 `json:"requests_per_second"`
		RequestsPerDay    int64   `json:"requests_per_day"`
		BytesPerDay       int64   `json:"bytes_per_day"`
	}
	if err := json.Unmarshal(body, &plans); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	want := map[string][3]int64{"normal": {5, 100000, 1e9}, "bronze": {10, 200000, 2e9}, "silver": {15, 500000, 5e9}, "gold": {20, 1000000, 10e9}}
	for _, p := range plans {
		w, ok := want[p.Name]
		if !ok || int64(p.RequestsPerSecond) != w[0] || p.RequestsPerDay != w[1] || p.BytesPerDay != w[2] {
			t.Fatalf("plan %+v, want %v", p, w)
		}
		delete(want, p.Name)
	}
	if len(want) != 0 {
		t.Fatalf("missing plans %v", want)
	}
	if r := testgw.PostCall(t, gw.HTTP("/devnet"), "system_chain", nil); string(r.Result) != `"Fake Dev"` {
		t.Fatalf("public call: %s", r.Raw)
	}
	resp, err = http.Post(admin+"/elara/projects", "application/json", strings.NewReader(`{"name":"wallet","owner":"acme","plan":"gold"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	var p struct{ ID string }
	if resp.StatusCode != 201 || json.Unmarshal(body, &p) != nil {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	if r := testgw.PostCall(t, gw.HTTP("/devnet/"+p.ID), "system_chain", nil); string(r.Result) != `"Fake Dev"` {
		t.Fatalf("project call: %s", r.Raw)
	}
	if status, body := testgw.Post(t, gw.HTTP("/devnet/"+strings.Repeat("ab", 16)), []byte(`{"jsonrpc":"2.0","id":1,"method":"system_chain"}`)); status != 404 {
		t.Fatalf("unknown project: %d %s", status, body)
	}
}
