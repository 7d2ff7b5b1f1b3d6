package handler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
	"github.com/elara-gateway/elara/jobs"
	"github.com/elara-gateway/elara/projects"
)

// statsTally is what the clients saw, per project: the aggregates must
// equal it.
type statsTally struct {
	calls, errors, bytesIn, bytesOut int64
	codes                            map[string]int64
	methods                          map[string]int64
}

func (s *statsTally) add(method string, paramsLen int, reply []byte) {
	if s.codes == nil {
		s.codes, s.methods = map[string]int64{}, map[string]int64{}
	}
	s.calls++
	s.bytesIn += int64(paramsLen)
	s.bytesOut += int64(len(reply))
	s.methods[method]++
	var r testgw.Response
	if err := json.Unmarshal(reply, &r); err == nil && r.Error != nil {
		s.errors++
		s.codes[strconv.Itoa(r.Error.Code)]++
	}
}

func (s *statsTally) plus(o *statsTally) *statsTally {
	out := &statsTally{calls: s.calls + o.calls, errors: s.errors + o.errors, bytesIn: s.bytesIn + o.bytesIn,
		bytesOut: s.bytesOut + o.bytesOut, codes: map[string]int64{}, methods: map[string]int64{}}
	for _, t := range []*statsTally{s, o} {
		for k, v := range t.codes {
			out.codes[k] += v
		}
		for k, v := range t.methods {
			out.methods[k] += v
		}
	}
	return out
}

func startStatsGateway(t *testing.T, node *fakenode.Node, dir string, port, admin int) *testgw.Gateway {
	t.Helper()
	g := &testgw.Gateway{Port: port}
	global := chainBlock("dev", testChainOpts, node.URL()) + accessPlans +
		fmt.Sprintf("\t\tprojects {\n\t\t\tdir %s\n\t\t}\n\t\tstats {\n\t\t\tdir %s\n\t\t\tflush_interval 100ms\n\t\t}\n", dir, dir)
	cf := strings.Replace(g.Caddyfile(global, metricsSite), "admin off", fmt.Sprintf("admin 127.0.0.1:%d", admin), 1)
	testgw.Load(t, cf)
	return g
}

