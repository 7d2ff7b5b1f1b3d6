package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dashboardCaddyfile: projects on, the dashboard at /dashboard/ on the
// same site as elara_rpc, no auth (loopback only), access logs on (they
// must not hold an owner's secret).
const dashboardCaddyfile = globalOptionsHead + `		plan free {
			requests_per_second 50
			requests_per_day    100000
			bytes_per_day       1GB
		}
		projects
	}
}
http://127.0.0.1:@@HTTP_PORT@@ {
	log
	handle /dashboard/* {
		elara_dashboard
	}
	handle {
		elara_rpc
	}
}
`

// dashboardRun is what browser_dashboard.mjs saw.
type dashboardRun struct {
	View   string `json:"view"`
	Chains []struct {
		Chain string `json:"chain"`
		Text  string `json:"text"`
	} `json:"chains"`
	ID                   string            `json:"id"`
	Secret               string            `json:"secret"`
	OwnerLink            string            `json:"ownerLink"`
	Endpoints            []string          `json:"endpoints"`
	FirstCall            dashboardCall     `json:"firstCall"`
	RowText              string            `json:"rowText"`
	RowsWhenSearchMisses int               `json:"rowsWhenSearchMisses"`
	RowsWhenSearchHits   []string          `json:"rowsWhenSearchHits"`
	Statistics           bool              `json:"statistics"`
	TodayCalls           string            `json:"todayCalls"`
	Charts               int               `json:"charts"`
	ChartCalls           []int64           `json:"chartCalls"`
	OwnerView            string            `json:"ownerView"`
	OwnerText            string            `json:"ownerText"`
	OwnerShowsOther      bool              `json:"ownerShowsOther"`
	OwnerOverflow        dashboardOverflow `json:"ownerOverflow"`
	BadOwnerText         string            `json:"badOwnerText"`
	DisabledCall         dashboardCall     `json:"disabledCall"`
	EnabledCall          dashboardCall     `json:"enabledCall"`
	DeletedCall          dashboardCall     `json:"deletedCall"`
	LimitedRow           string            `json:"limitedRow"`
	LimitedCall          dashboardCall     `json:"limitedCall"`
	SecondSocketStatus   int               `json:"secondSocketStatus"`
	OperatorOverflow     dashboardOverflow `json:"operatorOverflow"`
	Log                  []string          `json:"log"`
}

type dashboardCall struct {
	Status int `json:"status"`
	Body   struct {
		Result json.RawMessage `json:"result"`
		Error  *rpcError       `json:"error"`
	} `json:"body"`
}

type dashboardOverflow struct {
	ScrollWidth int `json:"scrollWidth"`
	InnerWidth  int `json:"innerWidth"`
}

// dashboardCalls is how many calls the test sends to the project it
// creates in the UI.
const dashboardCalls = 7

