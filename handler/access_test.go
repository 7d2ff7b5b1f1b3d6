package handler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/gorilla/websocket"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/handler"
	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
	"github.com/elara-gateway/elara/limits"
	"github.com/elara-gateway/elara/projects"
)

// accessPlans are the plans of the access tests, one limit each.
const accessPlans = `
		plan free {
		}
		plan rate {
			requests_per_second 1
			burst 2
		}
		plan daily {
			requests_per_day 3
		}
		plan bytes {
			bytes_per_day 300
		}
		plan conns {
			connections 1
			subscriptions 1
		}
		plan team {
			owner_requests_per_day 3
		}
`

// startAccess runs a gateway with projects in a fresh bolt directory;
// projects is the body of the projects block.
func startAccess(t *testing.T, projectsBody string) (*testgw.Gateway, *app.Access, string) {
	t.Helper()
	gw, x, dir, _ := startAccessNode(t, projectsBody)
	return gw, x, dir
}

func startAccessNode(t *testing.T, projectsBody string) (*testgw.Gateway, *app.Access, string, *fakenode.Node) {
	t.Helper()
	node := fakenode.Start(t)
	dir := t.TempDir()
	global := chainBlock("dev", testChainOpts, node.URL()) + accessPlans +
		fmt.Sprintf("\t\tprojects {\n\t\t\tdir %s\n%s\n\t\t}\n", dir, projectsBody)
	gw := testgw.Start(t, global, "\thandle /metrics {\n\t\tmetrics\n\t}\n\thandle {\n\t\telara_rpc\n\t}")
	x := app.CurrentAccess()
	if x == nil {
		t.Fatal("no access running")
	}
	return gw, x, dir, node
}

func createProject(t *testing.T, x *app.Access, req projects.CreateRequest) projects.Project {
	t.Helper()
	if req.Name == "" {
		req.Name = "test"
	}
	p, err := x.Store().Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func postRaw(t *testing.T, url, body string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := noKeepAlive.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b []byte
	b, _ = readAll(resp)
	return resp, b
}

// noKeepAlive opens a connection per request: a config reload closes
// idle connections, and a POST on one of those fails for no reason a test
// is about.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Minute}

func readAll(resp *http.Response) ([]byte, error) {
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return []byte(sb.String()), nil
		}
	}
}

type rpcErr struct {
	ID    json.RawMessage `json:"id"`
	Error *struct {
		Code    int                 `json:"code"`
		Message string              `json:"message"`
		Data    limits.ExceededData `json:"data"`
	} `json:"error"`
	Result json.RawMessage `json:"result"`
}

func decodeErr(t *testing.T, b []byte) rpcErr {
	t.Helper()
	var r rpcErr
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return r
}

const chainCall = `{"jsonrpc":"2.0","id":7,"method":"system_chain","params":[]}`