// TestStatsExactOverEveryPath sends calls over HTTP, in batches and on a
// WebSocket, public and for a project, and reads every aggregate back
// from the admin API: each equals what the clients sent and got. The
// totals survive a restart of the gateway.
func TestStatsExactOverEveryPath(t *testing.T) {
	node := fakenode.Start(t)
	dir := t.TempDir()
	port, adminPort := testgw.FreePort(t), testgw.FreePort(t)
	gw := startStatsGateway(t, node, dir, port, adminPort)
	t.Cleanup(func() { stopCaddy(t) })
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	before, _ := scrape(t, gw)
	droppedBefore := before["elara_stats_records_dropped_total"]

	status, body := adminDo(t, "POST", admin+"/elara/projects", `{"name":"stats","owner":"acme","plan":"free"}`)
	if status != 201 {
		t.Fatalf("create project: %d %s", status, body)
	}
	var p projects.Project
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	// A project reads its own statistics with its secret (the
	// dashboard's check): right secret only, same answer for an unknown id.
	ctx := context.Background()
	if err := app.CheckProjectSecret(ctx, p.ID, p.Secret.Reveal()); err != nil {
		t.Errorf("right secret: %v", err)
	}
	for name, c := range map[string][2]string{"wrong secret": {p.ID, strings.Repeat("0", 32)},
		"unknown id": {strings.Repeat("a", 32), p.Secret.Reveal()}, "empty": {p.ID, ""}} {
		if err := app.CheckProjectSecret(ctx, c[0], c[1]); !errors.Is(err, app.ErrBadSecret) {
			t.Errorf("%s: %v, want ErrBadSecret", name, err)
		}
	}
	tally := map[string]*statsTally{jobs.Public: {}, p.ID: {}}
	paths := map[string]string{jobs.Public: "/dev", p.ID: "/dev/" + p.ID}
	methods := []string{"system_chain", "chain_getBlockHash", "foo_notAMethod"}

	for who, path := range paths {
		// single HTTP calls
		for i := range 6 {
			m := methods[i%len(methods)]
			_, reply := testgw.Post(t, gw.HTTP(path), []byte(`{"jsonrpc":"2.0","id":1,"method":"`+m+`","params":[]}`))
			tally[who].add(statsMethod(m), 2, reply)
		}
		// batches: every entry is a call
		for range 3 {
			var entries []string
			for i, m := range methods {
				entries = append(entries, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"%s","params":[]}`, i, m))
			}
			_, reply := testgw.Post(t, gw.HTTP(path), []byte("["+strings.Join(entries, ",")+"]"))
			var replies []json.RawMessage
			if err := json.Unmarshal(reply, &replies); err != nil || len(replies) != len(methods) {
				t.Fatalf("batch: %s", reply)
			}
			for _, r := range replies {
				var id struct{ ID int }
				_ = json.Unmarshal(r, &id)
				tally[who].add(statsMethod(methods[id.ID]), 2, r)
			}
		}
		// WebSocket frames, a subscription opened and closed
		ws := testgw.Dial(t, gw.WS(path))
		for i := range 4 {
			m := methods[i%len(methods)]
			r := ws.Call(m, []any{})
			tally[who].add(statsMethod(m), 2, r.Raw)
		}
		sub := ws.Call("chain_subscribeNewHeads", []any{})
		tally[who].add("chain_subscribeNewHeads", 2, sub.Raw)
		params := "[" + string(sub.Result) + "]"
		un := ws.Call("chain_unsubscribeNewHeads", json.RawMessage(params))
		tally[who].add("chain_unsubscribeNewHeads", len(params), un.Raw)
		_ = ws.Conn.Close()
	}
	all := tally[jobs.Public].plus(tally[p.ID])
	tally[""] = all

	summary := func(project string) jobs.Summary {
		t.Helper()
		status, body := adminDo(t, "GET", admin+"/elara/stats/summary?chain=dev&project="+project, "")
		if status != 200 {
			t.Fatalf("summary: %d %s", status, body)
		}
		var s jobs.Summary
		if err := json.Unmarshal(body, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Records reach the aggregates off the calls' path: wait for them
	// (and for the WebSockets' ends).
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := summary("")
		if s.Total.Calls == all.calls && s.Connections.Current == 0 && s.Connections.Peak > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("aggregates never reached %d calls: %+v", all.calls, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	check := func(stage string) {
		for who, want := range tally {
			s := summary(who)
			for name, got := range map[string]jobs.Totals{"today": s.Today, "total": s.Total} {
				if got.Calls != want.calls || got.Errors != want.errors || got.BytesIn != want.bytesIn || got.BytesOut != want.bytesOut {
					t.Errorf("%s, project %q, %s: calls %d errors %d in %d out %d; want %d %d %d %d", stage, who, name,
						got.Calls, got.Errors, got.BytesIn, got.BytesOut, want.calls, want.errors, want.bytesIn, want.bytesOut)
				}
				if !(got.P50Ms > 0 && got.P50Ms <= got.P95Ms && got.P95Ms <= got.P99Ms) {
					t.Errorf("%s, project %q, %s: percentiles %v %v %v", stage, who, name, got.P50Ms, got.P95Ms, got.P99Ms)
				}
			}
			if s.Connections != (jobs.Gauge{Current: 0, Peak: 1}) && who != "" || s.Subscriptions.Current != 0 || s.Subscriptions.Peak < 1 {
				t.Errorf("%s, project %q: connections %+v subscriptions %+v", stage, who, s.Connections, s.Subscriptions)
			}
			for code, n := range want.codes {
				if s.ErrorsByCode[code] != n {
					t.Errorf("%s, project %q: errors %s = %d, want %d (%v)", stage, who, code, s.ErrorsByCode[code], n, s.ErrorsByCode)
				}
			}
			var ms []jobs.MethodUse
			getJSON(t, admin+"/elara/stats/methods?project="+who, &ms)
			got := map[string]int64{}
			for _, m := range ms {
				got[m.Method] = m.Calls
			}
			if fmt.Sprint(got) != fmt.Sprint(want.methods) {
				t.Errorf("%s, project %q: methods %v, want %v", stage, who, got, want.methods)
			}
			var cs []jobs.CountryUse
			getJSON(t, admin+"/elara/stats/countries?project="+who, &cs)
			if len(cs) != 1 || cs[0].Country != jobs.CountryLocal || cs[0].Calls != want.calls {
				t.Errorf("%s, project %q: countries %+v, want local %d", stage, who, cs, want.calls)
			}
			var errs []jobs.ErrorRecord
			getJSON(t, admin+"/elara/stats/errors?project="+who, &errs)
			if int64(len(errs)) != want.errors || (len(errs) > 0 && (errs[0].Chain != "dev" || errs[0].Code == 0)) {
				t.Errorf("%s, project %q: %d latest errors, want %d: %+v", stage, who, len(errs), want.errors, errs)
			}
		}
		var series jobs.Series
		getJSON(t, admin+"/elara/stats/series?chain=dev&by=hour", &series)
		var sum int64
		for _, pt := range series.Points {
			sum += pt.Calls
		}
		if len(series.Points) != 24 || sum != all.calls {
			t.Errorf("%s: hourly series of %d points sums to %d, want 24 points, %d calls", stage, len(series.Points), sum, all.calls)
		}
	}
	t.Logf("sent %d calls, %d errors (%v), methods %v", all.calls, all.errors, all.codes, all.methods)
	check("running")
	// Caddy's registry has the statistics metrics; records are counted
	// as aggregated, none dropped by this test's calls (the counters are
	// process-wide, so other tests' count too: compare with the start).
	after, metrics := scrape(t, gw)
	if _, ok := after["elara_stats_records_aggregated_total"]; !ok {
		t.Error("/metrics lacks elara_stats_records_aggregated_total")
	}
	if d, ok := after["elara_stats_records_dropped_total"]; !ok || d != droppedBefore {
		t.Errorf("elara_stats_records_dropped_total went from %v to %v (present: %v)", droppedBefore, d, ok)
	}
	if strings.Contains(string(metrics), "elara_stats_project_calls_total") {
		t.Error("a project label without project_label")
	}

	// A restart (stop, then the same config again) reads the totals from
	// the bolt file.
	stopCaddy(t)
	startStatsGateway(t, node, dir, port, adminPort)
	check("after a restart")
}

// statsMethod is the method as statistics name it: catalogue methods by
// name, others "other".
func statsMethod(m string) string {
	if strings.HasPrefix(m, "foo_") {
		return "other"
	}
	return m
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	status, body := adminDo(t, "GET", url, "")
	if status != 200 {
		t.Fatalf("GET %s: %d %s", url, status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}

// TestStatsAdminErrors: bad queries are 400 with a JSON error naming the
// parameter; other methods 405; statistics off 404.
func TestStatsAdminErrors(t *testing.T) {
	node := fakenode.Start(t)
	dir := t.TempDir()
	adminPort := testgw.FreePort(t)
	startStatsGateway(t, node, dir, testgw.FreePort(t), adminPort)
	t.Cleanup(func() { stopCaddy(t) })
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	cases := []struct {
		name, method, path string
		status             int
		says               string
	}{
		{"bad chain", "GET", "/elara/stats/summary?chain=a/b", 400, "chain"},
		{"bad project", "GET", "/elara/stats/summary?project=nope", 400, "project"},
		{"bad by", "GET", "/elara/stats/series?by=week", 400, "hour or day"},
		{"bad from", "GET", "/elara/stats/series?from=yesterday", 400, "from"},
		{"to before from", "GET", "/elara/stats/series?from=2000&to=1000", 400, "before"},
		{"too many points", "GET", "/elara/stats/series?by=hour&from=0&to=1700000000", 400, "too many points"},
		{"bad day", "GET", "/elara/stats/methods?day=06/12/2026", 400, "day"},
		{"bad countries project", "GET", "/elara/stats/countries?project=x", 400, "project"},
		{"POST", "POST", "/elara/stats/summary", 405, "GET"},
		{"unix seconds and RFC 3339", "GET", "/elara/stats/series?by=day&from=1764979200&to=2025-12-07T00:00:00Z", 200, `"by":"day"`},
		{"public", "GET", "/elara/stats/errors?project=public", 200, "[]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := adminDo(t, tc.method, admin+tc.path, "")
			if status != tc.status || !strings.Contains(string(body), tc.says) {
				t.Fatalf("%d %s; want %d and %q", status, body, tc.status, tc.says)
			}
			if status != 200 && !strings.Contains(string(body), `"error"`) {
				t.Fatalf("not a JSON error: %s", body)
			}
		})
	}
	// a reload keeps them served (the next config starts before this one
	// stops)
	startStatsGateway(t, node, dir, testgw.FreePort(t), adminPort)
	if status, body := adminDo(t, "GET", admin+"/elara/stats/summary", ""); status != 200 {
		t.Fatalf("after a reload: %d %s", status, body)
	}
	// stats off: the routes say so
	g := &testgw.Gateway{Port: testgw.FreePort(t)}
	cf := strings.Replace(g.Caddyfile(chainBlock("dev", testChainOpts, node.URL())+"\t\tstats off\n", "\telara_rpc"),
		"admin off", fmt.Sprintf("admin 127.0.0.1:%d", adminPort), 1)
	testgw.Load(t, cf)
	if status, body := adminDo(t, "GET", admin+"/elara/stats/summary", ""); status != 404 || !strings.Contains(string(body), "statistics are off") {
		t.Fatalf("stats off: %d %s", status, body)
	}
}

// TestStatsCountries: with a country database, calls count under the
// client's country as Caddy sees the client (trusted_proxies, IPv4 and
// IPv6); loopback is "local".
func TestStatsCountries(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	mmdb := filepath.Join(filepath.Dir(file), "..", "e2e", "testdata", "node_modules", "@ip-location-db",
		"geo-whois-asn-country-mmdb", "geo-whois-asn-country.mmdb")
	if _, err := os.Stat(mmdb); err != nil {
		if os.Getenv("ELARA_REQUIRE_E2E") != "" {
			t.Fatalf("country database missing (%v): run npm ci in e2e/testdata", err)
		}
		t.Skipf("country database missing (%v): run npm ci in e2e/testdata", err)
	}
	node := fakenode.Start(t)
	adminPort := testgw.FreePort(t)
	g := &testgw.Gateway{Port: testgw.FreePort(t)}
	global := chainBlock("dev", testChainOpts, node.URL()) +
		fmt.Sprintf("\t\tstats {\n\t\t\tdir %s\n\t\t\tflush_interval 100ms\n\t\t\tgeoip %s\n\t\t}\n", t.TempDir(), mmdb)
	cf := strings.Replace(g.Caddyfile(global, "\telara_rpc"), "admin off",
		fmt.Sprintf("admin 127.0.0.1:%d\n\tservers {\n\t\ttrusted_proxies static private_ranges\n\t}", adminPort), 1)
	testgw.Load(t, cf)
	t.Cleanup(func() { stopCaddy(t) })
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	sent := map[string]int64{}
	for _, c := range []struct{ forwarded, country string }{
		{"8.8.8.8", "US"}, {"2001:4860:4860::8888", "US"}, {"", jobs.CountryLocal}, {"10.0.0.7", jobs.CountryLocal},
	} {
		hdr := http.Header{}
		if c.forwarded != "" {
			hdr.Set("X-Forwarded-For", c.forwarded)
		}
		if resp, body := postRaw(t, g.HTTP("/dev"), chainCall, hdr); resp.StatusCode != 200 {
			t.Fatalf("call: %d %s", resp.StatusCode, body)
		}
		sent[c.country]++
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var cs []jobs.CountryUse
		getJSON(t, admin+"/elara/stats/countries", &cs)
		got := map[string]int64{}
		for _, c := range cs {
			got[c.Country] = c.Calls
		}
		if fmt.Sprint(got) == fmt.Sprint(sent) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("countries %v, want %v", got, sent)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