// TestDashboardInBrowser: headless Chromium drives the built gateway's
// dashboard, Chopsticks behind it. The chain shows its ready node; a
// project created in the UI serves calls at once and shows up in the
// table (search finds it); its owner link, at phone width, shows that
// project and not another, with nothing wider than the screen, and a
// wrong secret is refused; disabled in the UI it is refused at once,
// enabled served again, refused over a daily limit lowered in the UI,
// deleted (confirmed) unknown; the operator view
// fits a phone too. With statistics, the totals show the calls sent.
// Screenshots are kept as artefacts when it fails; with
// ELARA_DASHBOARD_DOCS_SHOT=<png> it also writes the README's screenshot;
// ELARA_DASHBOARD_SHOTS=<dir> keeps every screenshot.
func TestDashboardInBrowser(t *testing.T) {
	chromium := requireBrowser(t)
	n := realNode(t)
	g := startGateway(t, n, dashboardCaddyfile, nil, chainURLPath)
	otherName := "other-project-" + fmt.Sprint(g.httpPort)
	resp, err := httpClient.Post(g.httpURL("/dashboard/api/projects"), "application/json",
		strings.NewReader(`{"name":"`+otherName+`","plan":"free"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("creating the other project: %d %s", resp.StatusCode, b)
	}

	shots := t.TempDir()
	if d := os.Getenv("ELARA_DASHBOARD_SHOTS"); d != "" { // to look at them
		shots = d
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dir := artefactDir(t)
		for _, f := range []string{"operator.png", "owner-phone.png", "operator-phone.png"} {
			if b, err := os.ReadFile(filepath.Join(shots, f)); err == nil {
				_ = os.WriteFile(filepath.Join(dir, f), b, 0o644)
			}
		}
	})
	var run dashboardRun
	args := []string{g.httpURL("/dashboard/"), shots, otherName, fmt.Sprint(dashboardCalls)}
	if p := os.Getenv("ELARA_DASHBOARD_DOCS_SHOT"); p != "" {
		if !filepath.IsAbs(p) {
			p = filepath.Join(repoRoot, p)
		}
		args = append(args, p)
	}
	runBrowserScript(t, chromium, "browser_dashboard.mjs", &run, args...)
	t.Logf("browser log:\n%s", strings.Join(run.Log, "\n"))

	var chain string
	if err := rpcResult(n.httpURL(), "system_chain", nil, &chain); err != nil {
		t.Fatal(err)
	}
	served := func(c dashboardCall) bool {
		return c.Status == 200 && c.Body.Error == nil && string(c.Body.Result) == `"`+chain+`"`
	}
	wantEndpoint := g.httpURL(chainURLPath + "/" + run.ID)

	t.Run("operator view shows the ready chain", func(t *testing.T) {
		if run.View != "operator" || len(run.Chains) != 1 || run.Chains[0].Chain != chainPath ||
			!strings.Contains(run.Chains[0].Text, "1/1 nodes ready") {
			t.Fatalf("view %q, chains %+v", run.View, run.Chains)
		}
	})
	t.Run("a project created in the UI serves calls at once", func(t *testing.T) {
		if len(run.ID) != 32 || len(run.Secret) != 32 || len(run.Endpoints) != 2 || run.Endpoints[0] != wantEndpoint {
			t.Fatalf("created: id %q, secret shown %v, endpoints %q (want %s first)", run.ID, run.Secret != "", run.Endpoints, wantEndpoint)
		}
		if !served(run.FirstCall) {
			t.Fatalf("first call: %+v", run.FirstCall)
		}
	})
	t.Run("it shows in the table and search finds it", func(t *testing.T) {
		if !strings.Contains(run.RowText, "ui-project") || !strings.Contains(run.RowText, "ui-owner") || !strings.Contains(run.RowText, "active") {
			t.Fatalf("row: %q", run.RowText)
		}
		if run.RowsWhenSearchMisses != 0 || len(run.RowsWhenSearchHits) != 1 || run.RowsWhenSearchHits[0] != run.ID {
			t.Fatalf("search: %d rows for a miss, %q for a hit", run.RowsWhenSearchMisses, run.RowsWhenSearchHits)
		}
	})
	t.Run("the owner link shows that project only", func(t *testing.T) {
		if run.OwnerView != "owner" || !strings.Contains(run.OwnerText, "ui-project") || run.OwnerShowsOther ||
			!strings.Contains(run.OwnerText, wantEndpoint) {
			t.Fatalf("owner view %q, shows other %v:\n%s", run.OwnerView, run.OwnerShowsOther, run.OwnerText)
		}
		if !strings.Contains(run.BadOwnerText, "wrong secret") {
			t.Fatalf("a wrong secret: %q", run.BadOwnerText)
		}
		logs, err := os.ReadFile(g.logPath)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(logs), "/dashboard/project/api/overview") {
			t.Fatalf("the access log has no owner request:\n%s", logTail(g.logPath, 20))
		}
		if strings.Contains(string(logs), run.Secret) {
			t.Fatalf("the gateway log holds the owner's secret")
		}
	})
	t.Run("disabled in the UI is refused, enabled served, a lower limit applies, deleted is unknown", func(t *testing.T) {
		if run.DisabledCall.Status != 403 || served(run.DisabledCall) {
			t.Fatalf("disabled: %+v", run.DisabledCall)
		}
		if !served(run.EnabledCall) {
			t.Fatalf("enabled: %+v", run.EnabledCall)
		}
		if run.SecondSocketStatus != 429 {
			t.Fatalf("a second WebSocket with connections 1 set in the UI: status %d, want 429", run.SecondSocketStatus)
		}
		if !strings.Contains(run.LimitedRow, "/ 5") || run.LimitedCall.Status != 429 || run.LimitedCall.Body.Error == nil || run.LimitedCall.Body.Error.code() != -32029 {
			t.Fatalf("daily limit lowered to 5 in the UI after %d calls: row %q, call %+v", dashboardCalls+2, run.LimitedRow, run.LimitedCall)
		}
		if run.DeletedCall.Status != 404 {
			t.Fatalf("deleted: %+v", run.DeletedCall)
		}
	})
	t.Run("phone width has no horizontal overflow", func(t *testing.T) {
		for name, o := range map[string]dashboardOverflow{"owner": run.OwnerOverflow, "operator": run.OperatorOverflow} {
			if o.InnerWidth != 390 || o.ScrollWidth > o.InnerWidth {
				t.Errorf("%s view at phone width: %d px of content in %d", name, o.ScrollWidth, o.InnerWidth)
			}
		}
	})
	t.Run("the totals show the calls sent", func(t *testing.T) {
		if !run.Statistics {
			t.Fatal("the dashboard says statistics are off; they are on by default")
		}
		if run.TodayCalls != fmt.Sprint(dashboardCalls) || run.Charts != 2 || len(run.ChartCalls) != 2 ||
			run.ChartCalls[0] != dashboardCalls || run.ChartCalls[1] != dashboardCalls {
			t.Fatalf("today's calls shown %q, calls drawn by the 24 h and 30 day charts %v, %d charts; want %d calls in each of 2 charts",
				run.TodayCalls, run.ChartCalls, run.Charts, dashboardCalls)
		}
	})
}