// Every refusal before a call is read: status, JSON-RPC code, and a
// message that says why; the same over HTTP and as a refused upgrade.
func TestAccessRefusesRequests(t *testing.T) {
	gw, x, _ := startAccess(t, "\t\t\tpublic off")
	until := time.Now().Add(time.Hour)
	disabled := createProject(t, x, projects.CreateRequest{Plan: "free", Status: projects.Disabled})
	suspended := createProject(t, x, projects.CreateRequest{Plan: "free"})
	if _, err := x.Store().Update(context.Background(), suspended.ID, projects.StatusPatch(projects.Suspended, &until)); err != nil {
		t.Fatal(err)
	}
	otherChain := createProject(t, x, projects.CreateRequest{Plan: "free", Chains: []string{"polkadot"}})
	origin := createProject(t, x, projects.CreateRequest{Plan: "free", Origins: []string{"https://app.example"}})
	network := createProject(t, x, projects.CreateRequest{Plan: "free", Networks: []string{"10.0.0.0/8"}})
	active := createProject(t, x, projects.CreateRequest{Plan: "free", Origins: []string{"https://app.example"}})
	cases := []struct {
		name, path, origin string
		status, code       int
		message            string
	}{
		{"unknown project", "/dev/" + projects.NewID(), "", 404, -32002, "Unknown project"},
		{"disabled", "/dev/" + disabled.ID, "", 403, -32003, "is disabled"},
		{"suspended", "/dev/" + suspended.ID, "", 403, -32003, "is suspended"},
		{"chain not allowed", "/dev/" + otherChain.ID, "", 403, -32003, "may not use chain dev"},
		{"origin not allowed", "/dev/" + origin.ID, "https://evil.example", 403, -32003, "origin is not allowed"},
		{"network not allowed", "/dev/" + network.ID, "", 403, -32003, "network is not allowed"},
		{"public off", "/dev", "", 403, -32003, "serves projects only"},
		{"allowed", "/dev/" + active.ID, "https://app.example", 200, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			resp, body := postRaw(t, gw.HTTP(tc.path), chainCall, h)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			r := decodeErr(t, body)
			if tc.code == 0 {
				if r.Error != nil {
					t.Fatalf("refused: %s", body)
				}
				return
			}
			if r.Error == nil || r.Error.Code != tc.code || !strings.Contains(r.Error.Message, tc.message) {
				t.Fatalf("got %s, want code %d with %q", body, tc.code, tc.message)
			}
			// The same refusal for a WebSocket: the upgrade is refused.
			d := websocket.Dialer{}
			_, wresp, err := d.Dial(gw.WS(tc.path), h)
			if err == nil || wresp == nil || wresp.StatusCode != tc.status {
				t.Fatalf("websocket upgrade: %v %v, want status %d", err, wresp, tc.status)
			}
		})
	}
	// Each refusal was counted by reason, HTTP and WebSocket (the counter
	// lives as long as the process: other tests add to it).
	resp, err := noKeepAlive.Get(gw.HTTP("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := readAll(resp)
	resp.Body.Close()
	for _, reason := range []string{"unknown_project", "disabled", "suspended", "chain", "origin", "network", "public_off"} {
		m := regexp.MustCompile(`elara_calls_refused_total\{reason="` + reason + `"\} (\d+)`).FindSubmatch(metrics)
		if n := 0; m == nil || func() bool { n, _ = strconv.Atoi(string(m[1])); return n < 2 }() {
			t.Errorf("metrics: %s refusals not counted (%q)", reason, m)
		}
	}
}

// Over the rate: 429 with Retry-After and -32029 naming the limit; a
// batch counts each entry and is a 200 while some entries are served.
func TestAccessRateLimitHTTP(t *testing.T) {
	gw, x, _ := startAccess(t, "")
	limitedSeries := `elara_calls_total{chain="dev",method="system_chain",outcome="limited",transport="http"}`
	before, _ := scrape(t, gw)
	p := createProject(t, x, projects.CreateRequest{Plan: "rate"})
	url := gw.HTTP("/dev/" + p.ID)
	batch := `[` + strings.Repeat(chainCall+",", 3) + chainCall + `]`
	resp, body := postRaw(t, url, batch, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("batch: status %d: %s", resp.StatusCode, body)
	}
	var entries []rpcErr
	if err := json.Unmarshal(body, &entries); err != nil {
		t.Fatal(err)
	}
	served, refused := 0, 0
	for _, e := range entries {
		if e.Error == nil {
			served++
		} else if e.Error.Code == -32029 && e.Error.Data.Limit == limits.RequestsPerSecond {
			refused++
		}
	}
	if served != 2 || refused != 2 {
		t.Fatalf("batch of 4 with a burst of 2: %d served, %d refused: %s", served, refused, body)
	}
	resp, body = postRaw(t, url, chainCall, nil)
	r := decodeErr(t, body)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" || r.Error == nil || r.Error.Code != -32029 ||
		!strings.Contains(r.Error.Message, "requests_per_second") || string(r.ID) != "7" {
		t.Fatalf("over the rate: status %d Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// The per-call hook counts each refused entry as a call, limited.
	if after, _ := scrape(t, gw); after[limitedSeries]-before[limitedSeries] != 3 {
		t.Errorf("%s went from %v to %v, want 3 more", limitedSeries, before[limitedSeries], after[limitedSeries])
	}
	// Another project and public access have their own allowance.
	q := createProject(t, x, projects.CreateRequest{Plan: "rate"})
	if resp, body := postRaw(t, gw.HTTP("/dev/"+q.ID), chainCall, nil); resp.StatusCode != 200 {
		t.Fatalf("another project: %d %s", resp.StatusCode, body)
	}
}

// A daily limit: -32029 with reset_at, then the project is suspended
// until the reset, which refuses it with 403.
func TestAccessDailyLimitSuspends(t *testing.T) {
	gw, x, _ := startAccess(t, "\t\t\ttime_zone UTC+8")
	p := createProject(t, x, projects.CreateRequest{Plan: "daily"})
	url := gw.HTTP("/dev/" + p.ID)
	for i := range 3 {
		if resp, body := postRaw(t, url, chainCall, nil); resp.StatusCode != 200 {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := postRaw(t, url, chainCall, nil)
	r := decodeErr(t, body)
	if resp.StatusCode != 429 || r.Error == nil || r.Error.Code != -32029 || r.Error.Data.Limit != limits.RequestsPerDay ||
		r.Error.Data.ResetAt == nil || !strings.Contains(r.Error.Message, "resets at") {
		t.Fatalf("over the day: %d %s", resp.StatusCode, body)
	}
	// The reset is the next midnight at UTC+8.
	if reset := r.Error.Data.ResetAt.In(time.FixedZone("", 8*3600)); reset.Hour() != 0 || reset.Minute() != 0 || time.Until(reset) > 24*time.Hour {
		t.Fatalf("reset at %v, want the next midnight UTC+8", reset)
	}
	waitFor(t, "project suspended", func() bool {
		q, _ := x.Store().Lookup(p.ID)
		return q.Status == projects.Suspended && q.SuspendedUntil != nil && q.SuspendedUntil.Equal(*r.Error.Data.ResetAt)
	})
	resp, body = postRaw(t, url, chainCall, nil)
	if resp.StatusCode != 403 || !strings.Contains(string(body), "suspended") {
		t.Fatalf("suspended project: %d %s", resp.StatusCode, body)
	}
}

// A plan's owner cap counts all projects of one owner together; it
// refuses them without suspending either.
func TestAccessOwnerCap(t *testing.T) {
	gw, x, _ := startAccess(t, "")
	a := createProject(t, x, projects.CreateRequest{Plan: "team", Owner: "acme"})
	b := createProject(t, x, projects.CreateRequest{Plan: "team", Owner: "acme"})
	other := createProject(t, x, projects.CreateRequest{Plan: "team", Owner: "zeta"})
	for _, id := range []string{a.ID, b.ID, a.ID} {
		if resp, body := postRaw(t, gw.HTTP("/dev/"+id), chainCall, nil); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	resp, body := postRaw(t, gw.HTTP("/dev/"+b.ID), chainCall, nil)
	if r := decodeErr(t, body); resp.StatusCode != 429 || r.Error == nil || r.Error.Data.Limit != limits.OwnerRequestsPerDay || r.Error.Data.Scope != limits.ScopeOwner {
		t.Fatalf("fourth call of the owner: %d %s", resp.StatusCode, body)
	}
	if resp, body := postRaw(t, gw.HTTP("/dev/"+other.ID), chainCall, nil); resp.StatusCode != 200 {
		t.Fatalf("another owner: %d %s", resp.StatusCode, body)
	}
	time.Sleep(100 * time.Millisecond)
	if p, _ := x.Store().Lookup(b.ID); p.Status != projects.Active {
		t.Fatalf("an owner cap suspended the project: %s", p.Status)
	}
}

// Response bytes count toward bytes_per_day.
func TestAccessBytesPerDay(t *testing.T) {
	gw, x, _ := startAccess(t, "")
	p := createProject(t, x, projects.CreateRequest{Plan: "bytes"})
	url := gw.HTTP("/dev/" + p.ID)
	for i := range 50 {
		resp, body := postRaw(t, url, chainCall, nil)
		if resp.StatusCode == 429 {
			r := decodeErr(t, body)
			if r.Error.Data.Limit != limits.BytesPerDay || i < 300/len(`{"jsonrpc":"2.0","id":7,"result":"Fake Dev"}`) {
				t.Fatalf("refused after %d calls: %s", i, body)
			}
			return
		}
	}
	t.Fatal("50 answers never reached bytes_per_day 300")
}

// Public access under a plan: limits per client IP.
func TestAccessPublicPlan(t *testing.T) {
	gw, _, _ := startAccess(t, "\t\t\tpublic rate")
	var last *http.Response
	var body []byte
	for range 3 {
		last, body = postRaw(t, gw.HTTP("/dev"), chainCall, nil)
	}
	r := decodeErr(t, body)
	if last.StatusCode != 429 || r.Error == nil || r.Error.Data.Scope != limits.ScopeIP {
		t.Fatalf("third public call with a burst of 2: %d %s", last.StatusCode, body)
	}
}

// Over WebSocket: the same error for that request's id, the connection
// kept; the plan's connections and subscriptions per connection; a
// disabled project's connections closed with 1008.
func TestAccessWebSocket(t *testing.T) {
	gw, x, _ := startAccess(t, "")
	t.Run("rate", func(t *testing.T) {
		p := createProject(t, x, projects.CreateRequest{Plan: "rate"})
		c := testgw.Dial(t, gw.WS("/dev/"+p.ID))
		c.SendRaw([]byte(`[` + strings.Repeat(chainCall+",", 2) + `{"jsonrpc":"2.0","id":"x","method":"system_chain"}]`))
		var entries []rpcErr
		if err := json.Unmarshal(c.RawBatch(5*time.Second), &entries); err != nil {
			t.Fatal(err)
		}
		var refused []string
		for _, e := range entries {
			if e.Error != nil && e.Error.Code == -32029 {
				refused = append(refused, string(e.ID))
			}
		}
		if len(refused) != 1 {
			t.Fatalf("batch of 3, burst 2: refused %v", refused)
		}
		r := c.Call("system_chain", []any{})
		if r.ErrCode() != -32029 {
			t.Fatalf("over the rate: %s", r.Raw)
		}
		time.Sleep(1100 * time.Millisecond)
		if r := c.Call("system_chain", []any{}); r.Error != nil {
			t.Fatalf("the connection should still serve once the rate allows: %s", r.Raw)
		}
	})
	t.Run("connections and subscriptions", func(t *testing.T) {
		p := createProject(t, x, projects.CreateRequest{Plan: "conns"})
		c := testgw.Dial(t, gw.WS("/dev/"+p.ID))
		_, resp, err := websocket.DefaultDialer.Dial(gw.WS("/dev/"+p.ID), nil)
		if err == nil || resp == nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("second connection with connections 1: %v %v", err, resp)
		}
		c.Subscribe("chain_subscribeNewHeads", []any{})
		if r := c.Call("chain_subscribeNewHeads", []any{}); r.ErrCode() != -32029 || !strings.Contains(string(r.Raw), "subscriptions") {
			t.Fatalf("second subscription with subscriptions 1: %s", r.Raw)
		}
		_ = c.Conn.Close()
		waitFor(t, "the connection slot freed", func() bool { return x.Conns().Open(limits.ScopeProject, p.ID) == 0 })
		testgw.Dial(t, gw.WS("/dev/"+p.ID))
	})
	for _, change := range []string{"disabled", "deleted"} {
		t.Run(change, func(t *testing.T) {
			p := createProject(t, x, projects.CreateRequest{Plan: "free"})
			c := testgw.Dial(t, gw.WS("/dev/"+p.ID))
			if r := c.Call("system_chain", []any{}); r.Error != nil {
				t.Fatal(string(r.Raw))
			}
			var err error
			if change == "disabled" {
				_, err = x.Store().Update(context.Background(), p.ID, projects.StatusPatch(projects.Disabled, nil))
			} else {
				err = x.Store().Delete(context.Background(), p.ID)
			}
			if err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-c.Closed:
				var ce *websocket.CloseError
				if !asCloseError(err, &ce) || ce.Code != 1008 || !strings.Contains(ce.Text, "project "+change) {
					t.Fatalf("closed with %v, want 1008 project %s", err, change)
				}
			case <-time.After(time.Second):
				t.Fatal("the connection was not closed within a second")
			}
		})
	}
}

func asCloseError(err error, ce **websocket.CloseError) bool {
	e, ok := err.(*websocket.CloseError)
	*ce = e
	return ok
}

// Projects in the embedded store survive a restart of Caddy, and so do
// the day's counts.
func TestAccessBoltAcrossRestart(t *testing.T) {
	gw, x, dir := startAccess(t, "")
	p := createProject(t, x, projects.CreateRequest{Plan: "daily"})
	url := gw.HTTP("/dev/" + p.ID)
	for range 2 {
		if resp, body := postRaw(t, url, chainCall, nil); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	cfg := gw.Caddyfile(chainBlock("dev", testChainOpts, fakenode.Start(t).URL())+accessPlans+
		fmt.Sprintf("\t\tprojects {\n\t\t\tdir %s\n\t\t}\n", dir), "\telara_rpc")
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	testgw.Load(t, cfg)
	if resp, body := postRaw(t, url, chainCall, nil); resp.StatusCode != 200 {
		t.Fatalf("after a restart: %d %s", resp.StatusCode, body)
	}
	if resp, body := postRaw(t, url, chainCall, nil); resp.StatusCode != 429 {
		t.Fatalf("the day's count should survive the restart: %d %s", resp.StatusCode, body)
	}
}

// A config reload keeps the store (bbolt allows one opener per process)
// and the day's counts, and applies changed plans at once.
func TestAccessReloadKeepsStoreAndCounts(t *testing.T) {
	node := fakenode.Start(t)
	dir := t.TempDir()
	global := func(daily int, zone string) string {
		return chainBlock("dev", testChainOpts, node.URL()) + strings.Replace(accessPlans, "requests_per_day 3", fmt.Sprintf("requests_per_day %d", daily), 1) +
			fmt.Sprintf("\t\tprojects {\n\t\t\tdir %s\n\t\t\ttime_zone %s\n\t\t}\n", dir, zone)
	}
	gw := testgw.Start(t, global(3, "UTC"), "\telara_rpc")
	p := createProject(t, app.CurrentAccess(), projects.CreateRequest{Plan: "daily"})
	url := gw.HTTP("/dev/" + p.ID)
	for range 2 {
		if resp, body := postRaw(t, url, chainCall, nil); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	start := time.Now()
	testgw.Load(t, gw.Caddyfile(global(4, "UTC"), "\telara_rpc"))
	if time.Since(start) > 3*time.Second {
		t.Fatal("the reload waited for the bolt file lock")
	}
	for i := range 2 {
		if resp, body := postRaw(t, url, chainCall, nil); resp.StatusCode != 200 {
			t.Fatalf("call %d after the reload, plan raised to 4: %d %s", i+3, resp.StatusCode, body)
		}
	}
	if resp, body := postRaw(t, url, chainCall, nil); resp.StatusCode != 429 {
		t.Fatalf("fifth call of the day: %d %s", resp.StatusCode, body)
	}
	// A reload that changes the day's settings opens new counters on
	// the same file.
	testgw.Load(t, gw.Caddyfile(global(10, "UTC+8"), "\telara_rpc"))
	if _, ok := app.CurrentAccess().Store().Lookup(p.ID); !ok {
		t.Fatal("project lost across a reload")
	}
}

// The call that reaches a project's daily limit over a WebSocket gets its
// -32029 before the suspension closes the connection (1008): the client
// learns why. The call is held for a moment between its check and its
// reply, where a suspension started by the check would close the
// connection first.
func TestAccessDailyLimitRefusalComesBeforeTheClose(t *testing.T) {
	gw, x, _ := startAccess(t, "")
	p := createProject(t, x, projects.CreateRequest{Plan: "daily"})
	handler.ObserveCalls(t, func(c handler.CallInfo) {
		if c.Project == p.ID && c.Outcome == "refused" {
			time.Sleep(300 * time.Millisecond)
		}
	})
	c := testgw.Dial(t, gw.WS("/dev/"+p.ID))
	for i := range 3 {
		if r := c.Call("system_chain", []any{}); r.Error != nil {
			t.Fatalf("call %d: %s", i, r.Raw)
		}
	}
	r := decodeErr(t, c.Call("system_chain", []any{}).Raw)
	if r.Error == nil || r.Error.Code != -32029 || r.Error.Data.Limit != limits.RequestsPerDay {
		t.Fatalf("over the day: %+v", r.Error)
	}
	select {
	case err := <-c.Closed:
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || !strings.Contains(ce.Text, "suspended") {
			t.Fatalf("closed with %v, want 1008 project suspended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the suspended project's connection stayed open")
	}
}
